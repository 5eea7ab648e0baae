"""RDQL, the filter language of list endpoints: parser and matcher.

    name:Acme             equal (strings compare case-insensitively)
    name:"Acme Ltda"      quoted value (\\" and \\\\ escape inside quotes)
    name:~acme            contains, case-insensitive
    status:(won,lost)     in
    -status:lost          not
    rating:>3  <3  >=3  <=3
                          numbers compare numerically; dates as strings
    created_at:>="2026-11-27 21:40:00"
                          date-times as times, to the second
    @cpf:123              custom field by slug
    a:1 b:2               space = AND

A condition on a multi-valued field (``email``, ``phone``, ``contact_id``, ``segment_ids``, a
multiple-option custom field) holds when any of the values satisfies it.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

FILTERABLE: dict[str, frozenset[str]] = {
    "contacts": frozenset(
        {"name", "email", "phone", "job_title", "organization_id", "created_at", "updated_at"}
    ),
    "organizations": frozenset({"name", "owner_id", "segment_ids", "created_at", "updated_at"}),
    "deals": frozenset(
        {
            "id",
            "name",
            "status",
            "rating",
            "organization_id",
            "contact_id",
            "stage_id",
            "pipeline_id",
            "owner_id",
            "campaign_id",
            "expected_close_date",
            "created_at",
            "updated_at",
        }
    ),  # fmt: skip
    "users": frozenset({"id", "name", "email"}),
    "pipelines": frozenset({"id", "name"}),
    "stages": frozenset({"id", "name", "pipeline_id"}),
    "campaigns": frozenset({"id", "name"}),
    "segments": frozenset({"id", "name"}),
    "custom_fields": frozenset({"id", "slug", "label", "entity", "type"}),
}
# filter name -> the record key holding its values
_VIRTUAL = {
    ("contacts", "email"): ("emails", "email"),
    ("contacts", "phone"): ("phones", "phone"),
    ("deals", "contact_id"): ("contact_ids", None),
}
_TERM = re.compile(r"(-?)(@?[A-Za-z_][A-Za-z0-9_]*):")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")  # how RDQL writes date-times
_STORED_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")
_OPERATORS = ((">=", "ge"), ("<=", "le"), (">", "gt"), ("<", "lt"), ("~", "contains"))


class RdqlError(ValueError):
    """A filter the API refuses with 400."""


@dataclass(frozen=True)
class Condition:
    field: str
    op: str  # eq, in, contains, gt, lt, ge, le
    values: tuple[str, ...]
    negate: bool = False


def parse(text: str) -> list[Condition]:
    conditions: list[Condition] = []
    i, end = 0, len(text)
    while True:
        while i < end and text[i].isspace():
            i += 1
        if i >= end:
            return conditions
        match = _TERM.match(text, i)
        if match is None:
            raise RdqlError(f"malformed filter at {text[i : i + 30]!r}: expected field:value")
        negate, field = match.group(1) == "-", match.group(2)
        i = match.end()
        op = "eq"
        for symbol, name in _OPERATORS:
            if text.startswith(symbol, i):
                op, i = name, i + len(symbol)
                break
        if op == "eq" and text.startswith("(", i):
            values, i = _read_list(text, i + 1, field)
            op = "in"
        else:
            value, i = _read_value(text, i, field)
            values = (value,)
        if i < end and not text[i].isspace():
            raise RdqlError(f"malformed filter: unexpected {text[i]!r} after the value of {field}")
        conditions.append(Condition(field, op, values, negate))


def _read_value(text: str, i: int, field: str) -> tuple[str, int]:
    if text.startswith('"', i):
        return _read_quoted(text, i + 1, field)
    start = i
    while i < len(text) and not text[i].isspace():
        i += 1
    if i == start:
        raise RdqlError(f"malformed filter: missing value for {field}")
    return text[start:i], i


def _read_quoted(text: str, i: int, field: str) -> tuple[str, int]:
    chars: list[str] = []
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            chars.append(text[i + 1])
            i += 2
        elif char == '"':
            return "".join(chars), i + 1
        else:
            chars.append(char)
            i += 1
    raise RdqlError(f"malformed filter: unterminated quote in the value of {field}")


def _read_list(text: str, i: int, field: str) -> tuple[tuple[str, ...], int]:
    values: list[str] = []
    while True:
        while i < len(text) and text[i] == " ":
            i += 1
        if text.startswith('"', i):
            value, i = _read_quoted(text, i + 1, field)
        else:
            start = i
            while i < len(text) and text[i] not in ",)":
                i += 1
            value = text[start:i].strip()
        if not value:
            raise RdqlError(f"malformed filter: empty item in the list for {field}")
        values.append(value)
        while i < len(text) and text[i] == " ":
            i += 1
        if i >= len(text):
            raise RdqlError(f"malformed filter: missing ')' in the list for {field}")
        if text[i] == ")":
            return tuple(values), i + 1
        if text[i] != ",":
            raise RdqlError(f"malformed filter: expected ',' or ')' in the list for {field}")
        i += 1


class Filter:
    """A compiled filter for one resource: call it with a record."""

    def __init__(self, resource: str, conditions: list[Condition]):
        self.resource = resource
        self.conditions = conditions

    def __call__(self, record: dict[str, Any]) -> bool:
        return all(self._holds(c, record) for c in self.conditions)

    def _holds(self, condition: Condition, record: dict[str, Any]) -> bool:
        values = field_values(self.resource, record, condition.field)
        result = any(_satisfies(value, condition) for value in values)
        return result != condition.negate


def compile_filter(text: str, resource: str, custom_slugs: Collection[str] = ()) -> Filter:
    """Parse ``text`` and check every field is filterable on ``resource``."""
    conditions = parse(text)
    allowed = FILTERABLE[resource]
    for condition in conditions:
        field = condition.field
        if field.startswith("@"):
            if field[1:] not in custom_slugs:
                raise RdqlError(f"{field} is not a custom field of {resource}")
        elif field not in allowed:
            raise RdqlError(
                f"{field} is not a filterable field of {resource} "
                f"(filterable: {', '.join(sorted(allowed))})"
            )
    return Filter(resource, conditions)


def field_values(resource: str, record: dict[str, Any], field: str) -> list[Any]:
    """The values a filter on ``field`` looks at (empty when the field is unset)."""
    if field.startswith("@"):
        value = (record.get("custom_fields") or {}).get(field[1:])
    elif (resource, field) in _VIRTUAL:
        key, inner = _VIRTUAL[resource, field]
        items = record.get(key) or []
        return [item.get(inner) for item in items] if inner else list(items)
    else:
        value = record.get(field)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _satisfies(value: Any, condition: Condition) -> bool:
    if condition.op in ("eq", "in"):
        return any(_equal(value, wanted) for wanted in condition.values)
    wanted = condition.values[0]
    if condition.op == "contains":
        return wanted.casefold() in _text(value).casefold()
    return _compare(value, condition.op, wanted)


def _equal(value: Any, wanted: str) -> bool:
    if isinstance(value, bool):
        return wanted.lower() == ("true" if value else "false")
    if isinstance(value, (int, float)):
        number = _number(wanted)
        return number is not None and number == value
    return isinstance(value, str) and value.casefold() == wanted.casefold()


def _compare(value: Any, op: str, wanted: str) -> bool:
    left: Any
    right: Any
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        left, right = value, _number(wanted)
        if right is None:
            return False
    elif isinstance(value, str):
        left, right = value, wanted
        if _DATETIME.fullmatch(wanted) and _STORED_TIME.fullmatch(value):
            left = value[:19].replace("T", " ")  # a stored timestamp, to the second written
    else:
        return False
    return {"gt": left > right, "lt": left < right, "ge": left >= right, "le": left <= right}[op]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
