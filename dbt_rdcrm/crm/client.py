"""The RD Station CRM v2 HTTP client: auth, one shared rate limiter, narrow retries.

    CrmError                 base; carries the HTTP status (0 when no response) and a short message
    ├── Refused              4xx: the CRM read the request and said no (reject the row, remember it)
    ├── Transient            429/5xx/network after the retries: try again on a later run
    └── OutcomeUnknown       a POST that may or may not have created the record: look it up first

A 401 is retried once with a refreshed token; a second 401 raises ``AuthError`` (abort the run).
Only requests that are safe to repeat are retried: GET and PUT, and a POST that provably never
reached the server (connection refused, connect timeout) or was answered 429.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from dbt_rdcrm import __version__
from dbt_rdcrm.auth.provider import TokenProvider
from dbt_rdcrm.auth.urls import is_loopback_host
from dbt_rdcrm.crm.limiter import RateLimiter
from dbt_rdcrm.errors import AuthError, UsageError
from dbt_rdcrm.redaction import redact

MAX_PAGE_SIZE = 200


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


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    read: float = 60.0


def check_base_url(url: str) -> str:
    """The normalised base URL; HTTPS is required unless the host is loopback."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"RD Station CRM base URL {url!r} is not an http(s) URL")
    if parts.scheme != "https" and not is_loopback_host(parts.hostname or ""):
        raise UsageError(
            f"RD Station CRM base URL {url!r} must use https (plain http is only "
            "allowed for a local emulator on 127.0.0.1/localhost)"
        )
    return url.rstrip("/")


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
            messages = [str(e.get("detail") or e.get("message") or "") for e in errors]
            pointers = (
                (e.get("source") or {}).get("pointer") if isinstance(e, dict) else None
                for e in errors
            )
            field = next((f for f in map(pointer_field, pointers) if f), None)
            return redact("; ".join(m for m in messages if m)[:300]), field
        for key in ("detail", "message", "error_description", "error"):
            if isinstance(body.get(key), str):
                return redact(body[key][:300]), None
    return redact(text[:200].strip() or response.reason or "no message"), None


def _never_sent(exc: requests.RequestException) -> bool:
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


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


RequestHook = Callable[[str, str, int], None]


class CrmClient:
    """One ``requests.Session`` per run; every request goes through :meth:`request`."""

    def __init__(
        self,
        base_url: str,
        tokens: TokenProvider,
        limiter: RateLimiter,
        *,
        session: requests.Session | None = None,
        timeouts: Timeouts = Timeouts(),
        max_attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        on_request: RequestHook | None = None,
    ):
        self.base_url = check_base_url(base_url)
        self.tokens = tokens
        self.limiter = limiter
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", f"dbt-rdcrm/{__version__}")
        self.timeouts = timeouts
        self.max_attempts = max_attempts
        self._sleep = sleep
        self.on_request = on_request
        self.requests_sent = 0

    # --- resources -------------------------------------------------------------------------
    def create(self, resource: str, data: dict) -> dict:
        return self.request("POST", f"/{resource}", body={"data": data})["data"]

    def update(self, resource: str, record_id: str, data: dict) -> dict:
        return self.request("PUT", f"/{resource}/{record_id}", body={"data": data})["data"]

    def get(self, resource: str, record_id: str) -> dict:
        return self.request("GET", f"/{resource}/{record_id}")["data"]

    def search(
        self, resource: str, rdql: str, *, page_size: int = 50, max_pages: int = 4
    ) -> Iterator[dict]:
        """Records matching an RDQL filter, oldest first, following (rewritten) next links."""
        query = urlencode(
            {"filter": rdql, "page[number]": 1, "page[size]": page_size, "sort[created_at]": "asc"}
        )
        path: str | None = f"/{resource}?{query}"
        for _ in range(max_pages):
            if path is None:
                return
            body = self.request("GET", path)
            yield from body.get("data") or []
            following = (body.get("links") or {}).get("next") if body.get("has_more") else None
            path = self._relative(following) if following else None

    def _relative(self, link: str) -> str:
        """A pagination link as a path under our base URL.

        The real API writes links on its internal ``/api/v2/`` prefix, which the public gateway
        answers with 404; we keep only what follows the version prefix.
        """
        parts = urlsplit(link)
        path = parts.path
        for prefix in ("/api/v2", "/crm/v2"):
            if prefix in path:
                path = path.split(prefix, 1)[1]
                break
        return path + (f"?{parts.query}" if parts.query else "")

    # --- transport -------------------------------------------------------------------------
    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        token = self.tokens.access_token()
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            slot = self.limiter.acquire()
            try:
                response = self._send(method, path, body, token)
            except requests.RequestException as exc:
                slot.done(0)
                repeatable = method != "POST" or _never_sent(exc)
                kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
                if not repeatable:
                    raise OutcomeUnknown(
                        0, f"{kind} after the create was sent: it may or may not have been recorded"
                    ) from None
                if attempt < self.max_attempts:
                    self._backoff(attempt)
                    continue
                raise Transient(
                    0, f"{kind}: {redact(type(exc).__name__)} (after {attempt} attempts)"
                ) from None
            except BaseException:
                slot.done(0)
                raise
            status = response.status_code
            wait = _retry_after(response) if status == 429 else None
            if status == 429 and wait is None:
                wait = self._delay(attempt)
            slot.done(status, wait)
            if status < 400:
                return response.json() if response.content else {}
            message, field = error_message(response)
            if status == 401:
                if refreshed:
                    raise AuthError(
                        "the CRM refused the credentials (401) even after a token "
                        f"refresh ({self.tokens.describe()}): {message}"
                    )
                token = self.tokens.refresh_after_unauthorized(token)
                refreshed = True
                attempt -= 1
                continue
            if status == 429:  # the limiter pauses everyone for ``wait`` (done above)
                if attempt < self.max_attempts:
                    continue
                raise Transient(status, f"rate limited: {message} (after {attempt} attempts)")
            if status >= 500:
                if method == "POST":
                    raise OutcomeUnknown(status, f"server error on create: {message}")
                if attempt < self.max_attempts:
                    self._backoff(attempt)
                    continue
                raise Transient(status, f"server error: {message} (after {attempt} attempts)")
            raise Refused(status, message, field)

    def _send(self, method: str, path: str, body: dict | None, token) -> requests.Response:
        headers = {"Authorization": f"Bearer {token.reveal()}", "Accept": "application/json"}
        status = 0
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                json=body,
                headers=headers,
                timeout=(self.timeouts.connect, self.timeouts.read),
                allow_redirects=False,
            )
            status = response.status_code
            return response
        finally:
            self.requests_sent += 1
            if self.on_request is not None:
                self.on_request(method, path.split("?", 1)[0], status)

    @staticmethod
    def _delay(attempt: int) -> float:
        return min(30.0, 2.0 ** (attempt - 1)) * (0.5 + random.random() / 2)

    def _backoff(self, attempt: int) -> None:
        self._sleep(self._delay(attempt))
