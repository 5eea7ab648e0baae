"""Which CRM records provably belong to a row: by its identity field, its ``match:`` field, or
(for a create whose outcome is unknown) by everything that was sent.

A name alone never identifies a row. Callers also drop candidates that the id map gives to
another key (:func:`dbt_rdcrm.sync.delivery.Delivery.unclaimed`).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from dbt_rdcrm.config.fields import Mode
from dbt_rdcrm.crm.client import Refused
from dbt_rdcrm.crm.rdql import quoted, rdql_time
from dbt_rdcrm.sync.planner import payload_value

CLOCK_SKEW = dt.timedelta(minutes=10)
PAGE_SIZE = 200
MAX_PAGES = 5
_DIGITS = re.compile(r"\D+")


class LookupRefused(Exception):
    """The CRM refused a lookup (a filter it does not accept): nothing can be concluded."""

    def __init__(self, field: str, message: str, status: int | None = None):
        super().__init__(f"the CRM refused the lookup on {field}: {message}")
        self.field = field
        self.status = status


@dataclass(frozen=True)
class Found:
    """Records a lookup returned; ``complete`` is False when more existed than were read."""

    records: tuple[dict, ...]
    complete: bool = True

    @property
    def ids(self) -> list[str]:
        return [str(r.get("id")) for r in self.records]


def match_text(value: object) -> str:
    """A match value as lookups compare it: stripped, lower-cased (accents kept)."""
    return str(value).strip().lower()


def record_values(record: dict, field: str) -> list[str]:
    """A record's values for a match field, as lookups compare them (:func:`match_text`)."""
    return [match_text(v) for v in held_values(record, field)]


def held_values(record: dict, field: str) -> list[object]:
    """A record's values for a match field, as the CRM holds them."""
    if field.startswith("@"):
        value = (record.get("custom_fields") or {}).get(field[1:])
        found = value if isinstance(value, list) else [value]
    elif field == "email":
        found = [e.get("email") for e in record.get("emails") or [] if isinstance(e, dict)]
    elif field == "phone":
        found = [p.get("phone") for p in record.get("phones") or [] if isinstance(p, dict)]
    else:
        found = [record.get(field)]
    return [v for v in found if v is not None]


def search(client, mode: Mode, rdql: str, field: str) -> Found:
    """Every record matching ``rdql`` (up to ``MAX_PAGES`` pages)."""
    records: list[dict] = []
    try:
        for record in client.search(mode.value, rdql, page_size=PAGE_SIZE, max_pages=MAX_PAGES + 1):
            records.append(record)
            if len(records) > PAGE_SIZE * MAX_PAGES:
                return Found(tuple(records[:-1]), complete=False)
    except Refused as exc:
        raise LookupRefused(field, exc.message, exc.status) from None
    return Found(tuple(records))


def by_field(client, mode: Mode, field: str, values: Sequence[str]) -> dict[str, Found]:
    """For each value, the records whose ``field`` equals it (case-insensitive, re-checked
    locally: the CRM's search may return partial and case-variant hits). One request for
    several values when RDQL's value list allows it."""
    if len(values) == 1:
        rdql = f"{field}:{quoted(values[0])}"
    else:
        rdql = f"{field}:({','.join(quoted(v) for v in values)})"
    return sort_out(search(client, mode, rdql, field), field, values)


def sort_out(found: Found, field: str, values: Sequence[str]) -> dict[str, Found]:
    """For each value, the records of ``found`` whose ``field`` equals it as lookups compare
    (:func:`match_text`)."""
    wanted = {v: match_text(v) for v in values}
    return {
        value: Found(
            tuple(r for r in found.records if low in record_values(r, field)), found.complete
        )
        for value, low in wanted.items()
    }


def by_content(client, mode: Mode, sent: dict, since: dt.datetime | None) -> Found:
    """Records created since ``since`` (less clock skew) that hold everything ``sent`` holds."""
    name = sent.get("name")
    if not isinstance(name, str) or not name:
        return Found((), complete=False)
    rdql = f"name:{quoted(name)}"
    if since is not None:
        rdql += f" created_at:>={rdql_time(since - CLOCK_SKEW)}"
    found = search(client, mode, rdql, "name")
    return Found(tuple(r for r in found.records if same_content(sent, r)), found.complete)


# --- content equality, normalised the way the CRM normalises ---------------------------------
def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def same_value(sent: object, held: object) -> bool:
    if isinstance(sent, dict) and isinstance(held, dict):
        return all(k in held and same_value(v, held[k]) for k, v in sent.items())
    if isinstance(sent, list) and isinstance(held, list):
        return sorted(map(_norm, sent), key=str) == sorted(map(_norm, held), key=str)
    return _norm(sent) == _norm(held)


def _norm(value: object) -> object:
    if isinstance(value, dict):
        if set(value) <= {"email", "type"} and "email" in value:
            return ("email", str(value["email"]).strip().lower())
        if set(value) <= {"phone", "type"} and "phone" in value:
            return ("phone", _DIGITS.sub("", str(value["phone"])))
        return tuple(sorted((k, _norm(v)) for k, v in value.items()))
    number = _number(value)
    if number is not None:
        return number
    if isinstance(value, str):
        return " ".join(value.split())
    return value


def same_content(sent: dict, record: dict) -> bool:
    """Whether ``record`` holds every value of ``sent``. Keys the record does not have at all
    are fields the CRM does not keep, and cannot tell records apart."""
    return all(key not in record or same_value(value, record[key]) for key, value in sent.items())


def differences(sent: dict, record: dict) -> list[str]:
    """Payload keys (``custom_fields.<slug>`` for custom fields) whose value the CRM's answer
    does not hold as sent: ``"<key> dropped"`` when the answer lacks it, else ``"<key> differs"``."""
    found: list[str] = []
    for key, value in sent.items():
        if key == "custom_fields" and isinstance(value, dict):
            held = record.get("custom_fields")
            held = held if isinstance(held, dict) else {}
            for slug, item in value.items():
                if slug not in held or held[slug] is None and item is not None:
                    found.append(f"@{slug} dropped")
                elif not same_value(item, held[slug]):
                    found.append(f"@{slug} differs")
        elif key not in record or (record[key] in (None, [], "") and value not in (None, [], "")):
            found.append(f"{key} dropped")
        elif not same_value(value, record[key]):
            found.append(f"{key} differs")
    return found


def what_was_sent(client, spec, key: str, sent: dict, since: dt.datetime | None) -> Found:
    """The records an unanswered create of row ``key`` may have made: through the identity
    field, else the ``match:`` field's value in what was sent, else everything sent (created
    since ``since``)."""
    if spec.identity is not None:
        return by_field(client, spec.mode, spec.identity, [key])[key]
    value = payload_value(sent, spec.match) if spec.match else None
    if value is not None:
        return by_field(client, spec.mode, spec.match, [value])[value]
    return by_content(client, spec.mode, sent, since)


def answer_differences(sent: dict, record: object) -> tuple[str, ...]:
    """What the CRM's answer to a write says did not stick (the answer carries the record)."""
    if not isinstance(record, dict) or not record:
        return ()
    return tuple(differences(sent, record))
