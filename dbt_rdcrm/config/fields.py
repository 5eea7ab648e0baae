"""Destination fields per mode: what a user may map, and what each becomes in the v2 payload."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class Mode(str, Enum):
    CONTACTS = "contacts"
    DEALS = "deals"
    ORGANIZATIONS = "organizations"

    @property
    def object_type(self) -> str:
        """Singular name used in state and messages."""
        return {"contacts": "contact", "deals": "deal", "organizations": "organization"}[self.value]


class Kind(str, Enum):
    """How a value is checked and shaped before it goes into the payload."""

    TEXT = "text"
    EMAIL = "email"  # -> emails: [{"email": v}]
    PHONE = "phone"  # -> phones: [{"phone": v}]
    ID = "id"  # 24-hex ObjectId
    IDS = "ids"  # list of 24-hex ObjectIds (list column or comma-separated text)
    DATE = "date"  # YYYY-MM-DD
    NUMBER = "number"
    RATING = "rating"  # integer 1-5
    STATUS = "status"  # ongoing | won | lost | paused
    CUSTOM = "custom"  # custom_fields.<slug>: passed through as JSON


@dataclass(frozen=True)
class FieldDef:
    name: str  # what the user writes in `mapping`
    kind: Kind
    payload_key: str  # top-level key in the v2 payload


RECORD_ID = "_id"
DEAL_STATUSES = ("ongoing", "won", "lost", "paused")
SLUG_PATTERN = re.compile(r"^@[A-Za-z0-9_][A-Za-z0-9_-]*$")


def _fields(*defs: tuple[str, Kind, str]) -> dict[str, FieldDef]:
    return {name: FieldDef(name, kind, key) for name, kind, key in defs}


FIELDS: dict[Mode, dict[str, FieldDef]] = {
    Mode.CONTACTS: _fields(
        (RECORD_ID, Kind.ID, "id"),
        ("name", Kind.TEXT, "name"),
        ("email", Kind.EMAIL, "emails"),
        ("phone", Kind.PHONE, "phones"),
        ("job_title", Kind.TEXT, "job_title"),
        ("birthday", Kind.DATE, "birthday"),
        ("organization_id", Kind.ID, "organization_id"),
    ),
    Mode.DEALS: _fields(
        (RECORD_ID, Kind.ID, "id"),
        ("name", Kind.TEXT, "name"),
        ("status", Kind.STATUS, "status"),
        ("contact_id", Kind.IDS, "contact_ids"),
        ("organization_id", Kind.ID, "organization_id"),
        ("stage_id", Kind.ID, "stage_id"),
        ("pipeline_id", Kind.ID, "pipeline_id"),
        ("owner_id", Kind.ID, "owner_id"),
        ("campaign_id", Kind.ID, "campaign_id"),
        ("expected_close_date", Kind.DATE, "expected_close_date"),
        ("rating", Kind.RATING, "rating"),
        ("one_time_price", Kind.NUMBER, "one_time_price"),
        ("recurrence_price", Kind.NUMBER, "recurrence_price"),
        ("source_id", Kind.ID, "source_id"),
        ("lost_reason_id", Kind.ID, "lost_reason_id"),
    ),
    Mode.ORGANIZATIONS: _fields(
        (RECORD_ID, Kind.ID, "id"),
        ("name", Kind.TEXT, "name"),
        ("website", Kind.TEXT, "url"),
        ("phone", Kind.PHONE, "phones"),
        ("description", Kind.TEXT, "description"),
        ("owner_id", Kind.ID, "owner_id"),
        ("segment_ids", Kind.IDS, "segment_ids"),
    ),
}

# Fields that may be filled from another synced model's CRM ids, and the mode that model must have.
LINKABLE: dict[Mode, dict[str, Mode]] = {
    Mode.CONTACTS: {"organization_id": Mode.ORGANIZATIONS},
    Mode.DEALS: {"organization_id": Mode.ORGANIZATIONS, "contact_id": Mode.CONTACTS},
    Mode.ORGANIZATIONS: {},
}

# Fields a `match:` may name (besides any mapped `@slug`), per mode; all are filterable in RDQL.
MATCHABLE: dict[Mode, tuple[str, ...]] = {
    Mode.CONTACTS: ("email", "name", "phone"),
    Mode.ORGANIZATIONS: ("name",),
    Mode.DEALS: ("name",),
}


def field_def(mode: Mode, name: str) -> FieldDef | None:
    """The definition of ``name`` for ``mode``; custom fields (``@slug``) are always allowed."""
    if SLUG_PATTERN.match(name):
        return FieldDef(name, Kind.CUSTOM, "custom_fields")
    return FIELDS[mode].get(name)


def is_custom(name: str) -> bool:
    return name.startswith("@")
