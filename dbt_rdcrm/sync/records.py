"""The state's rows as values: id map entries, log entries, lease tickets and rows of work."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field, replace


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@dataclass
class IdMapRow:
    """What the state knows about one row key of one model in one CRM scope."""

    model_name: str
    row_key: str
    object_type: str
    crm_id: str | None = None
    synced_hash: str | None = None
    synced_at: dt.datetime | None = None
    pending_hash: str | None = None  # a create intent: the row hash it was made for
    pending_since: dt.datetime | None = None
    refused_hash: str | None = None
    refused_reason: str | None = None
    updated_at: dt.datetime = field(default_factory=utcnow)
    pending_payload: str | None = None  # the create intent's payload, as JSON
    id_sig: str | None = None  # md5 of scope|model|key|crm id: an id edited by hand shows

    @property
    def pending(self) -> bool:
        return self.pending_since is not None

    def without_intent(self, **changes) -> IdMapRow:
        """This row with its create intent settled (and ``changes``), stamped now."""
        return replace(
            self,
            pending_hash=None,
            pending_since=None,
            pending_payload=None,
            **{"updated_at": utcnow(), **changes},
        )

    def sent_payload(self) -> dict | None:
        """The payload of the pending create, if it was recorded."""
        if not self.pending_payload:
            return None
        try:
            value = json.loads(self.pending_payload)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


def id_signature(scope: str, model: str, key: str, crm_id: str) -> str:
    """What the tool records beside each CRM id; the state SQL computes the same (md5 hex)."""
    return hashlib.md5(f"{scope}|{model}|{key}|{crm_id}".encode()).hexdigest()


@dataclass(frozen=True)
class LogEntry:
    run_id: str
    invocation_id: str | None
    model_name: str
    row_key: str | None
    operation: str
    outcome: str
    http_status: int | None
    reason: str | None
    crm_id: str | None
    logged_at: dt.datetime


@dataclass(frozen=True)
class LeaseTicket:
    """One run's claim on the state of a CRM scope; the earliest live ticket holds the lease."""

    run_id: str
    holder: str  # host, process and command, for the message a waiting run prints
    ticket_at: dt.datetime  # UTC, on the claimant's clock
    expires_at: dt.datetime
    confirmed_at: dt.datetime | None = None


@dataclass
class WorkRow:
    """One model row that needs a decision, with what the state knows about its key."""

    number: int  # 1-based position in this run's work, for rows without a usable key
    values: dict[str, object]
    key: str | None
    key_count: int
    row_hash: str
    link_ids: dict[str, str | None]
    state: IdMapRow | None


def transition(
    row: WorkRow,
    spec,
    now: dt.datetime,
    *,
    crm_id: str | None = None,
    synced: bool = False,
    cleared: bool = False,
    pending: dict | None | bool = False,
    refused: str | None = None,
    unsynced: bool = False,
) -> IdMapRow:
    """The row's id map entry after what the CRM just did: ``synced`` (in step with ``crm_id``,
    any intent settled), ``cleared`` (the record is gone), ``pending`` (a create intent with
    its payload; None drops it; False leaves it), ``refused`` (the CRM refused this content),
    ``unsynced`` (no longer in step)."""
    state = row.state or IdMapRow(spec.model, row.key, spec.mode.object_type)
    if synced:
        state = state.without_intent(
            crm_id=crm_id,
            synced_hash=row.row_hash,
            synced_at=now,
            refused_hash=None,
            refused_reason=None,
        )
    if cleared:
        state = replace(state, crm_id=None, synced_hash=None)
    if pending is not False:
        state = replace(
            state,
            pending_hash=row.row_hash if pending else None,
            pending_since=now if pending else None,
            pending_payload=json.dumps(pending, sort_keys=True, default=str) if pending else None,
        )
    if unsynced:
        state = replace(state, synced_hash=None)
    if refused is not None:
        state = replace(state, refused_hash=row.row_hash, refused_reason=refused[:500])
    return replace(state, updated_at=now)
