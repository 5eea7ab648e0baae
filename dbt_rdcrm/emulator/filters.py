"""What each list endpoint filters and sorts on, as its reference page documents it, and how a
parsed RDQL tree (:mod:`.rdql`) is checked and matched against records.

Value types (``crm-v2-rdql-filtering``): strings compare case-insensitively; integers as
numbers; dates are ``YYYY-MM-DD``; date-times are written quoted, ``"YYYY-MM-DD HH:MM:SS"``
(UTC), and compare as times at the precision written (a date alone compares whole days, a value
without fractions whole seconds). Anything else for a date or date-time field is refused (400).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from datetime import date, datetime, timezone
from typing import Any

from dbt_rdcrm.emulator.rdql import Condition, Group, Node, RdqlError, conditions, parse

STRING, INTEGER, DATE, DATETIME = "string", "integer", "date", "datetime"
_STAMPS = {"created_at": DATETIME, "updated_at": DATETIME}

# field -> type, per resource, from each list page's "Filtro" table
FILTERS: dict[str, dict[str, str]] = {
    "contacts": {  # crm-v2-list-contacts
        "name": STRING, "job_title": STRING, "email": STRING, "phone": STRING,
        "organization_id": STRING, **_STAMPS,
    },
    "organizations": {  # crm-v2-list-organizations
        "name": STRING, "owner_id": STRING, "segment_ids": STRING, **_STAMPS,
    },
    "deals": {  # crm-v2-list-deals (no contact_id: the page does not list it)
        "id": STRING, "name": STRING, "rating": INTEGER, "status": STRING,
        "closed_at": DATETIME, **_STAMPS, "expected_close_date": DATE,
        "organization_id": STRING, "stage_id": STRING, "lost_reason_id": STRING,
        "campaign_id": STRING, "owner_id": STRING, "pipeline_id": STRING, "product_ids": STRING,
    },
    "custom_fields": {"entity": STRING, "slug": STRING},  # crm-v2-list-custom-fields
    "campaigns": {"name": STRING},  # crm-v2-list-campaigns
    "segments": {"name": STRING},  # crm-v2-list-segments
    "sources": {"name": STRING},  # crm-v2-list-sources
    "lost_reasons": {"name": STRING},  # crm-v2-list-lost-reasons
    "products": {"name": STRING},  # crm-v2-list-products
    "users": {},  # crm-v2-list-users: flags only
    "deal_products": {"product_id": STRING},  # crm-v2-list-products-from-deal
}  # fmt: skip
FLAGS: dict[str, frozenset[str]] = {
    "deals": frozenset({"has:product"}),
    "users": frozenset({"is:active", "is:visible"}),
    "custom_fields": frozenset({"is:required", "is:visible"}),
    "products": frozenset({"is:visible"}),
}
CUSTOM_FIELD_FILTERS = ("contacts", "organizations", "deals", "products")
# documented sort keys, per list page's "Ordenação" list; users and webhooks document none
SORTS: dict[str, frozenset[str]] = {
    "contacts": frozenset({"name", "created_at"}),
    "organizations": frozenset({"name", "created_at", "updated_at"}),
    "deals": frozenset({"name", "rating", "created_at", "updated_at", "closed_at"}),
    "custom_fields": frozenset({"slug", "order"}),
    "pipelines": frozenset({"order"}),
    "stages": frozenset({"order"}),
    "campaigns": frozenset({"name", "created_at"}),
    "segments": frozenset({"name"}),
    "sources": frozenset({"name"}),
    "lost_reasons": frozenset({"name", "created_at"}),
    "products": frozenset({"name"}),
    "deal_products": frozenset({"product_id"}),
}

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(\.\d{1,6})?")
Values = Callable[[dict[str, Any], str], list[Any]]
Flag = Callable[[dict[str, Any], str], bool]


def filterable(resource: str) -> bool:
    """False for lists whose page documents no ``filter`` parameter (pipelines, stages, ...)."""
    return resource in FILTERS


def compile_filter(
    text: str, resource: str, slugs: Collection[str], values: Values, flag: Flag
) -> Callable[[dict[str, Any]], bool]:
    """A predicate for ``text`` on ``resource``; RdqlError for what the API refuses."""
    node = parse(text)
    found = conditions(node)
    if found and not filterable(resource):
        raise RdqlError(f"{resource} cannot be filtered")
    tests = {id(c): _compile(c, resource, slugs) for c in found}

    def holds(record: dict[str, Any], item: Node) -> bool:
        if isinstance(item, Group):
            parts = (holds(record, sub) for sub in item.items)
            return any(parts) if item.kind == "or" else all(parts)
        return tests[id(item)](record, values, flag)

    return lambda record: holds(record, node)


Test = Callable[[dict[str, Any], Values, Flag], bool]


def _compile(condition: Condition, resource: str, slugs: Collection[str]) -> Test:
    field, op, negate = condition.field, condition.op, condition.negate
    if op == "flag":
        name = f"{field}:{condition.values[0]}"
        if name not in FLAGS.get(resource, ()):
            allowed = ", ".join(sorted(FLAGS.get(resource, ()))) or "none"
            raise RdqlError(f"{name} is not a filter of {resource} (flags: {allowed})")
        return lambda record, values, flag: flag(record, name) != negate
    if field.startswith("@"):
        if resource not in CUSTOM_FIELD_FILTERS or field[1:] not in slugs:
            raise RdqlError(f"{field} is not a custom field of {resource}")
        kind = STRING
    else:
        allowed = FILTERS[resource]
        if field not in allowed:
            listed = ", ".join(sorted(allowed)) or "none"
            raise RdqlError(
                f"{field} is not a filterable field of {resource} (filterable: {listed})"
            )
        kind = allowed[field]
    if op == "contains" and kind != STRING:
        raise RdqlError(f"~ (match) works on text fields, not on {field}")
    wanted = tuple(_typed(kind, field, value) for value in condition.values)

    def test(record: dict[str, Any], values: Values, flag: Flag) -> bool:
        found = values(record, field)
        return any(_satisfies(kind, op, value, wanted) for value in found) != negate

    return test


def _typed(kind: str, field: str, value: str) -> Any:
    if kind == INTEGER:
        if re.fullmatch(r"-?\d+", value):
            return int(value)
        raise RdqlError(f"{field} expects an integer, got {value!r}")
    if kind == DATE:
        if _real_date(value):
            return value
        raise RdqlError(f"{field} expects a date written YYYY-MM-DD, got {value!r}")
    if kind == DATETIME:
        moment = _moment(value)
        if moment is None:
            raise RdqlError(
                f'{field} expects a date-time written "YYYY-MM-DD HH:MM:SS" (quoted, UTC) '
                f"or a date YYYY-MM-DD, got {value!r}"
            )
        return moment
    return value


def _real_date(value: str) -> bool:
    if not _DATE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _moment(value: str) -> tuple[datetime, str] | None:
    """A filter date-time and its precision: day, second or fraction."""
    if _real_date(value):
        return datetime.fromisoformat(value).replace(tzinfo=timezone.utc), "day"
    match = _DATETIME.fullmatch(value)
    if match is None or not _real_date(match.group(1)):
        return None
    try:
        moment = datetime.fromisoformat(f"{match.group(1)}T{match.group(2)}{match.group(3) or ''}")
    except ValueError:
        return None
    return moment.replace(tzinfo=timezone.utc), "fraction" if match.group(3) else "second"


def _stored_moment(value: Any) -> datetime | None:
    """A stored ``2026-11-27T21:40:00.123Z`` timestamp as a time."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _truncate(moment: datetime, precision: str) -> datetime:
    if precision == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if precision == "second":
        return moment.replace(microsecond=0)
    return moment


