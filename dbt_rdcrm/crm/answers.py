"""A 2xx answer as the v2 contract describes it: a JSON object, ``{"data": {...}}`` for one
record, ``{"data": [...]}`` for a page, every record with a 24-hex id. Anything else is a
:class:`~dbt_rdcrm.crm.errors.ProtocolError` naming the method and path."""

from __future__ import annotations

import json
import re

import requests

from dbt_rdcrm.crm.errors import ProtocolError
from dbt_rdcrm.redaction import redact

OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")


def json_object(response: requests.Response, method: str, path: str) -> dict:
    """A 2xx body as a JSON object (``{}`` when empty), else a ProtocolError."""
    if not response.content:
        return {}
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        kind = (response.headers.get("Content-Type") or "no content type").split(";")[0]
        raise ProtocolError(
            method, path, response.status_code, f"the body is not JSON ({redact(kind)[:60]})"
        ) from None
    if not isinstance(body, dict):
        raise ProtocolError(
            method, path, response.status_code, f"expected a JSON object, got {type(body).__name__}"
        )
    return body


def checked(record: object, method: str, path: str, status: int) -> dict:
    if not isinstance(record, dict):
        raise ProtocolError(method, path, status, "a record is not a JSON object")
    record_id = record.get("id")
    if not isinstance(record_id, str) or not OBJECT_ID.match(record_id):
        what = "no id" if record_id is None else "an id that is not a 24-hex CRM id"
        raise ProtocolError(method, path, status, f"the record has {what}")
    return record


def record(body: dict, method: str, path: str, status: int) -> dict:
    """``{"data": {...}}`` with a valid id, per the contract."""
    if not isinstance(body.get("data"), dict):
        raise ProtocolError(method, path, status, 'expected {"data": {...}}, got no "data" object')
    return checked(body["data"], method, path, status)


def records(body: dict, method: str, path: str, status: int) -> list[dict]:
    """A list page's ``data``: records with valid ids."""
    data = body.get("data")
    if not isinstance(data, list):
        raise ProtocolError(method, path, status, 'expected {"data": [...]}, got no "data" list')
    return [checked(record, method, path, status) for record in data]
