"""Stored shapes of contacts, organizations and deals, how a payload changes a record, and
the fields the CRM computes on a deal.

Only documented keys are stored: others (top level or inside nested objects) are dropped, the
way the real API ignores attributes it does not know (see ``docs/emulator.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dbt_rdcrm.emulator.custom_fields import is_blank
from dbt_rdcrm.emulator.reference import Reference
from dbt_rdcrm.emulator.schemas import SCHEMAS

CLOSED = ("won", "lost")

# stored (and returned) shapes, in the order of each resource's reference page
BLANK: dict[str, dict[str, Any]] = {
    "contacts": {
        "name": None,
        "job_title": None,
        "emails": [],
        "phones": [],
        "birthday": None,
        "social_profiles": [],
        "organization_id": None,
        "legal_bases": [],
        "custom_fields": {},
    },
    "organizations": {
        "name": None,
        "description": None,
        "url": None,
        "address": None,
        "segment_ids": [],
        "follower_ids": [],
        "owner_id": None,
        "custom_fields": {},
    },
    "deals": {
        "name": None,
        "recurrence_price": None,
        "one_time_price": None,
        "total_price": 0,
        "expected_close_date": None,
        "rating": None,
        "status": "ongoing",
        "closed_at": None,
        "pipeline_id": None,
        "stage_id": None,
        "owner_id": None,
        "source_id": None,
        "campaign_id": None,
        "lost_reason_id": None,
        "organization_id": None,
        "contact_ids": [],
        "custom_fields": {},
    },
}


# keys kept inside nested objects; others are dropped
NESTED: dict[str, tuple[str, ...]] = {
    "emails": ("email",),
    "phones": ("phone", "type"),
    "social_profiles": ("type", "username"),
    "legal_bases": ("category", "type", "status"),
    "address": ("line", "latitude", "longitude"),
}


def clean(resource: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload as stored: documented keys only, nested objects trimmed to theirs."""
    kept: dict[str, Any] = {}
    for key, value in payload.items():
        if key == "custom_fields" or key not in SCHEMAS[resource]:
            if key == "custom_fields":
                kept[key] = value
            continue
        inner = NESTED.get(key)
        if inner and isinstance(value, list):
            value = [{k: item[k] for k in inner if k in item} for item in value]
        elif inner and isinstance(value, dict):
            value = {k: value[k] for k in inner if k in value}
        kept[key] = value
    return kept


def apply_payload(base: Mapping[str, Any], payload: Mapping[str, Any]) -> dict[str, Any]:
    """A new record: ``base`` with the payload's keys; lists replaced, custom fields merged,
    ``null`` clearing a field (lists become empty; a custom field sent as ``null``, ``""`` or
    ``[]`` is removed)."""
    record = dict(base)
    for key, value in payload.items():
        if key == "custom_fields":
            merged = {**base.get("custom_fields", {}), **value}
            record[key] = {slug: v for slug, v in merged.items() if not is_blank(v)}
        elif value is None and isinstance(base.get(key), list):
            record[key] = []
        else:
            record[key] = value
    return record


def finish_deal(
    record: dict[str, Any],
    payload: Mapping[str, Any],
    current: Mapping[str, Any] | None,
    reference: Reference,
    now: str,
) -> None:
    """Status, stage, total price and closing time of a deal about to be stored: ``closed_at``
    becomes ``now`` when the status becomes won or lost, and is cleared when it goes back to
    ongoing or paused; ``total_price`` is one-time plus recurrence price (the reference does
    not give the formula)."""
    record["status"] = record["status"] or "ongoing"
    record["pipeline_id"], record["stage_id"] = _stage_for(payload, current, reference)
    prices = (record["one_time_price"], record["recurrence_price"])
    record["total_price"] = sum(price or 0 for price in prices)
    was_closed = current is not None and current["status"] in CLOSED
    if record["status"] not in CLOSED:
        record["closed_at"] = None
    elif not was_closed:
        record["closed_at"] = now


def _stage_for(
    payload: Mapping[str, Any], current: Mapping[str, Any] | None, world: Reference
) -> tuple[str, str]:
    """Pipeline and stage of a deal: a stage alone brings its pipeline; a pipeline alone keeps
    the current stage if it belongs to it, else takes the pipeline's first stage."""
    pipeline_id, stage_id = payload.get("pipeline_id"), payload.get("stage_id")
    if stage_id:
        return world.stage_pipeline.get(stage_id) or "", stage_id
    if pipeline_id:
        if current is not None and current["pipeline_id"] == pipeline_id:
            return pipeline_id, current["stage_id"]
        return pipeline_id, world.first_stage(pipeline_id)
    if current is not None:
        return current["pipeline_id"], current["stage_id"]
    default = world.default_pipeline_id
    return default, world.first_stage(default)
