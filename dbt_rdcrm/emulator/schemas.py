"""Field checkers for CRM payloads and the error they produce.

Each checker takes the field's pointer path below ``/data``, the value and the account
(:class:`World`) and returns its problems; ``null`` is accepted for optional fields.
:data:`SCHEMAS` maps every writable payload key of each resource to its checker, as the
create/update pages document the resource (``crm-v2-create-contact``,
``crm-v2-create-organization``, ``crm-v2-create-deal``). Keys not listed are dropped, not
refused (:mod:`.shapes`; see ``docs/emulator.md``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

OBJECT_ID = re.compile(r"[0-9a-f]{24}")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
YEARLESS = re.compile(r"0000-(\d{2})-(\d{2})")
EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
PHONE_TYPES = ("work", "fax", "home", "mobile")  # crm-v2-create-contact
SOCIAL_TYPES = ("facebook", "linkedin", "skype")  # crm-v2-create-contact
LEGAL_CATEGORIES = ("communications", "data_processing")  # crm-v2-legal-bases
LEGAL_TYPES = (  # crm-v2-legal-bases
    "consent",
    "legitimate_interest",
    "pre_existent_contract",
    "judicial_process",
    "vital_interest",
    "public_interest",
)
LEGAL_STATUSES = ("granted", "declined")  # crm-v2-legal-bases
DEAL_STATUSES = ("ongoing", "won", "lost", "paused")  # crm-v2-create-deal
ENTITIES = {"contacts": "contact", "organizations": "organization", "deals": "deal"}


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


def problem(path: str, code: str, detail: str) -> list[FieldError]:
    return [FieldError(path, code, detail)]


def _name(path: str, value: Any, world: World) -> list[FieldError]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return problem(path, "REQUIRED", f"{path} can't be blank")
    return _text(path, value, world)


def _text(path: str, value: Any, world: World) -> list[FieldError]:
    if value is None or isinstance(value, str):
        return []
    return problem(path, "INVALID_TYPE", f"{path} must be a string")


def _date(path: str, value: Any, world: World) -> list[FieldError]:
    if value is None or is_date(value):
        return []
    return problem(path, "INVALID_FORMAT", f"{path} must be a date written YYYY-MM-DD")


def _birthday(path: str, value: Any, world: World) -> list[FieldError]:
    """``YYYY-MM-DD``, or ``0000-MM-DD`` when the year is unknown (crm-v2-create-contact)."""
    if value is None or is_date(value):
        return []
    match = YEARLESS.fullmatch(value) if isinstance(value, str) else None
    if match and is_date(f"2000-{match.group(1)}-{match.group(2)}"):  # 2000: Feb 29 exists
        return []
    detail = f"{path} must be a date written YYYY-MM-DD (0000-MM-DD without the year)"
    return problem(path, "INVALID_FORMAT", detail)


def _number(path: str, value: Any, world: World) -> list[FieldError]:
    if value is None or is_number(value):
        return []
    return problem(path, "INVALID_TYPE", f"{path} must be a number")


def _rating(path: str, value: Any, world: World) -> list[FieldError]:
    if value is None or (is_number(value) and isinstance(value, int) and 1 <= value <= 5):
        return []
    return problem(path, "INVALID_VALUE", f"{path} must be an integer from 1 to 5")


def _status(path: str, value: Any, world: World) -> list[FieldError]:
    if value in DEAL_STATUSES:
        return []
    return problem(path, "INVALID_VALUE", f"{path} must be one of {', '.join(DEAL_STATUSES)}")


def _idproblem(path: str, field: str, value: Any, kind: str, world: World) -> list[FieldError]:
    if not is_object_id(value):
        detail = f"{field} must be BSON::ObjectId or is in invalid format"
        return problem(path, "INVALID_FORMAT", detail)
    if not world.exists(kind, value):
        return problem(path, "NOT_FOUND", f"{field} {value} does not exist")
    return []


def _ref(kind: str) -> Checker:
    def check(path: str, value: Any, world: World) -> list[FieldError]:
        return [] if value is None else _idproblem(path, path, value, kind, world)

    return check


def _refs(kind: str) -> Checker:
    def check(path: str, value: Any, world: World) -> list[FieldError]:
        if value is None:
            return []
        if not isinstance(value, list):
            return problem(path, "INVALID_TYPE", f"{path} must be a list of ids")
        return [
            error
            for i, item in enumerate(value)
            for error in _idproblem(f"{path}/{i}", path, item, kind, world)
        ]

    return check


def _object_list(item_checks: dict[str, Checker], required: tuple[str, ...]) -> Checker:
    """A list of small objects such as ``emails`` or ``phones``."""

    def check(path: str, value: Any, world: World) -> list[FieldError]:
        if value is None:
            return []
        if not isinstance(value, list):
            return problem(path, "INVALID_TYPE", f"{path} must be a list of objects")
        errors: list[FieldError] = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                errors += problem(f"{path}/{i}", "INVALID_TYPE", f"{path}[{i}] must be an object")
                continue
            for key in required:
                if item.get(key) is None:
                    where = f"{path}/{i}/{key}"
                    errors += problem(where, "REQUIRED", f"{path}[{i}].{key} is required")
            for key, sub in item.items():
                if key in item_checks:  # other keys are dropped when stored
                    errors += item_checks[key](f"{path}/{i}/{key}", sub, world)
        return errors

    return check


def _email(path: str, value: Any, world: World) -> list[FieldError]:
    if isinstance(value, str) and EMAIL.fullmatch(value):
        return []
    return problem(path, "INVALID_FORMAT", f"{_dotted(path)} is not a valid email address")


def _phone(path: str, value: Any, world: World) -> list[FieldError]:
    if isinstance(value, str) and value.strip():
        return []
    return problem(path, "INVALID_FORMAT", f"{_dotted(path)} must be a non-empty string")


def _enum(choices: tuple[str, ...]) -> Checker:
    def check(path: str, value: Any, world: World) -> list[FieldError]:
        if value is None or value in choices:
            return []
        detail = f"{_dotted(path)} must be one of {', '.join(choices)}"
        return problem(path, "INVALID_VALUE", detail)

    return check


def _address(path: str, value: Any, world: World) -> list[FieldError]:
    """``{"line", "latitude", "longitude"}``, all strings (crm-v2-create-organization)."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return problem(path, "INVALID_TYPE", f"{path} must be an object")
    return [
        error
        for key in ("line", "latitude", "longitude")
        if key in value
        for error in _text(f"{path}/{key}", value[key], world)
    ]


