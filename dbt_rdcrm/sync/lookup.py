"""Find CRM records that a row may already have: `match:` before create, and unknown creates."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from dbt_rdcrm.config.fields import Mode
from dbt_rdcrm.crm.client import CrmClient, Refused, Transient

CLOCK_SKEW = dt.timedelta(minutes=5)


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _values(record: dict, field: str) -> list[str]:
    """The record's values for a match field, as lower-cased strings."""
    if field.startswith("@"):
        value = (record.get("custom_fields") or {}).get(field[1:])
        found = value if isinstance(value, list) else [value]
    elif field == "email":
        found = [e.get("email") for e in record.get("emails") or []]
    elif field == "phone":
        found = [p.get("phone") for p in record.get("phones") or []]
    else:
        found = [record.get(field)]
    return [str(v).strip().lower() for v in found if v is not None]


def payload_value(data: dict, field: str) -> str | None:
    """The value a payload sets for a match field (first e-mail/phone), as text."""
    if field.startswith("@"):
        value = (data.get("custom_fields") or {}).get(field[1:])
    elif field == "email":
        value = (data.get("emails") or [{}])[0].get("email")
    elif field == "phone":
        value = (data.get("phones") or [{}])[0].get("phone")
    else:
        value = data.get(field)
    return None if value is None else str(value)


def find(
    client: CrmClient,
    mode: Mode,
    field: str,
    value: str,
    *,
    created_since: dt.datetime | None = None,
) -> list[str]:
    """Ids of records whose ``field`` equals ``value`` (case-insensitive, re-checked locally,
    since the CRM's search may return partial and case-variant hits)."""
    rdql = f"{field}:{_quoted(value)}"
    if created_since is not None:
        since = (created_since - CLOCK_SKEW).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        rdql += f" created_at:>={since}"
    wanted = value.strip().lower()
    try:
        hits: Iterable[dict] = list(client.search(mode.value, rdql))
    except Refused as exc:  # the search was refused, not the row: nothing to remember
        raise Transient(exc.status, f"lookup on {field} refused: {exc.message}") from None
    return [record["id"] for record in hits if wanted in _values(record, field)]
