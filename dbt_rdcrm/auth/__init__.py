"""CRM credentials: where the access token comes from and how it is kept fresh."""

from dbt_rdcrm.auth.credentials import resolve_token_provider
from dbt_rdcrm.auth.provider import StaticTokenProvider, TokenProvider
from dbt_rdcrm.auth.refreshing import LoginRevoked, RefreshingTokenProvider

__all__ = [
    "LoginRevoked",
    "RefreshingTokenProvider",
    "StaticTokenProvider",
    "TokenProvider",
    "resolve_token_provider",
]
