"""Rows to v2 payloads: pure functions, no I/O.

A value that the CRM would surely refuse raises :class:`RowRejected` with a reason that names the
field and the problem, never the value (rows may hold personal data).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from decimal import Decimal

import jinja2

from dbt_rdcrm.config.fields import DEAL_STATUSES, RECORD_ID, FieldDef, Kind, Mode
from dbt_rdcrm.config.specs import Source, SyncSpec, template_env

OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class RowRejected(Exception):
    """The row cannot be sent as it is; ``reason`` says why (no row contents)."""

    def __init__(self, reason: str, field: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.field = field


def _number(value: object, name: str) -> int | float:
    if isinstance(value, bool):
        raise RowRejected(f"{name} must be a number, got a boolean", name)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except ArithmeticError:
            raise RowRejected(f"{name} must be a number", name) from None
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise RowRejected(f"{name} must be a finite number", name)
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RowRejected(f"{name} must be a finite number", name)
        return int(value) if value.is_integer() else value
    raise RowRejected(f"{name} must be a number, got {type(value).__name__}", name)


def _date(value: object, name: str) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        text = value.strip()
        try:
            if ISO_DATE.match(text):
                return dt.date.fromisoformat(text).isoformat()
            return dt.datetime.fromisoformat(text).date().isoformat()
        except ValueError:
            pass
    raise RowRejected(f"{name} must be a date (YYYY-MM-DD)", name)


def _object_id(value: object, name: str) -> str:
    text = str(value).strip() if isinstance(value, (str, int)) else None
    if text is None or not OBJECT_ID.match(text):
        raise RowRejected(f"{name} must be a 24-character hexadecimal CRM id", name)
    return text.lower()


def _object_ids(value: object, name: str) -> list[str]:
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, (list, tuple)):
        items = [item for item in value if item is not None]
    else:
        items = [value]
    return [_object_id(item, name) for item in items]


def _json_value(value: object, name: str) -> object:
    """A custom field's value as JSON: dates as YYYY-MM-DD, decimals as numbers."""
    if isinstance(value, (dt.date, dt.datetime)):
        return _date(value, name)
    if isinstance(value, (Decimal, float)) and not isinstance(value, bool):
        return _number(value, name)
    if isinstance(value, (list, tuple)):
        return [_json_value(item, name) for item in value]
    if isinstance(value, (str, int, bool)):
        return value
    return str(value)


def convert(definition: FieldDef, value: object) -> object:
    """Check and shape one non-null value for ``definition``; raise RowRejected if invalid."""
    name = definition.name
    kind = definition.kind
    if kind is Kind.TEXT:
        return value if isinstance(value, str) else str(_json_value(value, name))
    if kind is Kind.EMAIL:
        text = str(value).strip()
        if not EMAIL.match(text):
            raise RowRejected(f"{name} is not a valid e-mail address", name)
        return [{"email": text}]
    if kind is Kind.PHONE:
        return [{"phone": str(value).strip()}]
    if kind is Kind.ID:
        return _object_id(value, name)
    if kind is Kind.IDS:
        return _object_ids(value, name)
    if kind is Kind.DATE:
        return _date(value, name)
    if kind is Kind.NUMBER:
        return _number(value, name)
    if kind is Kind.RATING:
        rating = _number(value, name)
        if not isinstance(rating, int) or not 1 <= rating <= 5:
            raise RowRejected(f"{name} must be an integer from 1 to 5", name)
        return rating
    if kind is Kind.STATUS:
        status = str(value).strip()
        if status not in DEAL_STATUSES:
            raise RowRejected(f"{name} must be one of {', '.join(DEAL_STATUSES)}", name)
        return status
    return _json_value(value, name)


def _render(source: Source, row: Mapping[str, object]) -> object:
    context = {
        column: ("" if row.get(column) is None else row.get(column)) for column in source.columns
    }
    try:
        text = template_env(source.template).from_string(source.template).render(context).strip()
    except (jinja2.TemplateError, ArithmeticError, TypeError, ValueError) as exc:
        raise RowRejected(
            f"template for {source.field} failed: {type(exc).__name__}", source.field
        ) from None
    return text or None


def raw_value(source: Source, row: Mapping[str, object], link_ids: Mapping[str, str | None]):
    if source.column is not None:
        return row.get(source.column)
    if source.link is not None:
        return link_ids.get(source.field)
    if source.template is not None:
        return _render(source, row)
    return source.constant


def build_payload(
    spec: SyncSpec, row: Mapping[str, object], link_ids: Mapping[str, str | None] | None = None
) -> tuple[dict, str | None]:
    """The v2 ``data`` object for ``row`` and the CRM id it targets (from ``_id``), if any.

    NULL values are left out (the CRM keeps what it has); custom fields go under ``custom_fields``.
    """
    link_ids = link_ids or {}
    data: dict[str, object] = {}
    custom: dict[str, object] = {}
    record_id: str | None = None
    for source in spec.sources:
        value = raw_value(source, row, link_ids)
        if value is None:
            continue
        shaped = convert(source.definition, value)
        if source.field == RECORD_ID:
            record_id = shaped
        elif source.definition.kind is Kind.CUSTOM:
            custom[source.field[1:]] = shaped
        elif source.definition.kind is Kind.IDS and not shaped:
            continue
        else:
            data[source.definition.payload_key] = shaped
    if custom:
        data["custom_fields"] = custom
    return data, record_id


def check_create(mode: Mode, data: Mapping[str, object]) -> None:
    """Rules the CRM enforces only on create."""
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RowRejected("name is required to create a record", "name")
    if mode is Mode.DEALS and data.get("status", "ongoing") != "ongoing":
        raise RowRejected("deals can only be created with status ongoing", "status")
