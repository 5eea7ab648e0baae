"""Payload validation for contacts, organizations and deals.

:func:`validate` returns every problem of a payload at once, each naming its field with a JSON
pointer below ``/data`` (``/data/owner_id``, ``/data/emails/0/email``,
``/data/custom_fields/cpf``): per-field checks (:mod:`.schemas`), the name on create, custom
field values (:mod:`.custom_fields`), and the deal rules (status on create, stage in
pipeline). Undocumented keys are dropped, not refused; fixtures (``mode="seed"``) refuse them.
:func:`required_problems` checks required custom fields against the record as it would be
stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol

from dbt_rdcrm.emulator.custom_fields import is_blank, required_for, value_problem
from dbt_rdcrm.emulator.schemas import ENTITIES, SCHEMAS, FieldError, World, problem

Mode = Literal["create", "update", "seed"]
READ_ONLY = ("id", "created_at", "updated_at", "total_price", "closed_at")


class Account(World, Protocol):
    def value_taken(self, entity: str, slug: str, value: Any, own_id: str | None) -> bool: ...


class ValidationFailed(Exception):
    """A payload the store refuses; ``errors`` holds every problem (a 422)."""

    def __init__(self, errors: list[FieldError]):
        super().__init__("; ".join(error.detail for error in errors))
        self.errors = errors


def validate(
    resource: str,
    payload: Mapping[str, Any],
    world: Account,
    *,
    mode: Mode,
    own_id: str | None = None,
) -> list[FieldError]:
    """Every problem of ``payload`` for ``resource``; an empty list means it can be stored."""
    schema = SCHEMAS[resource]
    entity = ENTITIES[resource]
    errors: list[FieldError] = []
    for key, value in payload.items():
        if key == "custom_fields":
            errors += _custom_fields(value, entity, world, own_id)
        elif key in schema:
            errors += schema[key](key, value, world)
        elif mode == "seed" and key not in READ_ONLY:
            errors.append(FieldError(key, "UNKNOWN_FIELD", f"{key} is not a field of {entity}"))
    if mode != "update" and "name" not in payload:
        errors.append(FieldError("name", "REQUIRED", "name can't be blank"))
    if resource == "deals":
        errors += _deal_rules(payload, world, mode, failed={e.path for e in errors})
    return errors


def required_problems(
    entity: str,
    record: Mapping[str, Any],
    world: World,
    payload: Mapping[str, Any] | None = None,
) -> list[FieldError]:
    """Required custom fields ``record`` lacks. On update (``payload`` given) only the fields
    the payload clears, or all of them when it moves the deal to another stage or pipeline."""
    moved = payload is not None and bool({"stage_id", "pipeline_id"} & payload.keys())
    sent = (payload or {}).get("custom_fields")
    touched = set(sent) if isinstance(sent, dict) else set()
    values = record.get("custom_fields") or {}
    return [
        FieldError(f"custom_fields/{slug}", "REQUIRED", f"custom field {slug} is required")
        for slug, definition in world.custom_fields(entity).items()
        if (payload is None or moved or slug in touched)
        and required_for(definition, record)
        and is_blank(values.get(slug))
    ]


def _deal_rules(
    payload: Mapping[str, Any], world: World, mode: Mode, failed: set[str]
) -> list[FieldError]:
    errors: list[FieldError] = []
    status = payload.get("status")
    if mode == "create" and status not in (None, "ongoing") and "status" not in failed:
        # crm-v2-create-deal: "Somente é permitido criar negociações com status ongoing"
        errors += problem("status", "INVALID_VALUE", "status must be ongoing (or absent) on create")
    if mode == "update":
        for key in ("pipeline_id", "stage_id", "owner_id"):
            if key in payload and payload[key] is None:
                errors += problem(key, "REQUIRED", f"{key} can't be blank")
    pipeline_id, stage_id = payload.get("pipeline_id"), payload.get("stage_id")
    checkable = pipeline_id and stage_id and not failed & {"pipeline_id", "stage_id"}
    if checkable and world.stage_pipeline(stage_id) != pipeline_id:
        detail = f"stage_id {stage_id} does not belong to pipeline_id {pipeline_id}"
        errors += problem("stage_id", "INVALID_VALUE", detail)
    return errors


def _custom_fields(value: Any, entity: str, world: Account, own_id: str | None) -> list[FieldError]:
    if not isinstance(value, dict):
        return problem("custom_fields", "INVALID_TYPE", "custom_fields must be an object")
    definitions = world.custom_fields(entity)
    errors: list[FieldError] = []
    for slug, item in value.items():
        path, definition = f"custom_fields/{slug}", definitions.get(slug)
        if definition is None:
            errors += problem(
                path, "UNKNOWN_FIELD", f"custom field {slug} does not exist for {entity}"
            )
            continue
        if is_blank(item):
            continue
        wrong = value_problem(definition, item)
        if wrong:
            errors += problem(path, "INVALID_VALUE", f"custom field {slug} {wrong}")
        elif definition["unique"] and world.value_taken(entity, slug, item, own_id):
            errors += problem(path, "TAKEN", f"custom field {slug} must be unique: value in use")
    return errors
