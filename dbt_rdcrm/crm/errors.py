"""What the CRM said, as exceptions and messages.

    CrmError                 base; carries the HTTP status (0 when no response) and a short message
    ├── Refused              4xx: the CRM read the request and said no (reject the row, remember it)
    ├── Transient            429/5xx/network after the retries: try again on a later run
    ├── OutcomeUnknown       a POST that may or may not have created the record: look it up first
    └── ProtocolError        the answer breaks the v2 contract (not JSON, a redirect, no ``data``,
                             an id that is not 24-hex): fail the row; a create stays pending, so
                             the next run looks it up before sending it again

An error body's message is read per the contract (``errors[].detail|message``, ``detail``,
``message``, ``error``, else the start of the body), redacted, never whole.
"""

from __future__ import annotations

import json

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from dbt_rdcrm.redaction import redact


class CrmError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field

    def __str__(self) -> str:
        prefix = f"HTTP {self.status}: " if self.status else ""
        return f"{prefix}{self.message}"


class Refused(CrmError):
    """The CRM refused the request as invalid (4xx)."""


class Transient(CrmError):
    """The request did not go through for now (rate limit, server fault, network)."""


class OutcomeUnknown(CrmError):
    """A create may or may not have happened; never resend it without a lookup."""


class ProtocolError(CrmError):
    """The CRM's answer breaks the v2 contract; the message names the method and path."""

    def __init__(self, method: str, path: str, status: int, problem: str):
        super().__init__(status, f"unexpected answer from the CRM to {method} {path}: {problem}")
        self.method = method
        self.path = path


# v2 payload keys whose mapping field has another name
_MAPPING_FIELDS = {
    "emails": "email",
    "phones": "phone",
    "url": "website",
    "contact_ids": "contact_id",
}


def pointer_field(pointer: object) -> str | None:
    """The mapping field a JSON pointer names: ``/data/emails/0/email`` -> ``email``,
    ``/data/contact_ids/1`` -> ``contact_id``, ``/data/custom_fields/cpf`` -> ``@cpf``."""
    if not isinstance(pointer, str):
        return None
    parts = [part for part in pointer.split("/") if part]
    if parts[:1] == ["data"]:
        parts = parts[1:]
    if not parts:
        return None
    if parts[0] == "custom_fields" and len(parts) > 1:
        return "@" + parts[1]
    return _MAPPING_FIELDS.get(parts[0], parts[0])


def error_message(response: requests.Response) -> tuple[str, str | None]:
    """(message, field) from an error body, per the contract; never the whole body."""
    text = response.text or ""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            messages = [
                str(e.get("detail") or e.get("message") or "")
                for e in errors
                if isinstance(e, dict)
            ]
            sources = (e.get("source") if isinstance(e, dict) else None for e in errors)
            pointers = (s.get("pointer") if isinstance(s, dict) else None for s in sources)
            field = next((f for f in map(pointer_field, pointers) if f), None)
            return redact("; ".join(m for m in messages if m)[:300]), field
        for key in ("detail", "message", "error_description", "error"):
            if isinstance(body.get(key), str):
                return redact(body[key][:300]), None
    return redact(text[:200].strip() or response.reason or "no message"), None


def never_sent(exc: requests.RequestException) -> bool:
    """True when the request provably never reached the server."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    seen = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, (NewConnectionError, ConnectTimeoutError)):
            return True
        reason = getattr(cause, "reason", None)
        nested = cause.args[0] if cause.args and isinstance(cause.args[0], BaseException) else None
        cause = reason if isinstance(reason, BaseException) else nested or cause.__cause__
    return False


def retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
