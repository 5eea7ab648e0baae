"""The sync of one run: per model, read → decide → deliver → record, in dependency order.

``run_sync`` never prints (it emits events) and turns every row it reads into exactly one
counted outcome. Delivery rules live in :mod:`dbt_rdcrm.sync.delivery`; decisions in
:mod:`dbt_rdcrm.sync.planner`; this module owns the loop: budgets, ``partial_success``, the
checks made before a model's first write, checkpoints and events.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.crm.client import CrmError
from dbt_rdcrm.errors import AuthError, RdcrmError
from dbt_rdcrm.report.events import (
    Emit,
    ModelFinished,
    ModelStarted,
    RowDone,
    RunFinished,
    RunStarted,
)
from dbt_rdcrm.report.results import PLANNED_ID, ModelResult, Outcome, RowIssue, RunResult
from dbt_rdcrm.sync import preflight
from dbt_rdcrm.sync.delivery import Delivered, Delivery
from dbt_rdcrm.sync.keys import encode_key
from dbt_rdcrm.sync.planner import (
    Create,
    Decision,
    RefusedBefore,
    Reject,
    Update,
    Wait,
    decide,
)
from dbt_rdcrm.sync.records import LogEntry, WorkRow, utcnow
from dbt_rdcrm.sync.sender import DEFAULT_CONCURRENCY, Job, Sender, Sent

WAIT_REASONS_LOOKED_UP = 200
BUDGET_SPENT = "request budget (--max-requests) spent: continues on the next run"


@dataclass(frozen=True)
class SyncOptions:
    dry_run: bool = False
    full_refresh: bool = False
    retry_failed: bool = False
    max_requests: int | None = None
    show: int = 0  # dry run: keep the first N payloads per operation for `plan --show`
    checkpoint_rows: int = 50
    checkpoint_seconds: float = 5.0
    allow_mass_change: bool = False
    concurrency: int | None = None  # writes in flight at once (1: one at a time; None: 4)


def _follow_up(sent: Sent) -> bool:
    return sent.error is not None and Delivery.needs_follow_up(sent.error)


def _parallel(decision: Decision) -> bool:
    """Writes that go to the pool: plain creates and updates. Lookups (``match:``, an unknown
    create's resolution) run alone, once every write in flight is recorded."""
    if isinstance(decision, Create):
        return decision.match is None and decision.then is None
    return isinstance(decision, Update)


class ModelSync:
    """Syncs one model; ``run`` returns its result."""

    def __init__(
        self,
        spec: SyncSpec,
        columns: dict[str, str],
        store,
        client,
        options: SyncOptions,
        run_id: str,
        invocation_id: str | None,
        emit: Emit,
        budget: Callable[[], int | None],
        clock: Callable[[], float] = time.monotonic,
        planned: dict[str, set[str]] | None = None,
        failed_parents: dict[str, dict[str, str]] | None = None,
        account_fields: preflight.AccountFields | None = None,
        sender: Sender | None = None,
        checks: preflight.StateChecks | None = None,
    ):
        self.spec = spec
        self.columns = columns
        self.store = store
        self.client = client
        self.options = options
        self.run_id = run_id
        self.invocation_id = invocation_id
        self.emit = emit
        self.budget = budget
        self.clock = clock
        self.result = ModelResult(spec.model, spec.unique_id, spec.mode.value)
        self.planned = planned if planned is not None else {}
        self.failed_parents = failed_parents if failed_parents is not None else {}
        self.delivery = Delivery(spec, store, client) if client is not None else None
        self.account_fields = account_fields or preflight.AccountFields(client)
        self.abort: RdcrmError | None = None
        self.checks = checks or preflight.StateChecks()
        self.sender: Sender | None = sender if client is not None and not options.dry_run else None
        self._stop_reason: str | None = None
        self._reserved = 0  # requests of writes queued or in flight
        self._intents: list[Job] = []
        self._last_flush = clock()
        self._wait_lookups = 0

    # --- the model's pipeline --------------------------------------------------------------
    def run(self) -> ModelResult:
        started = self.clock()
        spec, opts = self.spec, self.options
        work = self.store.work(spec, self.columns, full_refresh=opts.full_refresh)
        unchanged = work.unchanged
        self.result.count(Outcome.UNCHANGED, unchanged)
        with work:
            self.emit(ModelStarted(spec.model, spec.mode.value, work.count, unchanged))
            try:
                if work.count and self._may_write(work):
                    self._process(work)
            except RdcrmError as exc:  # the run stops: every row left is counted as skipped
                self.abort = exc
                self.result.status, self.result.error = "error", str(exc)
                self._skip_rest(work, f"not attempted: {type(exc).__name__}")
            finally:
                if not opts.dry_run:
                    self.store.flush()
        self.result.duration = self.clock() - started
        return self.result

    def _may_write(self, work) -> bool:
        """The checks before the first write (they cost a request or two, within the budget);
        False, with the model's rows counted as skipped, when one of them stops the model."""
        spec, opts = self.spec, self.options
        if opts.dry_run:  # the state check, made before any model, counts as this model's
            self.result.planned_requests += self.checks.charged.get(spec.model, 0)
        blocked = self.checks.blocked.get(spec.model)
        if blocked is not None:
            return self._stop_model(work, blocked, failed=blocked != preflight.BUDGET_REASON)
        cost = self.account_fields.cost(spec)
        remaining = self.budget()
        if remaining is not None and cost > remaining:
            return self._stop_model(work, BUDGET_SPENT, failed=False)
        if opts.dry_run:
            self.result.planned_requests += cost
            self.account_fields.assume_fetched(spec)
        else:
            try:
                missing = preflight.missing_custom_fields(spec, self.account_fields)
            except CrmError as exc:  # the check could not be made: nothing is written
                missing = (
                    "not attempted: could not read the account's custom fields "
                    f"({exc}); the next run checks again"
                )
            if missing is not None:
                return self._stop_model(work, missing)
        guard = spec.mass_change if not opts.allow_mass_change else None
        known = self.store.synced_rows(spec.model).get(self.store.scope, 0) if guard else 0
        why = preflight.mass_change(spec, work, known, guard) if guard else None
        if why is None:
            return True
        self.result.add_issue(RowIssue(Outcome.SKIPPED, why))
        if opts.dry_run:  # a plan shows the guard and goes on
            return True
        self._log_model("guard", why)
        return self._stop_model(work, why)

    def _stop_model(self, work, why: str, *, failed: bool = True) -> bool:
        if failed:
            self.result.status, self.result.error = "failed", why
        self._skip_rest(work, why)
        return False

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

    def _skip_rest(self, work, reason: str) -> None:
        left = work.count - (self.result.rows_read - self.result.counts[Outcome.UNCHANGED])
        if left > 0:
            self.result.count(Outcome.SKIPPED, left)
            self.result.stopped = reason

    def _process(self, work) -> None:
        spec, opts = self.spec, self.options
        try:
            for row in work:
                if self._stop_reason is not None:
                    self._skip(row, self._stop_reason)
                    continue
                if opts.dry_run:
                    self._assume_planned_parents(row)
                decision = decide(spec, row, retry_failed=opts.retry_failed)
                remaining = self.budget()
                if remaining is not None and decision.requests > remaining - self._reserved:
                    self._stop(BUDGET_SPENT)
                    self._skip(row, BUDGET_SPENT)
                    continue
                self.result.planned_requests += decision.requests
                if self.sender is not None and _parallel(decision):
                    self._queue(row, decision)
                else:
                    self._settle(everything=True)  # writes in flight are recorded first
                    if self._stop_reason is not None:
                        self._skip(row, self._stop_reason)
                        continue
                    self._guard_auth(row, lambda r=row, d=decision: self._apply(r, d))
                self._settle()
                self._maybe_flush()
        finally:
            self._settle(everything=True)

    # --- writes in flight ------------------------------------------------------------------
    def _queue(self, row: WorkRow, decision: Create | Update) -> None:
        self._reserved += decision.requests
        if isinstance(decision, Create):
            self.delivery.intend(row, decision.data)
            self._intents.append(Job(row, decision))
            if len(self._intents) >= self.sender.workers:
                self._launch()
            return
        resource, crm = self.spec.mode.value, self.client
        self.sender.submit(
            Job(row, decision), lambda: crm.update(resource, decision.crm_id, decision.data)
        )

    def _launch(self) -> None:
        """Make the queued create intents durable (one commit), then send them."""
        if not self._intents:
            return
        self.store.flush()
        self._last_flush = self.clock()
        resource, crm = self.spec.mode.value, self.client
        for job in self._intents:
            self.sender.submit(job, lambda d=job.decision.data: crm.create(resource, d))
        self._intents = []

    def _settle(self, *, everything: bool = False) -> None:
        """Record the sends that finished (all of them with ``everything``); the ones whose
        failure needs lookups or further requests are settled once nothing else is in flight."""
        if self.sender is None:
            return
        if everything or self.sender.full:
            self._launch()
        finished = self.sender.finished(block=self.sender.full, everything=everything)
        if any(_follow_up(s) for s in finished):  # its lookups must see every write recorded
            self._launch()
            finished += self.sender.finished(everything=True)
        for sent in sorted(finished, key=_follow_up):  # plain answers first, follow-ups last
            self._reserved -= sent.job.decision.requests
            self._guard_auth(sent.job.row, lambda s=sent: self._answered(s))

    def _answered(self, sent: Sent) -> Delivered:
        row, decision, delivery = sent.job.row, sent.job.decision, self.delivery
        if isinstance(decision, Create):
            if sent.error is None:
                return delivery.created(row, decision.data, sent.answer)
            return delivery.guarded(
                row, lambda: delivery.create_failed(row, decision.data, sent.error)
            )
        if sent.error is None:
            return delivery.updated(row, decision.crm_id, decision.data, sent.answer)
        return delivery.guarded(
            row, lambda: delivery.update_failed(row, decision.crm_id, decision.data, sent.error)
        )

    # --- outcomes --------------------------------------------------------------------------
    def _guard_auth(self, row: WorkRow, step) -> None:
        """Conclude a row; refused credentials stop the model (every row left is skipped)."""
        try:
            done = step()
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

    def _assume_planned_parents(self, row: WorkRow) -> None:
        """In a plan, a parent that this run would sync first counts as having an id."""
        for source in self.spec.links:
            values = [row.values.get(c) for c in source.link.columns]
            if (
                row.link_ids.get(source.field) is None
                and None not in values
                and encode_key(values) in self.planned.get(source.link.model, ())
            ):
                row.link_ids[source.field] = PLANNED_ID

    def _apply(self, row: WorkRow, decision: Decision) -> Delivered:
        if isinstance(decision, Reject):
            return Delivered(
                Outcome.REJECTED, decision.reason, field=decision.field, operation="decide"
            )
        if isinstance(decision, Wait):
            return Delivered(
                Outcome.WAITING,
                self._wait_reason(decision),
                field=decision.field,
                operation="decide",
            )
        if isinstance(decision, RefusedBefore):
            return Delivered(Outcome.FAILED, decision.reason, operation="decide")
        if self.options.dry_run:
            return self._plan(row, decision)
        return self.delivery.apply(row, decision)

    def _plan(self, row: WorkRow, decision: Decision) -> Delivered:
        self.planned.setdefault(self.spec.model, set()).add(row.key)
        update = isinstance(decision, Update)
        self.result.add_sample(
            "update" if update else "create",
            row.key,
            decision.crm_id if update else None,
            decision.data,
            self.options.show,
        )
        return Delivered(Outcome.UPDATED if update else Outcome.CREATED, operation="plan")

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

    # --- bookkeeping -----------------------------------------------------------------------
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


def run_sync(
    specs: list[SyncSpec],
    columns: dict[str, dict[str, str]],
    store,
    client,
    options: SyncOptions,
    *,
    emit: Emit,
    command: str,
    base_url: str,
    rate_limit: int,
    invocation_id: str | None,
    clock: Callable[[], float] = time.monotonic,
    notices: Sequence[str] = (),
    run_id: str | None = None,
) -> RunResult:
    """Sync ``specs`` in order (parents first); one model's failure does not stop the others,
    but a run-level error (credentials, permissions, untrustworthy state) stops the run."""
    started = clock()
    result = RunResult(
        run_id=run_id or str(uuid.uuid4()),
        command=command,
        invocation_id=invocation_id,
        generated_at=dt.datetime.now(dt.timezone.utc).isoformat(),
        base_url=base_url,
        rate_limit=rate_limit,
        dry_run=options.dry_run,
        notices=list(notices),
    )
    emit(RunStarted(tuple(s.model for s in specs), options.dry_run, rate_limit))
    sent_before = client.requests_sent if client is not None else 0
    spent_before = 0

    def budget() -> int | None:
        """Requests left under --max-requests: sent ones in a sync, planned ones in a plan
        (the state checks made before any write count from the start in both)."""
        if options.max_requests is None:
            return None
        if options.dry_run or client is None:
            started = {m.model for m in result.models} | {current.model}
            ahead = sum(n for m, n in checks.charged.items() if m not in started)
            spent = sum(m.planned_requests for m in result.models) + current.planned_requests
            spent += ahead
        else:
            spent = client.requests_sent - sent_before
        return max(0, options.max_requests - spent)

    writing = client if not options.dry_run else None
    try:
        checks = preflight.state_checks(specs, columns, store, writing, budget=options.max_requests)
    except RdcrmError as exc:  # the state cannot be trusted: nothing is written at all
        result.abort = exc
        result.notices.append(f"not run (the state check stopped the run): {len(specs)} model(s)")
        result.elapsed = clock() - started
        emit(RunFinished(result))
        return result
    current = None

    planned: dict[str, set[str]] = {}
    failed_parents: dict[str, dict[str, str]] = {}
    account_fields = preflight.AccountFields(client)
    workers = options.concurrency or DEFAULT_CONCURRENCY
    use_pool = client is not None and not options.dry_run and workers > 1
    sender = Sender(workers) if use_pool else None
    try:
        for spec in specs:
            sync = ModelSync(
                spec,
                columns[spec.model],
                store,
                client,
                options,
                result.run_id,
                invocation_id,
                emit,
                budget,
                clock,
                planned,
                failed_parents,
                account_fields,
                sender,
                checks,
            )
            current = sync.result
            if client is not None:
                spent_before = client.requests_sent
            model_result = sync.run()
            if client is not None:
                model_result.requests = client.requests_sent - spent_before
                model_result.requests += checks.charged.get(spec.model, 0)
            result.models.append(model_result)
            emit(ModelFinished(model_result))
            if sync.abort is not None:
                result.abort = sync.abort
                left = [s.model for s in specs[len(result.models) :]]
                if left:
                    why = (
                        "credentials refused"
                        if isinstance(sync.abort, AuthError)
                        else "the run stopped at " + spec.model
                    )
                    result.notices.append(f"not run ({why}): {', '.join(left)}")
                break
    finally:
        if sender is not None:
            sender.close()
    result.elapsed = clock() - started
    emit(RunFinished(result))
    return result
