"""RD Station's OAuth2 token endpoint: authorize URL, code exchange and refresh (rdcrm-api.md §1).

Every call goes to ``<origin of base_url>/oauth2/token`` with the client id and secret in the
form body, TLS verification on and redirects off (a redirect must never carry the secret
elsewhere). Refresh tokens rotate: the one sent dies as soon as the response is produced, so
callers must persist :attr:`TokenSet.refresh_token` before using the new access token.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

import requests

from dbt_rdcrm.auth.urls import require_secure_url
from dbt_rdcrm.errors import AuthError
from dbt_rdcrm.redaction import Secret, redact

TIMEOUT = (10.0, 30.0)
REFRESH_TOKEN_IDLE_LIFETIME = 14 * 24 * 3600.0


@dataclass(frozen=True)
class ClientCredentials:
    """The RD Station app the user registered: its id and secret."""

    client_id: str
    client_secret: Secret


@dataclass(frozen=True)
class TokenSet:
    """One token response, plus where it stands in time.

    ``issued_at`` is ``None`` and ``access_token`` is ``None`` for a refresh token given by hand
    (``RDCRM_REFRESH_TOKEN``). ``lineage`` fingerprints the hand-given refresh token a chain of
    rotations descends from (CI only), so a newly configured one can win over a stored chain.
    """

    access_token: Secret | None
    refresh_token: Secret
    issued_at: float | None
    expires_in: float
    lineage: str | None = None

    @property
    def expires_at(self) -> float:
        return (self.issued_at or 0.0) + self.expires_in

    def remaining(self, now: float) -> float:
        return self.expires_at - now if self.access_token is not None else 0.0

    def needs_refresh(self, now: float, margin: float = 300.0) -> bool:
        """True when the access token is missing or has less than ``margin`` seconds left.

        The margin never exceeds half the token's lifetime, so a short-lived token is not
        refreshed on every use.
        """
        if self.access_token is None or self.issued_at is None:
            return True
        return self.remaining(now) < min(margin, self.expires_in / 2)

    def with_lineage(self, lineage: str | None) -> TokenSet:
        return replace(self, lineage=lineage)

    def to_json(self) -> dict[str, Any]:
        """Plain values for the token store (the only place they may be written)."""
        return {
            "access_token": self.access_token.reveal() if self.access_token else None,
            "refresh_token": self.refresh_token.reveal(),
            "issued_at": self.issued_at,
            "expires_in": self.expires_in,
            "lineage": self.lineage,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TokenSet:
        access = data.get("access_token")
        return cls(
            access_token=Secret(access) if access else None,
            refresh_token=Secret(str(data["refresh_token"])),
            issued_at=float(data["issued_at"]) if data.get("issued_at") is not None else None,
            expires_in=float(data.get("expires_in") or 0.0),
            lineage=data.get("lineage"),
        )


def fingerprint(token: Secret) -> str:
    """A sha256 of a token: identifies it in storage without revealing it."""
    return hashlib.sha256(token.reveal().encode()).hexdigest()


class TokenEndpointError(AuthError):
    """The token endpoint refused a request or could not be reached."""

    def __init__(self, message: str, *, token_url: str, status: int | None, error: str | None):
        super().__init__(redact(message))
        self.token_url = token_url
        self.status = status
        self.error = error


class InvalidGrant(TokenEndpointError):
    """The code or refresh token is dead: expired, already used, or revoked."""


def new_state() -> str:
    return secrets.token_urlsafe(24)


def build_authorize_url(authorize_url: str, client_id: str, redirect_uri: str, state: str) -> str:
    require_secure_url(authorize_url, "the authorize URL")
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "state": state,
        }
    )
    separator = "&" if "?" in authorize_url else "?"
    return f"{authorize_url}{separator}{query}"


def exchange_code(
    session: requests.Session,
    token_url: str,
    client: ClientCredentials,
    code: Secret,
    redirect_uri: str,
    now: float,
) -> TokenSet:
    """Trade an authorization code for tokens (the code lives 5 minutes, one use)."""
    form = {"grant_type": "authorization_code", "code": code.reveal(), "redirect_uri": redirect_uri}
    return _token_request(session, token_url, client, form, now)


def refresh(
    session: requests.Session,
    token_url: str,
    client: ClientCredentials,
    refresh_token: Secret,
    now: float,
) -> TokenSet:
    """Spend ``refresh_token`` for a new pair; the old refresh token is dead afterwards."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token.reveal()}
    return _token_request(session, token_url, client, form, now)


def _token_request(
    session: requests.Session,
    token_url: str,
    client: ClientCredentials,
    form: dict[str, str],
    now: float,
) -> TokenSet:
    require_secure_url(token_url, "the token endpoint")
    body = {
        **form,
        "client_id": client.client_id,
        "client_secret": client.client_secret.reveal(),
    }
    try:
        response = session.post(
            token_url,
            data=body,
            headers={"Accept": "application/json"},
            timeout=TIMEOUT,
            verify=True,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise TokenEndpointError(
            f"could not reach the RD Station token endpoint {token_url}: "
            f"{type(exc).__name__}; the stored login is unchanged, try again",
            token_url=token_url,
            status=None,
            error=None,
        ) from None
    payload = _json_object(response)
    if response.status_code != 200:
        raise _endpoint_error(token_url, response.status_code, payload, response.text)
    try:
        access = str(payload["access_token"])
        refresh_token = str(payload["refresh_token"])
        expires_in = float(payload.get("expires_in") or 7200)
    except (KeyError, TypeError, ValueError):
        raise TokenEndpointError(
            f"the RD Station token endpoint {token_url} answered 200 without "
            "access_token/refresh_token",
            token_url=token_url,
            status=response.status_code,
            error=None,
        ) from None
    return TokenSet(Secret(access), Secret(refresh_token), issued_at=now, expires_in=expires_in)


def _json_object(response: requests.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _endpoint_error(
    token_url: str, status: int, payload: dict[str, Any], text: str
) -> TokenEndpointError:
    error = payload.get("error")
    error = str(error) if error is not None else None
    detail = str(payload.get("error_description") or payload.get("message") or text[:200])
    detail = redact(" ".join(detail.split()))[:200]
    if error == "invalid_grant":
        return InvalidGrant(
            f"the token endpoint rejected the grant: {detail}",
            token_url=token_url,
            status=status,
            error=error,
        )
    if error in ("invalid_client", "unauthorized_client"):
        message = (
            f"RD Station rejected the client id/secret ({error}): check RDCRM_CLIENT_ID and "
            "RDCRM_CLIENT_SECRET (the app's credentials), then run `dbt-rdcrm auth login`"
        )
    else:
        message = f"the RD Station token endpoint {token_url} answered {status}: {error or detail}"
        if status == 429 or status >= 500:
            message += "; the stored login is unchanged, try again later"
    return TokenEndpointError(message, token_url=token_url, status=status, error=error)
