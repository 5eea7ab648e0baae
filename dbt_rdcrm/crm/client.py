"""The RD Station CRM v2 HTTP client: auth, one shared rate limiter, narrow retries.

    CrmError                 base; carries the HTTP status (0 when no response) and a short message
    ├── Refused              4xx: the CRM read the request and said no (reject the row, remember it)
    ├── Transient            429/5xx/network after the retries: try again on a later run
    ├── OutcomeUnknown       a POST that may or may not have created the record: look it up first
    └── ProtocolError        the answer breaks the v2 contract (not JSON, a redirect, no ``data``,
                             an id that is not 24-hex): fail the row; a create stays pending, so
                             the next run looks it up before sending it again

Timeouts (:class:`Timeouts`): a connect and a read timeout per attempt, and a total budget per
request covering every attempt and backoff (rate-limit waits excluded: they are the plan).
``waited`` tells how long the run spent on the CRM: answers, backoffs and rate-limit waits.

A 401 is retried once with a refreshed token; a second 401 raises ``AuthError`` (abort the run).
Only requests that are safe to repeat are retried: GET and PUT, and a POST that provably never
reached the server (connection refused, connect timeout) or was answered 429.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from dbt_rdcrm import __version__
from dbt_rdcrm.auth.provider import TokenProvider
from dbt_rdcrm.auth.urls import is_loopback_host, normalize_base_url
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


class ProtocolError(CrmError):
    """The CRM's answer breaks the v2 contract; the message names the method and path."""

    def __init__(self, method: str, path: str, status: int, problem: str):
        super().__init__(status, f"unexpected answer from the CRM to {method} {path}: {problem}")
        self.method = method
        self.path = path


OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_REQUEST_BUDGET = 120.0
DEFAULT_MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class Timeouts:
    """Seconds: to connect and to wait for an answer (per attempt), and in all for one request."""

    connect: float = DEFAULT_CONNECT_TIMEOUT
    read: float = DEFAULT_READ_TIMEOUT
    budget: float = DEFAULT_REQUEST_BUDGET


