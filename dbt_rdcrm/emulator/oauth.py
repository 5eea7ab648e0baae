"""OAuth2 as RD Station serves it: an authorize (consent) page, the token endpoint with the
``authorization_code`` and ``refresh_token`` grants, and a registry of issued tokens.

Refresh tokens rotate: using one kills it and returns a new pair. Every issued token belongs to
the account's default user. The fixed access token ``emulator-token`` is always accepted.
The registered client accepts any ``https://`` redirect URI (what a real app registers) and
any loopback ``http://`` one (for local receivers); plain http elsewhere is refused.
"""

from __future__ import annotations

import html
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from dbt_rdcrm.emulator.server import Request, Response, json_response

CLIENTS = {"emulator-client": "emulator-secret"}
FIXED_ACCESS_TOKEN = "emulator-token"
AUTHORIZE_PATHS = ("/oauth2/authorize", "/oauth/authorize")
TOKEN_PATH = "/oauth2/token"
CODE_TTL_SECONDS = 300.0
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
FORM_TYPE = "application/x-www-form-urlencoded"


class Unauthorized(Exception):
    """No valid access token; the message is the 401 detail."""


@dataclass
class _Grant:
    client_id: str
    expires_at: float
    redirect_uri: str = ""  # authorization codes only


class OAuth:
    def __init__(
        self,
        *,
        clock: Callable[[], float],
        user: Mapping[str, Any],
        access_token_ttl: float,
        refresh_token_ttl: float,
    ):
        self._clock = clock
        self._user = user
        self._access_ttl = access_token_ttl
        self._refresh_ttl = refresh_token_ttl
        self._lock = threading.Lock()
        self._codes: dict[str, _Grant] = {}
        self._access: dict[str, _Grant] = {}
        self._refresh: dict[str, _Grant] = {}

    # --- API authentication --------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> str:
        """The user id behind an ``Authorization: Bearer`` header; raises Unauthorized."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("missing Authorization: Bearer <access token> header")
        if token == FIXED_ACCESS_TOKEN:
            return self._user["id"]
        with self._lock:
            grant = self._access.get(token)
        if grant is None:
            raise Unauthorized("invalid access token")
        if self._clock() >= grant.expires_at:
            raise Unauthorized("access token expired")
        return self._user["id"]

    # --- authorize page -------------------------------------------------------------------

    def authorize_page(self, request: Request) -> Response:
        params = dict(parse_qsl(request.query, keep_blank_values=True))
        problem = _client_problem(params)
        if params.get("response_type") != "code":
            problem = problem or "response_type must be code"
        if problem:
            return _page(400, "Cannot authorize", f"<p>{html.escape(problem)}</p>")
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(params.get(name, ""))}">'
            for name in ("client_id", "redirect_uri", "state")
        )
        body = (
            f"<p>The application <strong>{html.escape(params['client_id'])}</strong> asks to "
            f"use RD Station CRM as <strong>{html.escape(self._user['name'])}</strong>.</p>"
            f'<form method="post" action="{AUTHORIZE_PATHS[0]}">{hidden}'
            '<button type="submit" name="decision" value="approve">Authorize</button> '
            '<button type="submit" name="decision" value="deny">Deny</button></form>'
        )
        return _page(200, "Authorize application", body)

    def approve(self, request: Request) -> Response:
        """The consent form's POST: redirect back with a code (or ``error=access_denied``)."""
        form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        problem = _client_problem(form)
        if problem:
            return _page(400, "Cannot authorize", f"<p>{html.escape(problem)}</p>")
        redirect_uri = form["redirect_uri"]
        if form.get("decision") == "deny":
            params = {"error": "access_denied"}
        else:
            code = secrets.token_urlsafe(24)
            with self._lock:
                expires = self._clock() + CODE_TTL_SECONDS
                self._codes[code] = _Grant(form["client_id"], expires, redirect_uri)
            params = {"code": code}
        if form.get("state"):
            params["state"] = form["state"]
        separator = "&" if "?" in redirect_uri else "?"
        location = f"{redirect_uri}{separator}{urlencode(params)}"
        return Response(302, b"", "text/html; charset=utf-8", (("Location", location),))

    # --- token endpoint -------------------------------------------------------------------

    def token(self, request: Request) -> Response:
        content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
        if content_type != FORM_TYPE:
            return _oauth_error(400, "invalid_request", f"send the token request as {FORM_TYPE}")
        form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        client_id = form.get("client_id", "")
        if not client_id or CLIENTS.get(client_id) != form.get("client_secret"):
            detail = "unknown client_id or wrong client_secret (both go in the form body)"
            return _oauth_error(401, "invalid_client", detail)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange_code(form)
        if grant_type == "refresh_token":
            return self._refresh_grant(form)
        return _oauth_error(
            400, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token"
        )

    def _exchange_code(self, form: Mapping[str, str]) -> Response:
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)  # single use, even when refused
            if grant is None:
                return _oauth_error(
                    400, "invalid_grant", "authorization code is invalid or was already used"
                )
            if self._clock() >= grant.expires_at:
                return _oauth_error(400, "invalid_grant", "authorization code expired")
            if grant.client_id != form["client_id"]:
                return _oauth_error(
                    400, "invalid_grant", "authorization code was issued to another client"
                )
            if grant.redirect_uri != form.get("redirect_uri"):
                return _oauth_error(
                    400, "invalid_grant", "redirect_uri does not match the one used to authorize"
                )
            return self._issue(grant.client_id)

    def _refresh_grant(self, form: Mapping[str, str]) -> Response:
        with self._lock:
            token = form.get("refresh_token", "")
            grant = self._refresh.get(token)
            if grant is None or grant.client_id != form["client_id"]:
                return _oauth_error(
                    400, "invalid_grant", "refresh token is invalid, used or revoked"
                )
            del self._refresh[token]
            if self._clock() >= grant.expires_at:
                return _oauth_error(400, "invalid_grant", "refresh token expired")
            return self._issue(grant.client_id)

    def _issue(self, client_id: str) -> Response:
        """A new token pair (lock held)."""
        now = self._clock()
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self._access[access] = _Grant(client_id, now + self._access_ttl)
        self._refresh[refresh] = _Grant(client_id, now + self._refresh_ttl)
        payload = {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": int(self._access_ttl),
            "token_type": "bearer",
        }
        return json_response(200, payload, (("Cache-Control", "no-store"),))

    # --- control --------------------------------------------------------------------------

    def revoke(self, refresh_token: str | None) -> int:
        """Kill one refresh token, or all when ``None``; how many died."""
        with self._lock:
            if refresh_token is None:
                count = len(self._refresh)
                self._refresh.clear()
                return count
            return 1 if self._refresh.pop(refresh_token, None) else 0

    def expire(self, access_token: str | None) -> int:
        """Expire one issued access token now, or all when ``None``; how many expired."""
        with self._lock:
            if access_token is None:
                grants = list(self._access.values())
            else:
                grant = self._access.get(access_token)
                grants = [grant] if grant else []
            for grant in grants:
                grant.expires_at = float("-inf")
            return len(grants)

    def reset(self) -> None:
        with self._lock:
            self._codes.clear()
            self._access.clear()
            self._refresh.clear()


def _client_problem(params: Mapping[str, str]) -> str | None:
    client_id = params.get("client_id", "")
    if client_id not in CLIENTS:
        return f"unknown client_id {client_id!r}"
    url = urlsplit(params.get("redirect_uri", ""))
    try:
        url.port  # noqa: B018 - validates the port
    except ValueError:
        return "redirect_uri has an invalid port"
    if url.scheme == "https" and url.hostname:
        return None  # a registered callback of a real app (crm-v2-authentication-step-1)
    if url.scheme != "http" or url.hostname not in LOOPBACK_HOSTS:
        return (
            "redirect_uri must be an https:// URL or a loopback http URL such as "
            "http://127.0.0.1:8910/callback"
        )
    return None


def _page(status: int, title: str, body: str) -> Response:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{title} - RD Station CRM emulator</title></head>"
        f"<body><h1>{title}</h1>{body}</body></html>"
    )
    return Response(status, document.encode("utf-8"), "text/html; charset=utf-8")


def _oauth_error(status: int, error: str, description: str) -> Response:
    return json_response(status, {"error": error, "error_description": description})
