"""One model's sync: read → the checks before the first write → decide → deliver → record.

Delivery rules live in :mod:`dbt_rdcrm.sync.delivery`, decisions in
:mod:`dbt_rdcrm.sync.planner`; writes in flight in :mod:`dbt_rdcrm.sync.inflight`, how each row
ends in :mod:`dbt_rdcrm.sync.row_outcomes`. This module owns the loop: budgets,
``partial_success`` and the checks made before a model's first write.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.crm.client import CrmError
from dbt_rdcrm.errors import RdcrmError
from dbt_rdcrm.report.events import (
    Emit,
    ModelStarted,
)
from dbt_rdcrm.report.results import PLANNED_ID, ModelResult, Outcome, RowIssue
from dbt_rdcrm.sync import preflight
from dbt_rdcrm.sync.delivered import Delivered, NotSettled
from dbt_rdcrm.sync.delivery import Delivery
from dbt_rdcrm.sync.inflight import Flying, InFlightWrites, parallel
from dbt_rdcrm.sync.keys import encode_key
from dbt_rdcrm.sync.matching import MatchAnswers, Observed
from dbt_rdcrm.sync.options import BUDGET_SPENT, SyncOptions
from dbt_rdcrm.sync.planner import (
    Decision,
    RefusedBefore,
    Reject,
    Update,
    Wait,
    decide,
)
from dbt_rdcrm.sync.records import WorkRow, utcnow
from dbt_rdcrm.sync.row_outcomes import RowOutcomes
from dbt_rdcrm.sync.sender import Job, Sender


class ModelSync(InFlightWrites, RowOutcomes):
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
        wall: Callable[[], dt.datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
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
        writing = client if not options.dry_run else None
        self.matches = MatchAnswers(spec, writing) if spec.match is not None else None
        if self.matches is not None and writing is not None:
            self.client = client = Observed(client, self.matches)
        self.delivery = (
            Delivery(
                spec, store, client, settle_s=options.settle_seconds, now=wall, matches=self.matches
            )
            if client is not None
            else None
        )
        self.wall = wall
        self.sleep = sleep
        self._unsettled: list[tuple[WorkRow, NotSettled]] = []  # creates that may still land
        self.account_fields = account_fields or preflight.AccountFields(client)
        self.abort: RdcrmError | None = None
        self.checks = checks or preflight.StateChecks()
        self.sender: Sender | None = sender if client is not None and not options.dry_run else None
        self._stop_reason: str | None = None
        self._reserved = 0  # requests of writes queued or in flight
        self._intents: list[Job] = []
        self._flying = Flying(spec.match) if self.matches is not None else None
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
        preflight.check_ids_in_use(spec, work.doubts, self.store)
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
        return self._stop_model(work, why, operation="guard")

    def _stop_model(self, work, why: str, *, failed: bool = True, operation: str = "skip") -> bool:
        if failed:
            self.result.status, self.result.error = "failed", why
        self._skip_rest(work, why, operation)
        return False

    def _skip_rest(self, work, reason: str, operation: str = "skip") -> None:
        """Count every row not concluded yet as skipped (the rest is not read), with one
        line for them in the sync log."""
        left = work.count - (self.result.rows_read - self.result.counts[Outcome.UNCHANGED])
        if left > 0:
            self.result.count(Outcome.SKIPPED, left)
            self.result.stopped = reason
            if not self.options.dry_run:
                self._log_model(operation, f"{left:,} row(s) skipped: {reason}")

    def _process(self, work) -> None:
        if not self.options.dry_run:  # a checkpoint before the first write: the lease is
            self.store.flush()  # checked and renewed after what may have been a long read
        try:
            for row, decision in self._decided(work):
                if self._stop_reason is not None:
                    break
                decision = self._pooled(row, decision)
                alone = self.sender is None or not parallel(decision)
                if alone and decision.requests:
                    self._settle(everything=True)  # writes in flight are recorded first
                    if self._stop_reason is not None:
                        self._skip(row, self._stop_reason)
                        break
                    if self.matches is not None:  # a write just recorded may have dropped
                        decision = self.matches.current(decision)  # its value's answer
                remaining = self.budget()
                if remaining is not None and decision.requests > remaining - self._reserved:
                    self._stop(BUDGET_SPENT)
                    break
                self.result.planned_requests += decision.requests
                if alone:
                    self._guard_auth(row, lambda r=row, d=decision: self._apply(r, d))
                else:
                    self._queue(row, decision)
                self._settle()
                self._resolve_due()
                self._maybe_flush()
            self._settle(everything=True)
            self._resolve_due(wait=True)  # not on the way out of an error: the next run will
        finally:
            self._settle(everything=True)
        if self._stop_reason is not None:  # the rows not read are counted, not read
            self._skip_rest(work, self._stop_reason)

    def _decided(self, work):
        """Each row with its decision; a ``match:`` model's looked up in lists ahead."""
        decided = ((row, self._decide(row)) for row in work)
        if self.matches is None:
            return decided
        return self.matches.ahead(decided, self._room, self._charge)

    def _decide(self, row: WorkRow) -> Decision:
        if self.options.dry_run:
            self._assume_planned_parents(row)
        return decide(self.spec, row, retry_failed=self.options.retry_failed)

    def _room(self) -> int | None:
        remaining = self.budget()
        return None if remaining is None else remaining - self._reserved

    def _charge(self, requests: int) -> None:
        self.result.planned_requests += requests

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
                Outcome.REJECTED,
                decision.reason,
                field=decision.field,
                operation=decision.operation,
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
