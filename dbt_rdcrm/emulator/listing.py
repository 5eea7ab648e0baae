"""List endpoints: paging and sorting parameters, the 10,000-record cap, and the page body with
its ``links`` (``crm-v2-introduction``: "Paginação", "Ordenação"), written on the internal
``/api/v2/`` prefix, as the real API was seen to do."""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from dbt_rdcrm.emulator.server import BadRequest

DEFAULT_PAGE_SIZE = 20  # crm-v2-introduction: page[size] "Padrão: 20"
MAX_PAGE_SIZE = 200
LIST_CAP = 10_000
CAP_DETAIL = "It is only possible to list the first 10,000 records of the specified filter"
LINK_PREFIX = "/api/v2"
_SORT = re.compile(r"sort\[([A-Za-z_][A-Za-z0-9_]*)\]")
_LINK_SAFE = "[]:@,()~"


@dataclass(frozen=True)
class ListQuery:
    number: int
    size: int
    filter: str
    sort: tuple[tuple[str, bool], ...]  # (field, descending), most significant first
    kept: tuple[tuple[str, str], ...]  # filter and sort parameters, repeated in links


def parse_list_query(query: str) -> ListQuery:
    """Read ``page[number]``, ``page[size]``, ``filter`` and ``sort[field]``; raise BadRequest."""
    params = parse_qsl(query, keep_blank_values=True)
    values = dict(params)
    number = _positive_int(values, "page[number]", 1)
    size = _positive_int(values, "page[size]", DEFAULT_PAGE_SIZE)
    if size > MAX_PAGE_SIZE:
        raise BadRequest(f"page[size] must be at most {MAX_PAGE_SIZE}", "page[size]")
    if number * size > LIST_CAP:
        raise BadRequest(CAP_DETAIL, "page[number]")
    sort: list[tuple[str, bool]] = []
    for key, value in params:
        match = _SORT.fullmatch(key)
        if match:
            if value not in ("asc", "desc"):
                raise BadRequest(f"{key} must be asc or desc, got {value!r}", key)
            sort.append((match.group(1), value == "desc"))
    filters = [value for key, value in params if key == "filter" and value.strip()]
    kept = tuple((k, v) for k, v in params if (k == "filter" and v.strip()) or _SORT.fullmatch(k))
    return ListQuery(number, size, " ".join(filters), tuple(sort), kept)


def _positive_int(values: dict[str, str], name: str, default: int) -> int:
    raw = values.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise BadRequest(f"{name} must be an integer of at least 1, got {raw!r}", name)
    return int(raw)


def sort_records(
    records: Sequence[dict[str, Any]], sort: Sequence[tuple[str, bool]], sortable: Collection[str]
) -> list[dict[str, Any]]:
    """Stable sort by each key; without keys, creation order. Unset values sort first."""
    for field, _ in sort:
        if field not in sortable:
            allowed = ", ".join(sorted(sortable)) or "nothing"
            raise BadRequest(f"cannot sort by {field} (sortable: {allowed})", f"sort[{field}]")
    ordered = list(records)
    for field, descending in reversed(sort):
        ordered.sort(key=lambda record, f=field: _sort_key(record.get(f)), reverse=descending)
    return ordered


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, str):
        return (2, value.casefold())
    if isinstance(value, (int, float)):
        return (1, value)
    return (3, str(value))


def page_body(
    records: Sequence[dict[str, Any]], query: ListQuery, link_base: str
) -> dict[str, Any]:
    """``{"data", "links", "has_more"}`` for one page; ``link_base`` has no query string."""
    start = (query.number - 1) * query.size
    has_more = len(records) > start + query.size
    last = max(1, min(math.ceil(len(records) / query.size), LIST_CAP // query.size))

    def link(number: int) -> str:
        params = [*query.kept, ("page[number]", str(number)), ("page[size]", str(query.size))]
        return f"{link_base}?{urlencode(params, quote_via=quote, safe=_LINK_SAFE)}"

    links = {"first": link(1)}
    if query.number > 1:
        links["prev"] = link(min(query.number - 1, last))
    links["self"] = link(query.number)
    if has_more:
        links["next"] = link(query.number + 1)
    links["last"] = link(last)
    return {"data": list(records[start : start + query.size]), "links": links, "has_more": has_more}


def link_base(host: str, path: str) -> str:
    """The absolute URL the real API writes in links: same host, ``/api/v2`` instead of
    ``/crm/v2`` (a path the public gateway does not route)."""
    return f"http://{host}{LINK_PREFIX}{path.rstrip('/')}"
