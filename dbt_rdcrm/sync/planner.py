"""Per row, what to do: one typed decision. Pure, no I/O.

``Reject`` (invalid, never sent), ``Wait`` (a linked parent has no CRM id yet),
``RefusedBefore`` (the CRM refused this exact payload already), ``Create`` (POST, after a
``match:`` lookup when one is declared), ``Update`` (PUT to a known id), ``Resolve`` (an earlier
create's outcome is unknown: find the record it may have made before anything is resent).
"""

from __future__ import annotations

from dataclasses import dataclass

from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.sync.keys import encode_key
from dbt_rdcrm.sync.mapper import RowRejected, build_payload, check_create
from dbt_rdcrm.sync.records import WorkRow


@dataclass(frozen=True)
class Reject:
    reason: str
    field: str | None = None
    requests: int = 0
    operation: str = "decide"  # what the sync log names as the step that refused it


@dataclass(frozen=True)
class Wait:
    field: str
    parent_model: str
    parent_key: str
    requests: int = 0

    @property
    def reason(self) -> str:
        return f"waiting for {self.parent_model} to sync the linked record ({self.field})"


@dataclass(frozen=True)
class RefusedBefore:
    reason: str
    requests: int = 0


@dataclass(frozen=True)
class Create:
    data: dict
    match: str | None = None  # the `match:` value to look up first, if any
    then: dict | None = None  # a second step after the create (a deal's closing status)
    looked_up: bool = False  # the match value's lookup was made already, in a batch

    @property
    def requests(self) -> int:
        lookup = self.match is not None and not self.looked_up
        return 1 + lookup + (self.then is not None)


@dataclass(frozen=True)
class Update:
    crm_id: str
    data: dict
    requests: int = 1


@dataclass(frozen=True)
class Resolve:
    data: dict  # what this row would send now
    sent: dict  # what the unknown create sent
    requests: int = 2


Decision = Reject | Wait | RefusedBefore | Create | Update | Resolve
SENDS = (Create, Update, Resolve)


def payload_value(data: dict, field: str) -> str | None:
    """The value a payload sets for a match field (first e-mail/phone), as text."""
    if field.startswith("@"):
        value = (data.get("custom_fields") or {}).get(field[1:])
    elif field == "email":
        value = (data.get("emails") or [{}])[0].get("email")
    elif field == "phone":
        value = (data.get("phones") or [{}])[0].get("phone")
    else:
        value = data.get(field)
    return None if value is None or value == "" else str(value)


def with_identity(spec: SyncSpec, data: dict, key: str) -> dict:
    """The payload with the row's key in the identity custom field, when one is declared."""
    if spec.identity is None:
        return data
    custom = dict(data.get("custom_fields") or {})
    custom[spec.identity[1:]] = key
    return {**data, "custom_fields": custom}


def decide(spec: SyncSpec, row: WorkRow, *, retry_failed: bool = False) -> Decision:
    if row.key is None:
        columns = ", ".join(spec.key)
        return Reject(f"key ({columns}) is null", spec.key[0] if spec.key else None)
    if row.key_count > 1:
        if not spec.key:
            return Reject(f"identical to {row.key_count - 1} other row(s): synced once")
        return Reject(f"duplicate key: {row.key_count} rows share it")
    for source in spec.links:
        parent = [row.values.get(c) for c in source.link.columns]
        if None not in parent and row.link_ids.get(source.field) is None:
            return Wait(source.field, source.link.model, encode_key(parent))
    try:
        data, record_id = build_payload(spec, row.values, row.link_ids)
    except RowRejected as exc:
        return Reject(exc.reason, exc.field)
    data = with_identity(spec, data, row.key)
    state = row.state
    if (
        not retry_failed
        and state is not None
        and state.refused_hash == row.row_hash
        and state.refused_reason
    ):
        return RefusedBefore(
            f"refused earlier and unchanged since: {state.refused_reason} "
            "(fix the row, or sync with --retry-failed)"
        )
    target = record_id or (state.crm_id if state is not None else None)
    if target is not None:
        return Update(target, data)
    data, then = two_step(spec, data)
    try:
        check_create(spec.mode, data)
    except RowRejected as exc:
        return Reject(exc.reason, exc.field)
    if state is not None and state.pending:
        sent = state.sent_payload()
        if sent is None:  # an intent written before payloads were kept: same row, same payload
            sent = data if state.pending_hash == row.row_hash else {}
        return Resolve({**data, **(then or {})}, sent)  # after adopting, the status follows
    match = payload_value(data, spec.match) if spec.match else None
    return Create(data, match, then)


def two_step(spec: SyncSpec, data: dict) -> tuple[dict, dict | None]:
    """With ``status_on_create: two_step``, a deal that is not ongoing is created ongoing and
    its status (and lost reason) set right after."""
    status = data.get("status")
    if not spec.two_step_status or status in (None, "ongoing"):
        return data, None
    then = {"status": status}
    if "lost_reason_id" in data:
        then["lost_reason_id"] = data["lost_reason_id"]
    first = {k: v for k, v in data.items() if k not in then}
    return {**first, "status": "ongoing"}, then
