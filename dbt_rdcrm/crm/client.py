"""The RD Station CRM v2 HTTP client: auth, one shared rate limiter, narrow retries.

Errors are typed (:mod:`dbt_rdcrm.crm.errors`, re-exported here): ``Refused`` (4xx),
``Transient`` (429/5xx/network after the retries), ``OutcomeUnknown`` (a POST that may have
created the record) and ``ProtocolError`` (an answer that breaks the v2 contract, checked by
:mod:`dbt_rdcrm.crm.answers`).

Timeouts (:class:`Timeouts`): a connect and a read timeout per attempt, and a total budget per
request covering every attempt and backoff (rate-limit waits excluded: they are the plan).
``waited`` tells how long the run spent on the CRM: answers, backoffs and rate-limit waits.

A 401 is retried once with a refreshed token; a second 401 raises ``AuthError`` (abort the run).
Only requests that are safe to repeat are retried: GET and PUT, and a POST that provably never
reached the server (connection refused, connect timeout) or was answered 429.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import requests

from dbt_rdcrm import __version__
from dbt_rdcrm.auth.provider import TokenProvider
from dbt_rdcrm.auth.urls import is_loopback_host, normalize_base_url
from dbt_rdcrm.crm.answers import OBJECT_ID, json_object, record, records
from dbt_rdcrm.crm.errors import (
    CrmError,
    OutcomeUnknown,
    ProtocolError,
    Refused,
    Transient,
    error_message,
    never_sent,
    pointer_field,
    retry_after,
)
from dbt_rdcrm.crm.limiter import RateLimiter
from dbt_rdcrm.errors import AuthError, UsageError
from dbt_rdcrm.redaction import redact

__all__ = [
    "OBJECT_ID",
    "CrmClient",
    "CrmError",
    "OutcomeUnknown",
    "ProtocolError",
    "Refused",
    "Timeouts",
    "Transient",
    "check_base_url",
    "error_message",
    "pointer_field",
]

MAX_PAGE_SIZE = 200


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
        self._here = threading.local()  # requests this thread sent (see ``sent_here``)
        self.last_status = 0  # of the last successful answer, for protocol errors
        self.maybe_written = 0  # POST/PUT that may have changed something (no answer, 2xx, 5xx)
        self.answer_wait = 0.0  # seconds spent waiting for answers
        self.backoff_wait = 0.0  # seconds slept between attempts

    # --- resources -------------------------------------------------------------------------
    def create(self, resource: str, data: dict) -> dict:
        """The created record; its ``id`` is checked to be a CRM id."""
        path = f"/{resource}"
        return record(
            self.request("POST", path, body={"data": data}), "POST", path, self.last_status
        )

    def update(self, resource: str, record_id: str, data: dict) -> dict:
        path = f"/{resource}/{record_id}"
        return record(self.request("PUT", path, body={"data": data}), "PUT", path, self.last_status)

    def get(self, resource: str, record_id: str) -> dict:
        path = f"/{resource}/{record_id}"
        return record(self.request("GET", path), "GET", path, self.last_status)

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
            yield from records(body, "GET", f"/{resource}", self.last_status)
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
                repeatable = method != "POST" or never_sent(exc)
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
            wait = retry_after(response) if status == 429 else None
            if status == 429 and wait is None:
                wait = self._delay(attempt)
            slot.done(status, wait)
            if 200 <= status < 300:
                self.last_status = status
                return json_object(response, method, where)
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
            self._here.sent = self.sent_here() + 1
            with self._count_lock:  # the engine's pool sends from several threads
                self.requests_sent += 1
                self.answer_wait += self._clock() - started
                if method in ("POST", "PUT") and (
                    status == 0 or 200 <= status < 300 or status >= 500
                ):
                    self.maybe_written += 1
            if self.on_request is not None:
                self.on_request(method, path.split("?", 1)[0], status)

    def sent_here(self) -> int:
        """Requests the calling thread has sent (attempts included): a pool's thread knows
        what its own job cost, the engine's thread what it sent itself."""
        return getattr(self._here, "sent", 0)

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
