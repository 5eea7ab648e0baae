"""``auth login``: the authorization-code flow, with a loopback redirect receiver or a paste.

The authorize URL carries a random ``state``; the browser comes back to the redirect URI (a
loopback address registered in the RD Station app) with ``code`` and ``state``. A receiver
bound to that address checks ``state``, answers with a small "you can close this tab" page and
hands the code over. Without a browser on the machine, the user pastes the address the browser
ended on (or just the code).
"""

from __future__ import annotations

import hmac
import html
import http.server
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import requests

from dbt_rdcrm.auth import oauth
from dbt_rdcrm.auth.oauth import ClientCredentials
from dbt_rdcrm.auth.store import StoredLogin, TokenStore
from dbt_rdcrm.auth.urls import is_loopback_host, require_secure_url, token_url_for
from dbt_rdcrm.errors import AuthError
from dbt_rdcrm.redaction import Secret

DEFAULT_REDIRECT_PORT = 8976
REDIRECT_PATH = "/callback"
LOGIN_TIMEOUT = 300.0
VERDICT_TIMEOUT = 60.0


def loopback_redirect_uri(port: int) -> str:
    return f"http://127.0.0.1:{port}{REDIRECT_PATH}"


def can_receive(redirect_uri: str) -> bool:
    """True if a local receiver can answer ``redirect_uri`` (plain http on a loopback host)."""
    parts = urlsplit(redirect_uri)
    return parts.scheme == "http" and bool(parts.hostname) and is_loopback_host(parts.hostname)


class AuthorizationDenied(AuthError):
    """The redirect came back with ``error=...`` instead of a code."""

    def __init__(self, error: str):
        super().__init__(
            f"authorization was not granted ({error}). Run `dbt-rdcrm auth login` again."
        )
        self.error = error


@dataclass
class _Outcome:
    code: Secret | None = None
    error: str | None = None


class LoopbackReceiver:
    """A one-shot HTTP server on the redirect URI's loopback address.

    Use as a context manager; :attr:`redirect_uri` has the real port when the URI's port is 0.
    The browser's request is held open until :meth:`finish` says how the code exchange went,
    so the page the user sees tells the truth.
    """

    def __init__(self, redirect_uri: str, state: str):
        parts = urlsplit(redirect_uri)
        if not can_receive(redirect_uri) or parts.hostname is None:
            raise AuthError(f"cannot receive the redirect on {redirect_uri!r}: use --paste")
        host = "::1" if parts.hostname == "::1" else "127.0.0.1"
        self._path = parts.path or "/"
        self._results: queue.Queue[_Outcome] = queue.Queue()
        self._verdicts: queue.Queue[bool] = queue.Queue()
        handler = _handler_class(self._path, state, self._results, self._verdicts)
        server_class = _IPv6Server if host == "::1" else http.server.HTTPServer
        try:
            port = parts.port if parts.port is not None else 80
            self._server = server_class((host, port), handler)
        except OSError as exc:
            raise AuthError(
                f"cannot listen on {host} port {port} for the login redirect "
                f"({exc.strerror}): pass --redirect-port or --redirect-uri (it must match a "
                "redirect URI registered in the RD Station app)"
            ) from None
        port = self._server.server_address[1]
        netloc = f"[{host}]" if host == "::1" else parts.hostname
        self.redirect_uri = f"http://{netloc}:{port}{self._path}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LoopbackReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.finish(False)  # releases a browser request still waiting (no-op once finished)
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def wait(self, timeout: float) -> Secret:
        """The code from the first redirect that carries the right ``state``."""
        try:
            outcome = self._results.get(timeout=timeout)
        except queue.Empty:
            raise AuthError(
                f"no login redirect arrived within {timeout:g} seconds. "
                "Run `dbt-rdcrm auth login` again (or use --paste)."
            ) from None
        if outcome.error is not None:
            raise AuthorizationDenied(outcome.error)
        assert outcome.code is not None
        return outcome.code

    def finish(self, ok: bool) -> None:
        """Answer the waiting browser: logged in, or look at the terminal."""
        if self._verdicts.empty():
            self._verdicts.put(ok)


class _IPv6Server(http.server.HTTPServer):
    address_family = socket.AF_INET6


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>dbt-rdcrm</title></head>
<body style="font-family: sans-serif; margin: 3em"><h1>{title}</h1><p>{text}</p></body></html>
"""


def _handler_class(
    path: str, state: str, results: queue.Queue[_Outcome], verdicts: queue.Queue[bool]
) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            parts = urlsplit(self.path)
            if parts.path != path:
                self._page(404, "Not found", "This is the dbt-rdcrm login receiver.")
                return
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if not hmac.compare_digest(query.get("state", ""), state):
                self._page(
                    400,
                    "Login link expired",
                    "This page does not belong to the login in progress. "
                    "Use the link dbt-rdcrm printed last.",
                )
                return
            if "error" in query:
                error = query["error"][:100]
                self._page(400, "Authorization not granted", html.escape(error))
                results.put(_Outcome(error=error))
            elif query.get("code"):
                results.put(_Outcome(code=Secret(query["code"])))
                try:
                    ok = verdicts.get(timeout=VERDICT_TIMEOUT)
                except queue.Empty:
                    ok = False
                if ok:
                    self._page(200, "dbt-rdcrm is logged in", "You can close this tab.")
                else:
                    self._page(500, "Login failed", "See the terminal for what went wrong.")
            else:
                self._page(400, "No authorization code", "The redirect carried no code.")

        def _page(self, status: int, title: str, text: str) -> None:
            body = _PAGE.format(title=html.escape(title), text=text).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Silent: request lines carry the authorization code."""

    return Handler


