"""The seam between the CRM client and credentials."""

from __future__ import annotations

from typing import Protocol

from dbt_rdcrm.errors import AuthError
from dbt_rdcrm.redaction import Secret


class TokenProvider(Protocol):
    """Gives the CRM client a valid access token and renews it when the CRM refuses it."""

    def access_token(self) -> Secret:
        """A token that is valid for at least a few minutes (refreshing first if needed)."""
        ...

    def refresh_after_unauthorized(self, rejected: Secret) -> Secret:
        """Called once after a 401 for ``rejected``; returns a new token or raises AuthError."""
        ...

    def describe(self) -> str:
        """Where the credentials come from, for humans (never the token itself)."""
        ...


class StaticTokenProvider:
    """A fixed access token (``RDCRM_ACCESS_TOKEN``): cannot be renewed."""

    def __init__(
        self, token: str | Secret, source: str = "environment variable RDCRM_ACCESS_TOKEN"
    ):
        self._token = Secret(token) if not isinstance(token, Secret) else token
        self._source = source

    def access_token(self) -> Secret:
        return self._token

    def refresh_after_unauthorized(self, rejected: Secret) -> Secret:
        raise AuthError(
            f"the CRM refused the access token from {self._source} (401): it is invalid, "
            "expired or revoked. Set a fresh token, or run `dbt-rdcrm auth login`."
        )

    def describe(self) -> str:
        return self._source
