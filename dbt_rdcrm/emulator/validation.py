"""Payload validation for contacts, organizations and deals.

:func:`validate` returns every problem of a payload at once, each naming its field with a JSON
pointer below ``/data`` (``/data/owner_id``, ``/data/emails/0/email``,
``/data/custom_fields/cpf``): unknown keys, per-field checks (:mod:`.schemas`), required name
and custom fields on create, custom field values, and the deal rules (status on create, stage
in pipeline).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from dbt_rdcrm.emulator.schemas import (
    ENTITIES,
    SCHEMAS,
    FieldError,
    World,
    is_date,
    is_number,
    problem,
)

Mode = Literal["create", "update", "seed"]


class ValidationFailed(Exception):
    """A payload the store refuses; ``errors`` holds every problem (a 422)."""

    def __init__(self, errors: list[FieldError]):
        super().__init__("; ".join(error.detail for error in errors))
        self.errors = errors


def validate(
    resource: str, payload: Mapping[str, Any], world: World, *, mode: Mode
) -> list[FieldError]:
    """Every problem of ``payload`` for ``resource``; an empty list means it can be stored."""
    schema = SCHEMAS[resource]
    entity = ENTITIES[resource]
    errors: list[FieldError] = []
    for key, value in payload.items():
        if key == "custom_fields":
            errors += _custom_fields(value, entity, world)
        elif key in schema:
            errors += schema[key](key, value, world)
        else:
            errors.append(FieldError(key, "UNKNOWN_FIELD", f"{key} is not a field of {entity}"))
    if mode != "update":
        if "name" not in payload:
            errors.append(FieldError("name", "REQUIRED", "name can't be blank"))
        errors += _missing_custom_fields(payload.get("custom_fields"), entity, world)
    if resource == "deals":
        errors += _deal_rules(payload, world, mode, failed={e.path for e in errors})
    return errors


def _deal_rules(
    payload: Mapping[str, Any], world: World, mode: Mode, failed: set[str]
) -> list[FieldError]:
    errors: list[FieldError] = []
    status = payload.get("status")
    if mode == "create" and status not in (None, "ongoing") and "status" not in failed:
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


def _custom_fields(value: Any, entity: str, world: World) -> list[FieldError]:
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
        elif item is not None and not custom_value_ok(definition, item):
            errors += problem(path, "INVALID_VALUE", f"custom field {slug} {_expected(definition)}")
    return errors


def _missing_custom_fields(value: Any, entity: str, world: World) -> list[FieldError]:
    given = value if isinstance(value, dict) else {}
    return [
        FieldError(f"custom_fields/{slug}", "REQUIRED", f"custom field {slug} is required")
        for slug, definition in world.custom_fields(entity).items()
        if definition.get("required") and given.get(slug) is None
    ]


def custom_value_ok(definition: Mapping[str, Any], value: Any) -> bool:
    options = definition.get("options") or []
    checks: dict[str, Callable[[Any], bool]] = {
        "text": lambda v: isinstance(v, str),
        "number": is_number,
        "date": is_date,
        "boolean": lambda v: isinstance(v, bool),
        "option": lambda v: isinstance(v, str) and v in options,
        "multiple_option": lambda v: isinstance(v, list) and all(o in options for o in v),
    }
    check = checks.get(definition["type"])
    return check is not None and check(value)


def _expected(definition: Mapping[str, Any]) -> str:
    options = ", ".join(definition.get("options") or [])
    return {
        "text": "must be a string",
        "number": "must be a number",
        "date": "must be a date written YYYY-MM-DD",
        "boolean": "must be true or false",
        "option": f"must be one of: {options}",
        "multiple_option": f"must be a list of: {options}",
    }[definition["type"]]
