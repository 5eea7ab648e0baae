"""The one rule that turns a warehouse value into a v2 payload value, or rejects it.

Used for every value that can reach the CRM: columns and templates while planning and
syncing (:mod:`dbt_rdcrm.sync.mapper`), constants while parsing the config. ``validate``
checks column types against the same rule (:mod:`dbt_rdcrm.config.column_types`).

- A list (or tuple) is accepted only where the field is a list: ``contact_id`` and
  ``segment_ids`` (ids), ``email`` and ``phone`` (each item one e-mail or phone), and custom
  fields (a multiple-choice value: a list of scalars). A struct (dict) is accepted nowhere;
  bytes nowhere. They are never sent as Python text.
- A number is a JSON number the CRM can hold: finite, with a magnitude of at most
  :data:`MAX_NUMBER` (2^53 - 1, the largest integer every JSON reader keeps exactly). Text is a
  number only when written as one (``12``, ``-1.5``, ``2e3``): ``'1_000'`` is not.

A value that breaks the rule raises :class:`RowRejected` with a reason that names the field
and the problem, never the value (rows may hold personal data).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from dbt_rdcrm.config.fields import DEAL_STATUSES, FieldDef, Kind

OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NUMBER_TEXT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
MAX_NUMBER = 2**53 - 1
LIST_KINDS = frozenset({Kind.IDS, Kind.EMAIL, Kind.PHONE, Kind.CUSTOM})


class RowRejected(Exception):
    """The row cannot be sent as it is; ``reason`` says why (no row contents)."""

    def __init__(self, reason: str, field: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.field = field


def _kind_of(value: object) -> str:
    if isinstance(value, Mapping):
        return "a struct"
    if isinstance(value, (list, tuple, set, frozenset)):
        return "a list"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "binary data"
    return type(value).__name__


def _scalar(value: object, name: str) -> None:
    """Refuse values that have no meaning as one scalar field value."""
    if isinstance(value, (Mapping, list, tuple, set, frozenset, bytes, bytearray, memoryview)):
        raise RowRejected(f"{name} takes one value, got {_kind_of(value)}", name)


def _bounded(number: int | float, name: str) -> int | float:
    if abs(number) > MAX_NUMBER:
        raise RowRejected(
            f"{name} is too large for the CRM (magnitude above {MAX_NUMBER:,})".replace(",", "_"),
            name,
        )
    return number


def number(value: object, name: str) -> int | float:
    if isinstance(value, bool):
        raise RowRejected(f"{name} must be a number, got a boolean", name)
    if isinstance(value, int):
        return _bounded(value, name)
    if isinstance(value, str):
        text = value.strip()
        if not NUMBER_TEXT.match(text):
            raise RowRejected(f"{name} must be a number", name)
        try:
            value = Decimal(text)
        except (ArithmeticError, InvalidOperation):
            raise RowRejected(f"{name} must be a number", name) from None
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise RowRejected(f"{name} must be a finite number", name)
        if abs(value) > MAX_NUMBER:
            return _bounded(math.inf, name)
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RowRejected(f"{name} must be a finite number", name)
        _bounded(value, name)
        return int(value) if value.is_integer() else value
    raise RowRejected(f"{name} must be a number, got {_kind_of(value)}", name)


def date(value: object, name: str) -> str:
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


def object_id(value: object, name: str) -> str:
    ok = isinstance(value, (str, int)) and not isinstance(value, bool)
    text = str(value).strip() if ok else None
    if text is None or not OBJECT_ID.match(text):
        raise RowRejected(f"{name} must be a 24-character hexadecimal CRM id", name)
    return text.lower()


def _items(value: object) -> list[object]:
    """A list field's items: a list column, comma-separated text, or one value."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple)):
        return [item for item in value if item is not None]
    return [value]


def object_ids(value: object, name: str) -> list[str]:
    if isinstance(value, (str, list, tuple)):
        items = _items(value)
    else:
        _scalar(value, name)
        items = [value]
    return [object_id(item, name) for item in items]


def text(value: object, name: str) -> str:
    """A scalar as text: dates as YYYY-MM-DD, numbers as JSON would write them."""
    if isinstance(value, str):
        return value
    _scalar(value, name)
    if isinstance(value, bool):
        return str(value)
    shaped = json_value(value, name)
    return shaped if isinstance(shaped, str) else str(shaped)


def json_value(value: object, name: str) -> object:
    """A custom field's value as JSON: dates as YYYY-MM-DD, numbers bounded, lists of scalars."""
    if isinstance(value, (list, tuple)):
        items = []
        for item in value:
            _scalar(item, name)
            items.append(json_value(item, name))
        return items
    _scalar(value, name)
    if isinstance(value, (dt.date, dt.datetime)):
        return date(value, name)
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float, Decimal)):
        return number(value, name)
    return str(value)


def _emails(value: object, name: str) -> list[dict]:
    items = value if isinstance(value, (list, tuple)) else [value]
    emails = []
    for item in items:
        if item is None:
            continue
        _scalar(item, name)
        address = str(item).strip()
        if not EMAIL.match(address):
            raise RowRejected(f"{name} is not a valid e-mail address", name)
        emails.append({"email": address})
    return emails


def _phones(value: object, name: str) -> list[dict]:
    items = value if isinstance(value, (list, tuple)) else [value]
    phones = []
    for item in items:
        if item is None:
            continue
        phone = text(item, name).strip()
        if phone:
            phones.append({"phone": phone})
    return phones


def convert(definition: FieldDef, value: object) -> object:
    """Check and shape one non-null value for ``definition``; raise RowRejected if invalid.

    List fields may come out empty (an empty list column): the caller leaves them out.
    """
    name = definition.name
    kind = definition.kind
    if kind not in LIST_KINDS:
        _scalar(value, name)
    if kind is Kind.TEXT:
        return text(value, name)
    if kind is Kind.EMAIL:
        return _emails(value, name)
    if kind is Kind.PHONE:
        return _phones(value, name)
    if kind is Kind.ID:
        return object_id(value, name)
    if kind is Kind.IDS:
        return object_ids(value, name)
    if kind is Kind.DATE:
        return date(value, name)
    if kind is Kind.NUMBER:
        return number(value, name)
    if kind is Kind.RATING:
        rating = number(value, name)
        if not isinstance(rating, int) or not 1 <= rating <= 5:
            raise RowRejected(f"{name} must be an integer from 1 to 5", name)
        return rating
    if kind is Kind.STATUS:
        status = str(value).strip()
        if status not in DEAL_STATUSES:
            raise RowRejected(f"{name} must be one of {', '.join(DEAL_STATUSES)}", name)
        return status
    return json_value(value, name)
