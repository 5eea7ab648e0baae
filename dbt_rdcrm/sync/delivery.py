"""The delivery protocol for one row: send → resolve → record, exactly once.

Rules (each has a unit test in ``tests/unit/test_delivery.py``):

- A create intent (row hash, time and payload) is durable before its POST leaves.
- An unknown outcome (5xx, a lost answer, an answer that is not the documented JSON) keeps the
  intent; before anything is resent the record it may have made is looked up, and adopted only
  if it provably belongs to the row (identity field, ``match:`` field, or everything sent) and no
  other key holds it. Several candidates, a lookup the CRM refuses or one too large to read make
  the row ``unresolved``, with the candidates and the command that settles it.
- An unanswered create may still land while the CRM works on it: its lookup waits until the
  intent is ``settle_s`` old (:class:`NotSettled` tells the caller when), so a "not found" is
  never read while the first POST may still be held.
- A 404 on a known id means the record is gone: it is found again (``match:``) or created again,
  and reported ``recreated``.
- A failed write never leaves the row looking in step: its synced hash is cleared.
- A 403 stops the run (a permission problem is not a row's fault).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace

from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.crm.client import CrmError, OutcomeUnknown, Refused, Transient
from dbt_rdcrm.report.results import Outcome
from dbt_rdcrm.sync import identify
from dbt_rdcrm.sync.delivered import (
    CANDIDATES_SHOWN,
    Crm,
    Delivered,
    NotSettled,
    PermissionDenied,
    Store,
    match_refused,
    settle_command,
    settle_deadline,
)
from dbt_rdcrm.sync.identify import Found, LookupRefused
from dbt_rdcrm.sync.planner import Create, Resolve, Update, payload_value, two_step
from dbt_rdcrm.sync.records import WorkRow, transition, utcnow

UNKNOWN_CREATE_ATTEMPTS = 3


class Delivery:
    """Sends the decisions of one model's rows and records what the CRM now holds."""

    def __init__(
        self,
        spec: SyncSpec,
        store: Store,
        crm: Crm,
        *,
        settle_s: float = 0.0,
        now: Callable[[], dt.datetime] = utcnow,
        matches=None,
    ):
        self.spec = spec
        self.store = store
        self.crm = crm
        self.resource = spec.mode.value
        self.settle_s = settle_s  # how long an unanswered create may still land
        self.now = now
        self.matches = matches  # the run's answers to match lookups (sync.matching), if any

    def apply(self, row: WorkRow, decision: Create | Update | Resolve) -> Delivered:
        return self.guarded(row, lambda: self._send(row, decision))

    def _send(self, row: WorkRow, decision: Create | Update | Resolve) -> Delivered:
        if isinstance(decision, Update):
            return self.update(row, decision.crm_id, decision.data)
        if isinstance(decision, Resolve):
            return self.resolve(row, decision.data, decision.sent)
        return self.create(row, decision.data, decision.match, decision.then)

    def guarded(self, row: WorkRow, step) -> Delivered:
        """Run a follow-up step; its lookups or requests failing become the row's outcome."""
        try:
            return step()
        except LookupRefused as exc:
            return self._unresolved(row, str(exc), field=exc.field)
        except CrmError as exc:
            return self.failed(row, exc)

    # --- operations ------------------------------------------------------------------------
    def update(
        self, row: WorkRow, crm_id: str, data: dict, *, outcome: Outcome = Outcome.UPDATED
    ) -> Delivered:
        try:
            record = self.crm.update(self.resource, crm_id, data)
        except Refused as exc:
            return self.update_failed(row, crm_id, data, exc)
        return self.updated(row, crm_id, data, record, outcome)

    def updated(
        self, row: WorkRow, crm_id: str, data: dict, record, outcome: Outcome = Outcome.UPDATED
    ) -> Delivered:
        """The CRM answered the PUT: record the row in step."""
        self._record(row, crm_id=crm_id, synced=True)
        operation = "update" if outcome is Outcome.UPDATED else "adopt"
        return Delivered(
            outcome,
            crm_id=crm_id,
            operation=operation,
            differences=identify.answer_differences(data, record),
        )

    def update_failed(self, row: WorkRow, crm_id: str, data: dict, exc: CrmError) -> Delivered:
        """A PUT failed: a 404 on an id the state gave means the record was deleted."""
        if isinstance(exc, Refused) and exc.status == 404 and not self._targets_mapped_id(row):
            return self.recreate(row, crm_id, data)
        raise exc

    def recreate(self, row: WorkRow, gone: str, data: dict) -> Delivered:
        """The record behind a known id is gone: find it again by ``match:``, or create it."""
        self._record(row, crm_id=None, cleared=True)
        done = self.create(
            row, data, payload_value(data, self.spec.match) if self.spec.match else None
        )
        if done.outcome in (Outcome.CREATED, Outcome.UPDATED):
            return replace(
                done,
                outcome=Outcome.RECREATED,
                reason=f"record {gone} was deleted in the CRM",
                operation="recreate",
            )
        return done

    def create(
        self, row: WorkRow, data: dict, match: str | None, then: dict | None = None
    ) -> Delivered:
        if match is not None:
            found = (
                self.matches.find(match)
                if self.matches is not None
                else identify.by_field(self.crm, self.spec.mode, self.spec.match, [match])[match]
            )
            ids = self.unclaimed(row, found)
            if len(ids) == 1:  # the record exists already: it is updated, and remembered
                return self.update(row, ids[0], {**data, **(then or {})})
            refused = match_refused(self.spec.match, found, ids)
            if refused is not None:
                return refused
        return self.post(row, data, then=then)

    def intend(self, row: WorkRow, data: dict) -> None:
        """Buffer the create intent; the caller flushes before the POST leaves."""
        self._record(row, pending=data)

    def post(
        self,
        row: WorkRow,
        data: dict,
        attempts_left: int = UNKNOWN_CREATE_ATTEMPTS,
        then: dict | None = None,
    ) -> Delivered:
        self.intend(row, data)
        self.store.flush()  # the create intent is durable before the request leaves
        try:
            record = self.crm.create(self.resource, data)
        except CrmError as exc:
            return self.create_failed(row, data, exc, attempts_left, then)
        return self.created(row, data, record, then)

    def created(self, row: WorkRow, data: dict, record, then: dict | None = None) -> Delivered:
        """The CRM answered the POST with its record: the row is in step (after ``then``, a
        second step such as a deal's closing status, when there is one)."""
        crm_id = str(record["id"])
        if then is not None:
            self._record(row, crm_id=crm_id, synced=True)
            self._record(row, unsynced=True)  # in step only once the second step is done
            record = self.crm.update(self.resource, crm_id, then)
            data = {**data, **then}
        self._record(row, crm_id=crm_id, synced=True)
        return Delivered(
            Outcome.CREATED,
            crm_id=crm_id,
            operation="create",
            differences=identify.answer_differences(data, record),
        )

    def create_failed(
        self,
        row: WorkRow,
        data: dict,
        exc: CrmError,
        attempts_left: int = UNKNOWN_CREATE_ATTEMPTS,
        then: dict | None = None,
    ) -> Delivered:
        """A POST failed: never sent or refused (the intent goes), or its outcome is unknown
        (the record it may have made is looked up before anything is resent; ``then``, its
        second step, follows whichever way it is settled)."""
        if isinstance(exc, (Refused, Transient)):
            self._record(row, pending=None)
            raise exc
        if attempts_left <= 1 or not isinstance(exc, OutcomeUnknown):
            raise exc
        return self.resolve(row, {**data, **(then or {})}, data, attempts_left - 1, error=exc)

    def resolve(
        self,
        row: WorkRow,
        data: dict,
        sent: dict,
        attempts_left: int = UNKNOWN_CREATE_ATTEMPTS,
        error: CrmError | None = None,
    ) -> Delivered:
        """An earlier create may have landed: adopt its record if provably ours, else create.
        Raises :class:`NotSettled` while that create is younger than ``settle_s``."""
        until = self.settles_at(row)
        if until is not None and self.now() < until:
            raise NotSettled(until, data, sent, attempts_left, error)
        since = row.state.pending_since if row.state is not None else None
        found = identify.what_was_sent(self.crm, self.spec, row.key, sent, since)
        ids = self.unclaimed(row, found)
        if len(ids) == 1:
            if sent == data:
                self._record(row, crm_id=ids[0], synced=True)
                return Delivered(Outcome.CREATED, crm_id=ids[0], operation="adopt")
            return self.update(row, ids[0], data, outcome=Outcome.CREATED)
        if len(ids) > 1:
            return self._unresolved(
                row,
                f"an earlier create may have landed, and {len(ids)} CRM records hold what it "
                f"sent ({', '.join(ids[:CANDIDATES_SHOWN])})",
                candidates=ids,
            )
        if not found.complete:
            return self._unresolved(
                row,
                "an earlier create may have landed, and the lookup for it found more records "
                "than can be read",
            )
        create, then = two_step(self.spec, data)  # a deal closed on create: ongoing first
        return self.post(row, create, attempts_left, then=then)

    def settles_at(self, row: WorkRow) -> dt.datetime | None:
        """When the row's unanswered create can no longer land (None: no intent, or no wait)."""
        return settle_deadline(row.state.pending_since if row.state else None, self.settle_s)

    def unclaimed(self, row: WorkRow, found: Found) -> list[str]:
        """Candidate ids that no other key of this model holds."""
        return [
            crm_id
            for crm_id in dict.fromkeys(found.ids)
            if not (self.store.holders(self.spec.model, crm_id) - {row.key})
        ]

    def _targets_mapped_id(self, row: WorkRow) -> bool:
        """Whether the row names its CRM id itself (``_id``): then a 404 is the row's error."""
        source = self.spec.record_id_source
        return source is not None and row.values.get(source.column) is not None

    # --- outcomes --------------------------------------------------------------------------
    def _unresolved(
        self, row: WorkRow, why: str, *, candidates: list[str] | None = None, field=None
    ) -> Delivered:
        return Delivered(
            Outcome.UNRESOLVED,
            f"{why}; {settle_command(self.spec, row.key, candidates)}",
            field=field,
            operation="resolve",
        )

    def unsettled(self, row: WorkRow, later: NotSettled) -> Delivered:
        """A row whose earlier create may still land could not wait for it in this run: the
        intent stays, so the next run looks the record up before creating it again."""
        if later.error is not None:
            return self.failed(row, later.error)
        self._record(row, unsynced=True)
        return Delivered(
            Outcome.FAILED,
            f"{later} (the next run looks the record up before creating it again)",
            operation="resolve",
        )

    def failed(self, row: WorkRow, exc: CrmError) -> Delivered:
        if isinstance(exc, Refused) and exc.status == 403:
            raise PermissionDenied(
                f"the CRM refused the permission to write {self.resource} (403): {exc.message}"
            )
        reason = str(exc)
        if (
            isinstance(exc, Refused)
            and self.spec.mode.value == "organizations"
            and exc.status == 400
        ):
            reason += " (organization names are unique: add `match: name` to update it instead)"
        if isinstance(exc, OutcomeUnknown) or not isinstance(exc, (Refused, Transient)):
            reason += " (the next run looks the record up before creating it again)"
        self._record(row, refused=reason if isinstance(exc, Refused) else None, unsynced=True)
        return Delivered(
            Outcome.FAILED, reason, status=exc.status or None, field=exc.field, operation="send"
        )

    # --- state -----------------------------------------------------------------------------
    def _record(self, row: WorkRow, **change) -> None:
        """Save what the CRM now holds for this row's key (buffered until the next flush);
        ``change`` as :func:`records.transition` takes it."""
        if row.key is None:
            return
        row.state = transition(row, self.spec, self.now(), **change)
        self.store.save(row.state)
