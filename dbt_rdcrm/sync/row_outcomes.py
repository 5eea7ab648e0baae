"""How each row ends, for :class:`dbt_rdcrm.sync.model_sync.ModelSync`: counted once, its
issue and log line recorded, a waiting row's reason looked up, refused credentials and
``partial_success: false`` turned into a stop, and checkpoints flushed."""

from __future__ import annotations

from dbt_rdcrm.errors import AuthError
from dbt_rdcrm.report.events import (
    RowDone,
)
from dbt_rdcrm.report.results import Outcome, RowIssue
from dbt_rdcrm.sync.delivered import Delivered, NotSettled
from dbt_rdcrm.sync.planner import (
    Wait,
)
from dbt_rdcrm.sync.records import LogEntry, WorkRow, utcnow

WAIT_REASONS_LOOKED_UP = 200


class RowOutcomes:
    """The bookkeeping side of a model's sync (a part of :class:`ModelSync`)."""

    def _guard_auth(self, row: WorkRow, step) -> None:
        """Conclude a row; refused credentials stop the model (every row left is skipped); a
        create that may still land waits for its settle time (``_resolve_due``)."""
        try:
            done = step()
        except NotSettled as later:
            self._unsettled.append((row, later))
            return
        except AuthError as exc:  # no request can succeed now: stop, count what is left
            self.abort = exc
            self.result.status, self.result.error = "error", str(exc)
            self._stop("not attempted: the CRM refused the credentials")
            self._skip(row, self._stop_reason)
            return
        self._conclude(row, done)

    def _conclude(self, row: WorkRow, done: Delivered) -> None:
        self._finish(row, done)
        if done.outcome is Outcome.UNRESOLVED:
            self.result.status = "failed"  # never guessed: the run cannot end green
        if done.outcome in (Outcome.REJECTED, Outcome.FAILED, Outcome.UNRESOLVED):
            if row.key is not None:
                self.failed_parents.setdefault(self.spec.model, {})[row.key] = done.reason or ""
            if not self.spec.partial_success:
                self.result.status = "failed"
                self._stop(
                    "not attempted: the model stopped at its first failed row "
                    "(partial_success is false)"
                )

    def _stop(self, reason: str) -> None:
        if self._stop_reason is None:
            self._stop_reason = reason
            self.result.stopped = reason

    def _skip(self, row: WorkRow, reason: str) -> None:
        self._finish(row, Delivered(Outcome.SKIPPED, operation="decide"), reason)

    def _wait_reason(self, wait: Wait) -> str:
        """Why the parent has no id: its failure in this run, or what the state says of it."""
        failed = self.failed_parents.get(wait.parent_model, {}).get(wait.parent_key)
        if failed is not None:
            return f"{wait.reason}: parent key {wait.parent_key} failed in this run: {failed}"
        if self.options.dry_run or self._wait_lookups >= WAIT_REASONS_LOOKED_UP:
            return wait.reason
        self._wait_lookups += 1
        state = self.store.states(wait.parent_model, [wait.parent_key]).get(wait.parent_key)
        if state is None:
            return (
                f"{wait.reason}: {wait.parent_model} has not synced key {wait.parent_key} "
                "(not sent yet in this run, missing from the model, or not selected)"
            )
        if state.refused_reason:
            return (
                f"{wait.reason}: parent key {wait.parent_key} was refused: {state.refused_reason}"
            )
        if state.pending:
            return (
                f"{wait.reason}: the create of parent key {wait.parent_key} has an unknown "
                "outcome; the parent's next sync settles it"
            )
        return wait.reason

    def _finish(self, row: WorkRow, done: Delivered, reason: str | None = None) -> None:
        reason = reason or done.reason
        self.result.count(done.outcome)
        if done.differences:
            self.result.differences += 1
            reason = f"written with differences: {', '.join(done.differences)}"
            self.result.add_issue(
                RowIssue(done.outcome, reason, row.key, None if row.key else row.number)
            )
        if done.reason is not None:
            self.result.add_issue(
                RowIssue(
                    done.outcome,
                    done.reason,
                    row.key,
                    None if row.key else row.number,
                    done.status,
                    done.field,
                )
            )
        if not self.options.dry_run and done.outcome is not Outcome.SKIPPED:
            self.store.log(
                LogEntry(
                    self.run_id,
                    self.invocation_id,
                    self.spec.model,
                    row.key,
                    done.operation,
                    done.outcome.value,
                    done.status,
                    reason,
                    done.crm_id,
                    utcnow(),
                )
            )
        self.emit(RowDone(self.spec.model, done.outcome))

    def _log_model(self, operation: str, why: str) -> None:
        self.store.log(
            LogEntry(
                self.run_id,
                self.invocation_id,
                self.spec.model,
                None,
                operation,
                Outcome.SKIPPED.value,
                None,
                why,
                None,
                utcnow(),
            )
        )

    def _maybe_flush(self) -> None:
        if self.options.dry_run:
            return
        now = self.clock()
        if (
            self.store.buffered >= self.options.checkpoint_rows
            or now - self._last_flush >= self.options.checkpoint_seconds
        ):
            self.store.flush()
            self._last_flush = now
