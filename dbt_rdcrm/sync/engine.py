"""The sync pipeline for one run: preflight, then per model read → decide → send → record.

``run_sync`` is the composition root's workhorse; it never prints (it emits events) and turns
every row it reads into exactly one counted outcome.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from dbt_rdcrm.config.fields import Mode
from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.crm.client import CrmClient, CrmError, OutcomeUnknown, Refused, Transient
from dbt_rdcrm.errors import AuthError, ConfigError, Problem
from dbt_rdcrm.report.events import (
    Emit,
    ModelFinished,
    ModelStarted,
    RowDone,
    RunFinished,
    RunStarted,
)
from dbt_rdcrm.report.results import ModelResult, Outcome, RowIssue, RunResult
from dbt_rdcrm.sync import lookup
from dbt_rdcrm.sync.planner import Action, Decision, decide
from dbt_rdcrm.sync.state import KEY_SEPARATOR, IdMapRow, LogEntry, StateStore, WorkRow, utcnow

UNKNOWN_CREATE_ATTEMPTS = 3
PLANNED_ID = "0" * 24  # stands for a parent id that this (dry) run would create first


@dataclass(frozen=True)
class SyncOptions:
    dry_run: bool = False
    full_refresh: bool = False
    retry_failed: bool = False
    max_requests: int | None = None
    show: int = 0  # dry run: keep the first N payloads per operation for `plan --show`
    checkpoint_rows: int = 50
    checkpoint_seconds: float = 5.0


def resolve_columns(specs: list[SyncSpec], warehouse) -> dict[str, dict[str, str]]:
    """Each spec's column names mapped to the relation's real names; every problem at once."""
    problems: list[Problem] = []
    resolved: dict[str, dict[str, str]] = {}
    for spec in specs:
        rel = spec.relation
        columns = warehouse.get_columns(rel.database, rel.schema, rel.identifier)
        if columns is None:
            problems.append(
                Problem(
                    f"models.{spec.model}",
                    f"relation {rel.rendered} does not exist: build the model "
                    f"first (dbt build -s {spec.model})",
                )
            )
            continue
        actual = {c.name.lower(): c.name for c in columns}
        resolved[spec.model] = {}
        for column in spec.columns:
            if column.lower() in actual:
                resolved[spec.model][column] = actual[column.lower()]
                continue
            where = next((s.path for s in spec.sources if column in s.columns), f"{spec.path}.key")
            problems.append(
                Problem(
                    where,
                    f"column {column!r} not found in {rel.rendered} "
                    f"(columns: {', '.join(c.name for c in columns)})",
                )
            )
    if problems:
        raise ConfigError(problems)
    return resolved


class ModelSync:
    """Syncs one model; ``run`` returns its result."""

    def __init__(
        self,
        spec: SyncSpec,
        columns: dict[str, str],
        store: StateStore,
        client: CrmClient | None,
        options: SyncOptions,
        run_id: str,
        invocation_id: str | None,
        emit: Emit,
        budget: Callable[[], int | None],
        clock: Callable[[], float] = time.monotonic,
        planned: dict[str, set[str]] | None = None,
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
        self.auth_error: AuthError | None = None
        self._last_flush = clock()

    # --- the model's pipeline --------------------------------------------------------------
    def run(self) -> ModelResult:
        started = self.clock()
        spec, opts = self.spec, self.options
        duplicates = self.store.has_duplicate_keys(spec, self.columns)
        unchanged = self.store.count_unchanged(
            spec, self.columns, full_refresh=opts.full_refresh, duplicates=duplicates
        )
        self.result.count(Outcome.UNCHANGED, unchanged)
        work = self.store.work(
            spec, self.columns, full_refresh=opts.full_refresh, duplicates=duplicates
        )
        with work:
            self.emit(ModelStarted(spec.model, spec.mode.value, work.count, unchanged))
            try:
                self._process(work)
            finally:
                if not opts.dry_run:
                    self.store.flush()
        self.result.duration = self.clock() - started
        return self.result

    def _process(self, work) -> None:
        spec, opts = self.spec, self.options
        stop_reason: str | None = None
        for row in work:
            if stop_reason is not None:
                self._finish(row, Outcome.SKIPPED, stop_reason, issue=False)
                continue
            if opts.dry_run:
                self._assume_planned_parents(row)
            decision = decide(spec, row, retry_failed=opts.retry_failed)
            remaining = self.budget()
            if remaining is not None and decision.requests and decision.requests > remaining:
                stop_reason = "request budget (--max-requests) spent: continues on the next run"
                self.result.stopped = stop_reason
                self._finish(row, Outcome.SKIPPED, stop_reason, issue=False)
                continue
            self.result.planned_requests += decision.requests
            if opts.dry_run and decision.action in (Action.CREATE, Action.UPDATE, Action.RESOLVE):
                self.planned.setdefault(spec.model, set()).add(row.key)
            try:
                outcome = self._apply(row, decision)
            except AuthError as exc:  # no request can succeed now: stop, count what is left
                self.auth_error = exc
                stop_reason = "not attempted: the CRM refused the credentials"
                self.result.status, self.result.error = "error", str(exc)
                self.result.stopped = stop_reason
                self._finish(row, Outcome.SKIPPED, stop_reason, issue=False)
                continue
            if outcome in (Outcome.REJECTED, Outcome.FAILED) and not spec.partial_success:
                stop_reason = (
                    "not attempted: the model stopped at its first failed row "
                    "(partial_success is false)"
                )
                self.result.status = "failed"
                self.result.stopped = stop_reason
            self._maybe_flush()

    def _assume_planned_parents(self, row: WorkRow) -> None:
        """In a plan, a parent that this run would sync first counts as having an id."""
        for source in self.spec.links:
            values = [row.values.get(c) for c in source.link.columns]
            if row.link_ids.get(source.field) is None and None not in values:
                parent_key = KEY_SEPARATOR.join(str(v) for v in values)
                if parent_key in self.planned.get(source.link.model, ()):
                    row.link_ids[source.field] = PLANNED_ID

    def _apply(self, row: WorkRow, decision: Decision) -> Outcome:
        if decision.action is Action.REJECT:
            return self._finish(row, Outcome.REJECTED, decision.reason, field=decision.field)
        if decision.action is Action.WAIT:
            return self._finish(row, Outcome.WAITING, decision.reason, field=decision.field)
        if decision.action is Action.REFUSED_BEFORE:
            return self._finish(row, Outcome.FAILED, decision.reason)
        if self.options.dry_run:
            operation = "update" if decision.action is Action.UPDATE else "create"
            self.result.add_sample(
                operation, row.key, decision.crm_id, decision.data, self.options.show
            )
            outcome = Outcome.UPDATED if decision.action is Action.UPDATE else Outcome.CREATED
            return self._finish(row, outcome, None, issue=False, log=False)
        try:
            if decision.action is Action.UPDATE:
                return self._update(row, decision.crm_id, decision.data)
            if decision.action is Action.RESOLVE:
                return self._resolve_then_create(row, decision.data)
            return self._create(row, decision)
        except CrmError as exc:
            return self._failed(row, exc)

    # --- operations ------------------------------------------------------------------------
    def _update(self, row: WorkRow, crm_id: str, data: dict, created: bool = False) -> Outcome:
        resource = self.spec.mode.value
        self.client.update(resource, crm_id, data)
        self._record(row, crm_id=crm_id, synced=True)
        outcome = Outcome.CREATED if created else Outcome.UPDATED
        return self._finish(row, outcome, None, crm_id=crm_id, operation="update", issue=False)

    def _create(self, row: WorkRow, decision: Decision) -> Outcome:
        data = decision.data
        value = lookup.payload_value(data, self.spec.match) if decision.match else None
        if value is not None:  # a row without a value for the match field is simply created
            found = lookup.find(self.client, self.spec.mode, self.spec.match, value)
            if len(found) == 1:
                return self._update(row, found[0], data)
            if len(found) > 1:
                return self._finish(
                    row,
                    Outcome.REJECTED,
                    f"ambiguous match on {self.spec.match}: {len(found)} CRM "
                    f"records ({', '.join(found[:5])})",
                    field=self.spec.match,
                )
        return self._post(row, data, attempts_left=UNKNOWN_CREATE_ATTEMPTS)

    def _post(self, row: WorkRow, data: dict, attempts_left: int) -> Outcome:
        since = utcnow()
        self._record(row, pending=since)
        self.store.flush()  # the create intent is durable before the request leaves
        try:
            record = self.client.create(self.spec.mode.value, data)
        except OutcomeUnknown:
            if attempts_left <= 1:
                raise
            return self._resolve_then_create(row, data, since, attempts_left - 1)
        except (Refused, Transient):
            self._record(row, pending=None)
            raise
        self._record(row, crm_id=record["id"], synced=True)
        return self._finish(
            row, Outcome.CREATED, None, crm_id=record["id"], operation="create", issue=False
        )

    def _resolve_then_create(
        self,
        row: WorkRow,
        data: dict,
        since: dt.datetime | None = None,
        attempts_left: int = UNKNOWN_CREATE_ATTEMPTS,
    ) -> Outcome:
        """An earlier create may have landed: adopt the record if found, create it if not."""
        since = since or (row.state.pending_since if row.state else None)
        field = self.spec.match or "name"
        value = lookup.payload_value(data, field)
        if value is None:  # the match field is empty on this row: look up by name instead
            field, value = "name", lookup.payload_value(data, "name")
        found = lookup.find(
            self.client,
            self.spec.mode,
            field,
            value,
            created_since=None if field == self.spec.match else since,
        )
        if len(found) == 1:
            if row.state is not None and row.state.pending_hash == row.row_hash:
                self._record(row, crm_id=found[0], synced=True)
                return self._finish(
                    row, Outcome.CREATED, None, crm_id=found[0], operation="adopt", issue=False
                )
            return self._update(row, found[0], data, created=True)
        if len(found) > 1:
            return self._finish(
                row,
                Outcome.FAILED,
                f"an earlier create may have landed, and {len(found)} CRM records "
                f"match on {field} ({', '.join(found[:5])}): resolve by hand",
                field=field,
            )
        return self._post(row, data, attempts_left)

    # --- bookkeeping -----------------------------------------------------------------------
    def _record(
        self,
        row: WorkRow,
        *,
        crm_id: str | None = None,
        synced: bool = False,
        pending: dt.datetime | None | bool = False,
        refused: str | None = None,
    ) -> None:
        """Save what the CRM now holds for this row's key (buffered until the next flush)."""
        now = utcnow()
        state = row.state or IdMapRow(self.spec.model, row.key, self.spec.mode.object_type)
        if synced:
            state = replace(
                state,
                crm_id=crm_id,
                synced_hash=row.row_hash,
                synced_at=now,
                pending_hash=None,
                pending_since=None,
                refused_hash=None,
                refused_reason=None,
            )
        if pending is not False:
            state = replace(
                state, pending_hash=row.row_hash if pending else None, pending_since=pending or None
            )
        if refused is not None:
            state = replace(state, refused_hash=row.row_hash, refused_reason=refused[:500])
        state = replace(state, updated_at=now)
        row.state = state
        self.store.save(state)

    def _failed(self, row: WorkRow, exc: CrmError) -> Outcome:
        reason = str(exc)
        if isinstance(exc, Refused) and self.spec.mode is Mode.ORGANIZATIONS and exc.status == 400:
            reason += " (organization names are unique: add `match: name` to update it instead)"
        if isinstance(exc, Refused) and row.key is not None:
            self._record(row, refused=reason)
        return self._finish(
            row,
            Outcome.FAILED,
            reason,
            status=exc.status or None,
            field=exc.field,
            operation="send",
        )

    def _finish(
        self,
        row: WorkRow,
        outcome: Outcome,
        reason: str | None,
        *,
        field: str | None = None,
        status: int | None = None,
        crm_id: str | None = None,
        operation: str = "decide",
        issue: bool = True,
        log: bool = True,
    ) -> Outcome:
        self.result.count(outcome)
        if reason and issue:
            self.result.add_issue(
                RowIssue(outcome, reason, row.key, None if row.key else row.number, status, field)
            )
        if log and not self.options.dry_run:
            self.store.log(
                LogEntry(
                    self.run_id,
                    self.invocation_id,
                    self.spec.model,
                    row.key,
                    operation,
                    outcome.value,
                    status,
                    reason,
                    crm_id,
                    utcnow(),
                )
            )
        self.emit(RowDone(self.spec.model, outcome))
        return outcome

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
    store: StateStore,
    client: CrmClient | None,
    options: SyncOptions,
    *,
    emit: Emit,
    command: str,
    base_url: str,
    rate_limit: int,
    invocation_id: str | None,
    clock: Callable[[], float] = time.monotonic,
    notices: Sequence[str] = (),
) -> RunResult:
    """Sync ``specs`` in order (parents first); one model's failure does not stop the others."""
    started = clock()
    result = RunResult(
        run_id=str(uuid.uuid4()),
        command=command,
        invocation_id=invocation_id,
        generated_at=dt.datetime.now(dt.timezone.utc).isoformat(),
        base_url=base_url,
        rate_limit=rate_limit,
        dry_run=options.dry_run,
        notices=list(notices),
    )
    emit(RunStarted(tuple(s.model for s in specs), options.dry_run, rate_limit))
    current: list[ModelResult] = []
    if client is not None:
        previous_hook = client.on_request

        def count_request(method: str, path: str, status: int) -> None:
            if current:
                current[-1].requests += 1
            if previous_hook is not None:
                previous_hook(method, path, status)

        client.on_request = count_request

    def budget() -> int | None:
        """Requests left under --max-requests: sent ones in a sync, planned ones in a plan."""
        if options.max_requests is None:
            return None
        if options.dry_run or client is None:
            spent = sum(m.planned_requests for m in current)
        else:
            spent = client.requests_sent
        return max(0, options.max_requests - spent)

    planned: dict[str, set[str]] = {}
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
        )
        current.append(sync.result)
        model_result = sync.run()
        result.models.append(model_result)
        emit(ModelFinished(model_result))
        if sync.auth_error is not None:
            result.abort = sync.auth_error
            left = [s.model for s in specs[len(result.models) :]]
            if left:
                result.notices.append(f"not run (credentials refused): {', '.join(left)}")
            break
    result.elapsed = clock() - started
    emit(RunFinished(result))
    return result
