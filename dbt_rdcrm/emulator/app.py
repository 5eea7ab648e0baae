"""The emulator: wires store, OAuth, rate limit, faults and request log behind one HTTP server,
and the request pipeline every CRM call goes through:

    rate limit → injected fault → bearer token → route
"""

from __future__ import annotations

import copy
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from dbt_rdcrm.emulator import api, control
from dbt_rdcrm.emulator.catalog import Catalog
from dbt_rdcrm.emulator.faults import DROPS, Faults, parse_rules
from dbt_rdcrm.emulator.fixtures import FixtureError, load_fixtures
from dbt_rdcrm.emulator.oauth import AUTHORIZE_PATHS, TOKEN_PATH, OAuth, Unauthorized
from dbt_rdcrm.emulator.ratelimit import RateLimiter
from dbt_rdcrm.emulator.server import (
    DROP,
    HttpServer,
    Request,
    Response,
    error_response,
    gateway_not_found,
    rate_limited,
)
from dbt_rdcrm.emulator.store import RESOURCES, NotFound, Store, iso_timestamp

API_PREFIX = "/crm/v2"
Fixtures = dict[str, Any] | str | os.PathLike[str] | None


class RequestLog:
    """Every request but the control ones: method, path, raw query, status (0 = dropped)."""

    def __init__(self, clock: Callable[[], float]):
        self._clock = clock
        self._entries: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def record(self, request: Request, status: int) -> None:
        entry = {
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "status": status,
            "time": iso_timestamp(int(self._clock() * 1000)),
        }
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._entries]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class Emulator:
    """A local RD Station CRM v2 on loopback. ``port=0`` picks a free port; ``rate_limit=0``
    disables the limit; ``fixtures`` is a dict, a JSON file path, or None for the defaults."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limit: int = 120,
        fixtures: Fixtures = None,
        access_token_ttl: float = 7200,
        refresh_token_ttl: float = 14 * 86400,
        clock: Callable[[], float] = time.time,
    ):
        self._host, self._port = host, port
        self._fixtures = load_fixtures(fixtures)
        try:
            self._store = Store(self._fixtures, clock)
        except FixtureError as exc:
            if isinstance(fixtures, (str, os.PathLike)):
                raise FixtureError(exc.problems, f"fixtures file {os.fspath(fixtures)}") from None
            raise
        self._catalog = Catalog(self._store)
        self._oauth = OAuth(
            clock=clock,
            user=self._store.reference.default_user,
            access_token_ttl=access_token_ttl,
            refresh_token_ttl=refresh_token_ttl,
        )
        self._limiter = RateLimiter(rate_limit, clock)
        self._faults = Faults()
        self._log = RequestLog(clock)
        self._server: HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._authority: str | None = None

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``; binds the socket if that has not happened yet."""
        if self._authority is None:
            self._bind()
        return f"http://{self._authority}"

    @property
    def base_url(self) -> str:
        return self.url + API_PREFIX

    def start(self) -> Emulator:
        """Serve in a daemon thread and return at once."""
        if self._thread is None:
            server = self._bind()
            self._thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted, then close the socket."""
        server = self._bind()
        self._thread = threading.current_thread()
        try:
            server.serve_forever(poll_interval=0.2)
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop serving (from any thread), close the socket and every open connection."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        if thread is not None and thread is not threading.current_thread():
            server.shutdown()  # returns once the serving loop has exited
        server.close_connections()
        server.server_close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _bind(self) -> HttpServer:
        if self._server is None:
            self._server = HttpServer(self._host, self._port, self.dispatch)
            self._port = self._server.server_address[1]  # a restart keeps the same port
            self._authority = self._server.authority
        return self._server

    # --- control ---------------------------------------------------------------------------

    @property
    def fixtures(self) -> dict[str, Any]:
        """The active fixtures (a copy): read default ids from here."""
        return copy.deepcopy(self._fixtures)

    def reset(self) -> None:
        """Back to the fixtures; clears the request log, faults, issued OAuth tokens and the
        rate-limit window."""
        self._store.reset()
        self._catalog.reset()
        self._log.clear()
        self._faults.clear()
        self._oauth.reset()
        self._limiter.reset()

    def state(self) -> dict[str, list[dict[str, Any]]]:
        return self._store.snapshot()

    def delete_record(self, resource: str, record_id: str) -> None:
        """Delete a contact, organization or deal as in the CRM's UI; KeyError if unknown."""
        if resource not in RESOURCES:
            raise KeyError(resource)
        try:
            self._store.delete(resource, record_id)
        except NotFound:
            raise KeyError(record_id) from None

    def requests(self) -> list[dict[str, Any]]:
        return self._log.entries()

    def clear_requests(self) -> None:
        self._log.clear()

    def faults(self) -> list[dict[str, Any]]:
        return self._faults.describe()

    def set_faults(self, rules: list[dict[str, Any]]) -> None:
        """Replace the fault rules; raises FaultError (a ValueError) naming every problem."""
        self._faults.replace(parse_rules(rules))

    def clear_faults(self) -> None:
        self._faults.clear()

    def revoke_refresh_tokens(self, token: str | None = None) -> int:
        """Revoke one issued refresh token, or all of them; returns how many."""
        return self._oauth.revoke(token)

    def expire_access_tokens(self, token: str | None = None) -> int:
        """Expire one issued access token now, or all of them; returns how many."""
        return self._oauth.expire(token)

    # --- request pipeline ------------------------------------------------------------------

    def dispatch(self, request: Request) -> Response:
        if request.path.startswith(control.CONTROL_PREFIX):
            return self._guarded(lambda: control.handle(self, request))
        response = self._guarded(lambda: self._route(request))
        self._log.record(request, 0 if response.drop else response.status)
        return response

    def _guarded(self, handler: Callable[[], Response]) -> Response:
        try:
            return handler()
        except Exception as exc:  # a handler crash becomes a 500, never a dead connection
            return error_response(500, "INTERNAL_ERROR", f"emulator error: {exc!r}")

    def _route(self, request: Request) -> Response:
        path, method = request.path, request.method
        if path in AUTHORIZE_PATHS and method in ("GET", "POST"):
            return (
                self._oauth.authorize_page(request)
                if method == "GET"
                else self._oauth.approve(request)
            )
        if path == TOKEN_PATH and method == "POST":
            return self._oauth.token(request)
        if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            return self._crm(request, path.removeprefix(API_PREFIX) or "/")
        return gateway_not_found()

    def _crm(self, request: Request, path: str) -> Response:
        retry_after = self._limiter.acquire()
        if retry_after is not None:
            detail = f"rate limit of {self._limiter.limit} requests per minute exceeded"
            return rate_limited(retry_after, detail)
        fault = self._faults.pick(request.method, path)
        if fault is not None:
            if fault.action == "latency":
                time.sleep(fault.seconds)
            elif fault.action == "drop_before_commit":
                return DROP
            elif fault.action == "ignore_field":
                request = fault.without_field(request)
            elif fault.action not in DROPS:
                return fault.response()
        try:
            user_id = self._oauth.authenticate(request.header("authorization"))
        except Unauthorized as exc:
            response = error_response(401, "UNAUTHORIZED", str(exc))
        else:
            response = api.handle(self._store, self._catalog, request, path, user_id)
        if fault is not None and fault.action == "drop_after_commit":
            return DROP
        return response