def code_from_paste(text: str, state: str) -> Secret:
    """The code from a pasted redirect address (whose ``state`` must match) or a bare code."""
    text = text.strip()
    if not text:
        raise AuthError("nothing was pasted. Run `dbt-rdcrm auth login --paste` again.")
    if "code=" not in text and "error=" not in text and "://" not in text:
        return Secret(text)
    query = {k: v[0] for k, v in parse_qs(urlsplit(text).query or text).items()}
    if "error" in query:
        raise AuthorizationDenied(query["error"][:100])
    if not hmac.compare_digest(query.get("state", ""), state):
        raise AuthError(
            "the pasted address does not belong to this login (state mismatch): "
            "paste the address from the authorization you just made, or only the code"
        )
    if not query.get("code"):
        raise AuthError("the pasted address has no code= parameter: paste the whole address")
    return Secret(query["code"])


@dataclass(frozen=True)
class LoginRequest:
    """Everything ``auth login`` needs, already resolved from flags and environment."""

    base_url: str
    client: ClientCredentials
    authorize_url: str
    redirect_uri: str
    open_browser: bool = True
    paste: bool = False
    timeout: float = LOGIN_TIMEOUT


def run_login(
    request: LoginRequest,
    *,
    session: requests.Session,
    store: TokenStore | None,
    show: Callable[[str], None],
    open_url: Callable[[str], bool],
    read_paste: Callable[[], str],
    clock: Callable[[], float] = time.time,
) -> StoredLogin:
    """Authorize in the browser, exchange the code, store the login; return the login.

    With ``store`` None nothing is stored (a login made for CI, whose refresh token the user
    puts in a CI secret: it must not be shared with a local login, or each would kill the
    other's token on refresh).
    """
    token_url = token_url_for(request.base_url)
    require_secure_url(request.base_url, "the CRM base URL")
    require_secure_url(token_url, "the token endpoint")
    state = oauth.new_state()
    if request.paste or not can_receive(request.redirect_uri):
        url = oauth.build_authorize_url(
            request.authorize_url, request.client.client_id, request.redirect_uri, state
        )
        _present(url, request.open_browser, show, open_url)
        show(
            f"After you authorize, the browser goes to {request.redirect_uri}?code=... "
            "(the page may fail to load; that is expected)."
        )
        code = code_from_paste(read_paste(), state)
        return _exchange_and_store(
            request, session, store, token_url, code, request.redirect_uri, clock
        )
    with LoopbackReceiver(request.redirect_uri, state) as receiver:
        redirect_uri = receiver.redirect_uri
        url = oauth.build_authorize_url(
            request.authorize_url, request.client.client_id, redirect_uri, state
        )
        _present(url, request.open_browser, show, open_url)
        show(f"Waiting for the authorization to come back on {redirect_uri} ...")
        code = receiver.wait(request.timeout)
        login = _exchange_and_store(request, session, store, token_url, code, redirect_uri, clock)
        receiver.finish(True)
        return login


def _exchange_and_store(
    request: LoginRequest,
    session: requests.Session,
    store: TokenStore | None,
    token_url: str,
    code: Secret,
    redirect_uri: str,
    clock: Callable[[], float],
) -> StoredLogin:
    try:
        tokens = oauth.exchange_code(
            session, token_url, request.client, code, redirect_uri, clock()
        )
    except oauth.InvalidGrant:
        raise AuthError(
            "RD Station refused the authorization code (expired, already used, or the redirect "
            "URI differs from the one registered in the app). Run `dbt-rdcrm auth login` again."
        ) from None
    login = StoredLogin(
        tokens=tokens,
        token_url=token_url,
        client_id=request.client.client_id,
        client_secret=request.client.client_secret,
        logged_in_at=clock(),
    )
    if store is not None:
        store.put(request.base_url, login)
    return login


def _present(
    url: str, open_browser: bool, show: Callable[[str], None], open_url: Callable[[str], bool]
) -> None:
    if open_browser and open_url(url):
        show(
            f"Opened the RD Station authorization page in your browser. If it did not open:\n{url}"
        )
    else:
        show(f"Open this address in a browser to authorize dbt-rdcrm:\n{url}")
