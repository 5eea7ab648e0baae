"""Per row: reject, wait, create, update, or resolve an earlier create. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.sync.mapper import RowRejected, build_payload, check_create
from dbt_rdcrm.sync.state import WorkRow


class Action(str, Enum):
    REJECT = "reject"  # invalid: never sent
    WAIT = "wait"  # a linked parent has no CRM id yet
    REFUSED_BEFORE = "refused_before"  # the CRM refused this exact payload already
    CREATE = "create"  # POST (after a match lookup when `match` is set)
    UPDATE = "update"  # PUT to a known id
    RESOLVE = "resolve"  # an earlier create's outcome is unknown: look it up first


# Requests each action costs when all goes well (what `plan` counts).
REQUESTS = {
    Action.REJECT: 0,
    Action.WAIT: 0,
    Action.REFUSED_BEFORE: 0,
    Action.UPDATE: 1,
    Action.CREATE: 1,
    Action.RESOLVE: 2,
}


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str | None = None
    field: str | None = None
    data: dict | None = None
    crm_id: str | None = None
    match: bool = False

    @property
    def requests(self) -> int:
        return REQUESTS[self.action] + (1 if self.match else 0)


def decide(spec: SyncSpec, row: WorkRow, *, retry_failed: bool = False) -> Decision:
    if row.key is None:
        columns = ", ".join(spec.key)
        return Decision(Action.REJECT, f"key ({columns}) is null", spec.key[0])
    if row.key_count > 1:
        return Decision(Action.REJECT, f"duplicate key: {row.key_count} rows share it")
    for source in spec.links:
        has_parent_key = all(row.values.get(c) is not None for c in source.link.columns)
        if has_parent_key and row.link_ids.get(source.field) is None:
            return Decision(
                Action.WAIT,
                f"waiting for {source.link.model} to sync the linked record ({source.field})",
                source.field,
            )
    try:
        data, record_id = build_payload(spec, row.values, row.link_ids)
    except RowRejected as exc:
        return Decision(Action.REJECT, exc.reason, exc.field)
    state = row.state
    if (
        not retry_failed
        and state is not None
        and state.refused_hash == row.row_hash
        and state.refused_reason
    ):
        return Decision(
            Action.REFUSED_BEFORE,
            f"refused earlier and unchanged since: {state.refused_reason} "
            "(fix the row, or sync with --retry-failed)",
        )
    target = record_id or (state.crm_id if state is not None else None)
    if target is not None:
        return Decision(Action.UPDATE, data=data, crm_id=target)
    try:
        check_create(spec.mode, data)
    except RowRejected as exc:
        return Decision(Action.REJECT, exc.reason, exc.field)
    if state is not None and state.pending_hash is not None:
        return Decision(Action.RESOLVE, data=data)
    return Decision(Action.CREATE, data=data, match=spec.match is not None)