def _satisfies(kind: str, op: str, value: Any, wanted: tuple[Any, ...]) -> bool:
    if kind == DATETIME:
        stored = _stored_moment(value)
        if stored is None:
            return False
        pairs = [(_truncate(stored, precision), moment) for moment, precision in wanted]
        return any(_compare(op, left, right) for left, right in pairs)
    if kind in (INTEGER, DATE):
        if isinstance(value, bool) or (kind == INTEGER and not isinstance(value, (int, float))):
            return False
        return any(_compare(op, value, right) for right in wanted)
    if op == "contains":
        return wanted[0].casefold() in _text(value).casefold()
    if op in ("eq", "in"):
        return any(_equal(value, right) for right in wanted)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = _number(wanted[0])
        return number is not None and _compare(op, value, number)
    return isinstance(value, str) and _compare(op, value, wanted[0])


def _compare(op: str, left: Any, right: Any) -> bool:
    if op in ("eq", "in"):
        return bool(left == right)
    return {"gt": left > right, "lt": left < right, "ge": left >= right, "le": left <= right}[op]


def _equal(value: Any, wanted: str) -> bool:
    if isinstance(value, bool):
        return wanted.lower() == ("true" if value else "false")
    if isinstance(value, (int, float)):
        number = _number(wanted)
        return number is not None and number == value
    return isinstance(value, str) and value.casefold() == wanted.casefold()


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