def check_base_url(url: str) -> str:
    """The normalised base URL (see ``normalize_base_url``); HTTPS unless the host is loopback."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise UsageError(f"RD Station CRM base URL {url!r} is not an http(s) URL")
    if parts.scheme.lower() != "https" and not is_loopback_host(parts.hostname or ""):
        raise UsageError(
            f"RD Station CRM base URL {url!r} must use https (plain http is only "
            "allowed for a local emulator on 127.0.0.1/localhost)"
        )
    return normalize_base_url(url)


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
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
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
        self._clock = clock
        self.on_request = on_request
        self.requests_sent = 0
        self._count_lock = threading.Lock()
        self.last_status = 0  # of the last successful answer, for protocol errors
        self.maybe_written = 0  # POST/PUT that may have changed something (no answer, 2xx, 5xx)
        self.answer_wait = 0.0  # seconds spent waiting for answers
        self.backoff_wait = 0.0  # seconds slept between attempts

    # --- resources -------------------------------------------------------------------------
    def create(self, resource: str, data: dict) -> dict:
        """The created record; its ``id`` is checked to be a CRM id."""
        path = f"/{resource}"
        return _record(
            self.request("POST", path, body={"data": data}), "POST", path, self.last_status
        )

    def update(self, resource: str, record_id: str, data: dict) -> dict:
        path = f"/{resource}/{record_id}"
        return _record(
            self.request("PUT", path, body={"data": data}), "PUT", path, self.last_status
        )

    def get(self, resource: str, record_id: str) -> dict:
        path = f"/{resource}/{record_id}"
        return _record(self.request("GET", path), "GET", path, self.last_status)

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
            yield from _records(body, "GET", f"/{resource}", self.last_status)
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
        """The JSON object the CRM answered (``{}`` for an empty body), after retries."""
        token = self.tokens.access_token()
        refreshed = False
        attempt = 0
        where = path.split("?", 1)[0]  # the query may hold personal data (search filters)
        deadline = self._clock() + self.timeouts.budget
        while True:
            attempt += 1
            acquiring = self._clock()
            slot = self.limiter.acquire()
            deadline += self._clock() - acquiring  # rate-limit waits are not a fault
            left = deadline - self._clock()
            try:
                response = self._send(method, path, body, token, left)
            except requests.RequestException as exc:
                slot.done(0)
                repeatable = method != "POST" or _never_sent(exc)
                kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
                if not repeatable:
                    raise OutcomeUnknown(
                        0, f"{kind} after the create was sent: it may or may not have been recorded"
                    ) from None
                if attempt < self.max_attempts and self._backoff(attempt, deadline):
                    continue
                raise Transient(
                    0,
                    f"{kind} on {method} {where}: {redact(type(exc).__name__)} "
                    f"({self._tries(attempt)})",
                ) from None
            except BaseException:
                slot.done(0)
                raise
            status = response.status_code
            wait = _retry_after(response) if status == 429 else None
            if status == 429 and wait is None:
                wait = self._delay(attempt)
            slot.done(status, wait)
            if 200 <= status < 300:
                self.last_status = status
                return _json_object(response, method, where)
            if status < 400:
                location = urlsplit(response.headers.get("Location") or "")
                to = f" to {location.netloc or ''}{location.path}" if location.path else ""
                raise ProtocolError(
                    method, where, status, f"redirected ({status}){redact(to)}; check the base URL"
                )
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
                raise Transient(status, f"rate limited: {message} ({self._tries(attempt)})")
            if status >= 500:
                if method == "POST":
                    raise OutcomeUnknown(status, f"server error on create: {message}")
                if attempt < self.max_attempts and self._backoff(attempt, deadline):
                    continue
                raise Transient(status, f"server error: {message} ({self._tries(attempt)})")
            raise Refused(status, message, field)

    def _tries(self, attempt: int) -> str:
        noun = "attempt" if attempt == 1 else "attempts"
        return f"after {attempt} {noun}, request budget {self.timeouts.budget:g}s"

    def _send(
        self, method: str, path: str, body: dict | None, token, left: float
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {token.reveal()}", "Accept": "application/json"}
        status = 0
        started = self._clock()
        connect = max(0.1, min(self.timeouts.connect, left))
        read = max(0.1, min(self.timeouts.read, left))
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                json=body,
                headers=headers,
                timeout=(connect, read),
                allow_redirects=False,
            )
            status = response.status_code
            return response
        finally:
            with self._count_lock:  # the engine's pool sends from several threads
                self.requests_sent += 1
                self.answer_wait += self._clock() - started
                if method in ("POST", "PUT") and (
                    status == 0 or 200 <= status < 300 or status >= 500
                ):
                    self.maybe_written += 1
            if self.on_request is not None:
                self.on_request(method, path.split("?", 1)[0], status)

    @property
    def waited(self) -> float:
        """Seconds spent on the CRM: waiting for answers, backing off, and at the rate limit."""
        return self.answer_wait + self.backoff_wait + self.limiter.stats().waited_s

    @staticmethod
    def _delay(attempt: int) -> float:
        return min(30.0, 2.0 ** (attempt - 1)) * (0.5 + random.random() / 2)

    def _backoff(self, attempt: int, deadline: float) -> bool:
        """Sleep before the next attempt; False when that would pass the request's budget."""
        delay = self._delay(attempt)
        if self._clock() + delay >= deadline:
            return False
        self._sleep(delay)
        self.backoff_wait += delay
        return True


def _json_object(response: requests.Response, method: str, path: str) -> dict:
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


def _checked(record: object, method: str, path: str, status: int) -> dict:
    if not isinstance(record, dict):
        raise ProtocolError(method, path, status, "a record is not a JSON object")
    record_id = record.get("id")
    if not isinstance(record_id, str) or not OBJECT_ID.match(record_id):
        what = "no id" if record_id is None else "an id that is not a 24-hex CRM id"
        raise ProtocolError(method, path, status, f"the record has {what}")
    return record


def _record(body: dict, method: str, path: str, status: int) -> dict:
    """``{"data": {...}}`` with a valid id, per the contract."""
    if not isinstance(body.get("data"), dict):
        raise ProtocolError(method, path, status, 'expected {"data": {...}}, got no "data" object')
    return _checked(body["data"], method, path, status)


def _records(body: dict, method: str, path: str, status: int) -> list[dict]:
    """A list page's ``data``: records with valid ids."""
    data = body.get("data")
    if not isinstance(data, list):
        raise ProtocolError(method, path, status, 'expected {"data": [...]}, got no "data" list')
    return [_checked(record, method, path, status) for record in data]
