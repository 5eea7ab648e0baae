"""Payload validation for contacts, organizations and deals.

:func:`validate` returns every problem of a payload at once, each naming its field with a JSON
pointer below ``/data`` (``/data/owner_id``, ``/data/emails/0/email``,
``/data/custom_fields/cpf``). ``null`` is accepted for optional fields and clears them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, Protocol

Mode = Literal["create", "update", "seed"]

OBJECT_ID = re.compile(r"[0-9a-f]{24}")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
PHONE_TYPES = ("work", "home", "mobile", "fax")
DEAL_STATUSES = ("ongoing", "won", "lost", "paused")
ENTITIES = {"contacts": "contact", "organizations": "organization", "deals": "deal"}
CUSTOM_FIELD_TYPES = ("text", "number", "date", "option", "multiple_option", "boolean")


@dataclass(frozen=True)
class FieldError:
    """One problem with one field: ``path`` is the pointer below ``/data``."""

    path: str
    code: str
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "422",
            "code": self.code,
            "detail": self.detail,
            "source": {"pointer": f"/data/{self.path}"},
        }


class ValidationFailed(Exception):
    def __init__(self, errors: list[FieldError]):
        super().__init__("; ".join(error.detail for error in errors))
        self.errors = errors


class World(Protocol):
    """What validation needs to know about the account."""

    def exists(self, kind: str, record_id: str) -> bool: ...

    def stage_pipeline(self, stage_id: str) -> str | None: ...

    def custom_fields(self, entity: str) -> Mapping[str, Mapping[str, Any]]: ...


Checker = Callable[[str, Any, World], list[FieldError]]


def is_object_id(value: Any) -> bool:
    return isinstance(value, str) and OBJECT_ID.fullmatch(value) is not None


def is_date(value: Any) -> bool:
    """A real calendar date written ``YYYY-MM-DD``."""
    if not isinstance(value, str) or not DATE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _name(path: str, value: Any, world: World) -> list[FieldError]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return [FieldError(path, "REQUIRED", f"{path} can't be blank")]
    if not isinstance(value, str):
        return [FieldError(path, "INVALID_TYPE", f"{path} must be a string")]
    return []


def _text(path: str, value: Any, world: World) -> list[FieldError]:
    if value is None or isinstance(value, str):
        return []
    return [FieldError(path, "INVALID_TYPE", f"{path} must be a string")]


def _date(path: str, value: Any, world: World) -> list[FieldError]:
    if value is None or is_date(value):
        return []
    return [FieldError(path, "INVALID_FORMAT", f"{path} must be a date written YYYY-MM-DD")]


def _number(path: str, value: Any, world: World) -> list[FieldError]:
    if value is None or is_number(value):
        return []
    return [FieldError(path, "INVALID_TYPE", f"{path} must be a number")]


def _rating(path: str, value: Any, world: World) -> list[FieldError]:
    if value is None or (
        isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5
    ):
        return []
    return [FieldError(path, "INVALID_VALUE", f"{path} must be an integer from 1 to 5")]


def _status(path: str, value: Any, world: World) -> list[FieldError]:
    if value in DEAL_STATUSES:
        return []
    return [FieldError(path, "INVALID_VALUE", f"{path} must be one of {', '.join(DEAL_STATUSES)}")]


def _id_error(path: str, field: str, value: Any, kind: str, world: World) -> FieldError | None:
    if not is_object_id(value):
        return FieldError(
            path, "INVALID_FORMAT", f"{field} must be BSON::ObjectId or is in invalid format"
        )
    if not world.exists(kind, value):
        return FieldError(path, "NOT_FOUND", f"{field} {value} does not exist")
    return None


def _ref(kind: str) -> Checker:
    def check(path: str, value: Any, world: World) -> list[FieldError]:
        if value is None:
            return []
        error = _id_error(path, path, value, kind, world)
        return [error] if error else []

    return check


def _refs(kind: str) -> Checker:
    def check(path: str, value: Any, world: World) -> list[FieldError]:
        if value is None:
            return []
        if not isinstance(value, list):
            return [FieldError(path, "INVALID_TYPE", f"{path} must be a list of ids")]
        errors = (_id_error(f"{path}/{i}", path, item, kind, world) for i, item in enumerate(value))
        return [error for error in errors if error]

    return check


def _object_list(item_checks: dict[str, Checker], required: str) -> Checker:
    """A list of small objects such as ``emails`` or ``phones``."""

    def check(path: str, value: Any, world: World) -> list[FieldError]:
        if value is None:
            return []
        if not isinstance(value, list):
            return [FieldError(path, "INVALID_TYPE", f"{path} must be a list of objects")]
        errors: list[FieldError] = []
        for i, item in enumerate(value):
            where = f"{path}/{i}"
            if not isinstance(item, dict):
                errors.append(FieldError(where, "INVALID_TYPE", f"{path}[{i}] must be an object"))
                continue
            if required not in item:
                errors.append(
                    FieldError(
                        f"{where}/{required}", "REQUIRED", f"{path}[{i}].{required} is required"
                    )
                )
            for key, sub in item.items():
                if key not in item_checks:
                    errors.append(
                        FieldError(
                            f"{where}/{key}",
                            "UNKNOWN_FIELD",
                            f"{path}[{i}].{key} is not a known field",
                        )
                    )
                else:
                    errors += item_checks[key](f"{where}/{key}", sub, world)
        return errors

    return check


def _email(path: str, value: Any, world: World) -> list[FieldError]:
    if isinstance(value, str) and EMAIL.fullmatch(value):
        return []
    return [FieldError(path, "INVALID_FORMAT", f"{_dotted(path)} is not a valid email address")]


def _phone(path: str, value: Any, world: World) -> list[FieldError]:
    if isinstance(value, str) and value.strip():
        return []
    return [FieldError(path, "INVALID_FORMAT", f"{_dotted(path)} must be a non-empty string")]


def _phone_type(path: str, value: Any, world: World) -> list[FieldError]:
    if value is None or value in PHONE_TYPES:
        return []
    return [
        FieldError(
            path, "INVALID_VALUE", f"{_dotted(path)} must be one of {', '.join(PHONE_TYPES)}"
        )
    ]


def _dotted(path: str) -> str:
    """``emails/0/email`` → ``emails[0].email`` for messages."""
    field, index, key = path.split("/")
    return f"{field}[{index}].{key}"


_EMAILS = _object_list({"email": _email}, required="email")
_PHONES = _object_list({"phone": _phone, "type": _phone_type}, required="phone")

SCHEMAS: dict[str, dict[str, Checker]] = {
    "contacts": {
        "name": _name,
        "job_title": _text,
        "birthday": _date,
        "organization_id": _ref("organizations"),
        "emails": _EMAILS,
        "phones": _PHONES,
    },
    "organizations": {
        "name": _name,
        "url": _text,
        "description": _text,
        "phones": _PHONES,
        "owner_id": _ref("users"),
        "segment_ids": _refs("segments"),
    },
    "deals": {
        "name": _name,
        "status": _status,
        "contact_ids": _refs("contacts"),
        "organization_id": _ref("organizations"),
        "pipeline_id": _ref("pipelines"),
        "stage_id": _ref("stages"),
        "owner_id": _ref("users"),
        "campaign_id": _ref("campaigns"),
        "expected_close_date": _date,
        "rating": _rating,
        "one_time_price": _number,
        "recurrence_price": _number,
    },
}


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
    if mode == "create" and status is not None and status != "ongoing" and "status" not in failed:
        errors.append(
            FieldError("status", "INVALID_VALUE", "status must be ongoing (or absent) on create")
        )
    if mode == "update":
        for key in ("pipeline_id", "stage_id", "owner_id"):
            if key in payload and payload[key] is None:
                errors.append(FieldError(key, "REQUIRED", f"{key} can't be blank"))
    pipeline_id, stage_id = payload.get("pipeline_id"), payload.get("stage_id")
    checkable = pipeline_id and stage_id and not failed & {"pipeline_id", "stage_id"}
    if checkable and world.stage_pipeline(stage_id) != pipeline_id:
        detail = f"stage_id {stage_id} does not belong to pipeline_id {pipeline_id}"
        errors.append(FieldError("stage_id", "INVALID_VALUE", detail))
    return errors


def _custom_fields(value: Any, entity: str, world: World) -> list[FieldError]:
    if not isinstance(value, dict):
        return [FieldError("custom_fields", "INVALID_TYPE", "custom_fields must be an object")]
    definitions = world.custom_fields(entity)
    errors: list[FieldError] = []
    for slug, item in value.items():
        path = f"custom_fields/{slug}"
        definition = definitions.get(slug)
        if definition is None:
            errors.append(
                FieldError(
                    path, "UNKNOWN_FIELD", f"custom field {slug} does not exist for {entity}"
                )
            )
        elif item is not None and not custom_value_ok(definition, item):
            errors.append(
                FieldError(path, "INVALID_VALUE", f"custom field {slug} {_expected(definition)}")
            )
    return errors


def _missing_custom_fields(value: Any, entity: str, world: World) -> list[FieldError]:
    given = value if isinstance(value, dict) else {}
    return [
        FieldError(f"custom_fields/{slug}", "REQUIRED", f"custom field {slug} is required")
        for slug, definition in world.custom_fields(entity).items()
        if definition.get("required") and given.get(slug) is None
    ]


def custom_value_ok(definition: Mapping[str, Any], value: Any) -> bool:
    kind, options = definition["type"], definition.get("options") or []
    if kind == "text":
        return isinstance(value, str)
    if kind == "number":
        return is_number(value)
    if kind == "date":
        return is_date(value)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "option":
        return isinstance(value, str) and value in options
    if kind == "multiple_option":
        return isinstance(value, list) and all(isinstance(v, str) and v in options for v in value)
    return False


def _expected(definition: Mapping[str, Any]) -> str:
    options = ", ".join(definition.get("options") or [])
    return {
        "text": "must be a string",
        "number": "must be a number",
        "date": "must be a date written YYYY-MM-DD",
        "boolean": "must be true or false",
        "option": f"must be one of: {options}",
        "multiple_option": f"must be a list of: {options}",
    }.get(definition["type"], "has an unsupported type")