def _dotted(path: str) -> str:
    """``emails/0/email`` → ``emails[0].email`` for messages."""
    field, index, key = path.split("/")
    return f"{field}[{index}].{key}"


_EMAILS = _object_list({"email": _email}, required=("email",))
_PHONES = _object_list({"phone": _phone, "type": _enum(PHONE_TYPES)}, required=("phone",))
_SOCIAL = _object_list(
    {"type": _enum(SOCIAL_TYPES), "username": _text}, required=("type", "username")
)
_LEGAL = _object_list(
    {
        "category": _enum(LEGAL_CATEGORIES),
        "type": _enum(LEGAL_TYPES),
        "status": _enum(LEGAL_STATUSES),
    },
    required=("category", "type", "status"),
)

SCHEMAS: dict[str, dict[str, Checker]] = {
    "contacts": {  # crm-v2-create-contact
        "name": _name,
        "job_title": _text,
        "emails": _EMAILS,
        "phones": _PHONES,
        "birthday": _birthday,
        "social_profiles": _SOCIAL,
        "organization_id": _ref("organizations"),
        "legal_bases": _LEGAL,
    },
    "organizations": {  # crm-v2-create-organization: no phones in v2
        "name": _name,
        "description": _text,
        "url": _text,
        "address": _address,
        "segment_ids": _refs("segments"),
        "follower_ids": _refs("users"),
        "owner_id": _ref("users"),
    },
    "deals": {  # crm-v2-create-deal; total_price and closed_at are computed
        "name": _name,
        "recurrence_price": _number,
        "one_time_price": _number,
        "expected_close_date": _date,
        "rating": _rating,
        "status": _status,
        "pipeline_id": _ref("pipelines"),
        "stage_id": _ref("stages"),
        "owner_id": _ref("users"),
        "source_id": _ref("sources"),
        "campaign_id": _ref("campaigns"),
        "lost_reason_id": _ref("lost_reasons"),
        "organization_id": _ref("organizations"),
        "contact_ids": _refs("contacts"),
    },
}
