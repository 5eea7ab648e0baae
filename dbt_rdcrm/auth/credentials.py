"""Choosing the credentials of a run: the environment, CI's rotating chain, or a stored login."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from dbt_rdcrm.auth.ci import EnvCredentials, ci_provider
from dbt_rdcrm.auth.oauth import ClientCredentials
from dbt_rdcrm.auth.provider import StaticTokenProvider, TokenProvider
from dbt_rdcrm.auth.refreshing import RefreshingTokenProvider, StoreSlot
from dbt_rdcrm.auth.store import TokenStore
from dbt_rdcrm.auth.urls import normalize_base_url, require_secure_url
from dbt_rdcrm.errors import AuthError

NO_CREDENTIALS = (
    "no RD Station CRM credentials: run `dbt-rdcrm auth login`, or set RDCRM_ACCESS_TOKEN "
    "(or RDCRM_CLIENT_ID, RDCRM_CLIENT_SECRET and RDCRM_REFRESH_TOKEN in CI)"
)


def resolve_token_provider(
    base_url: str,
    env: Mapping[str, str],
    session: requests.Session,
    *,
    warehouse: Any = None,
    state_database: str | None = None,
    state_schema: str | None = None,
    clock: Callable[[], float] = time.time,
) -> TokenProvider:
    """The credentials a sync uses, in this order:

    1. ``RDCRM_ACCESS_TOKEN`` alone: that token, never renewed.
    2. ``RDCRM_CLIENT_ID`` + ``RDCRM_CLIENT_SECRET`` + ``RDCRM_REFRESH_TOKEN``: CI; rotations
       kept in ``RDCRM_TOKEN_FILE``, else in the warehouse if ``RDCRM_STATE_KEY`` is set, else
       only in memory (with a warning). ``RDCRM_ACCESS_TOKEN``, if also set, is used first.
    3. The login ``dbt-rdcrm auth login`` stored for ``base_url``.
    """
    base_url = normalize_base_url(base_url)
    require_secure_url(base_url, "the CRM base URL")
    creds = EnvCredentials.from_env(env)
    if creds.refresh_token is not None:
        return ci_provider(
            base_url,
            creds,
            session,
            warehouse=warehouse,
            state_database=state_database,
            state_schema=state_schema,
            clock=clock,
        )
    if creds.access_token is not None:
        return StaticTokenProvider(creds.access_token)
    provider = stored_login_provider(base_url, env, session, clock=clock)
    if provider is None:
        raise AuthError(NO_CREDENTIALS)
    return provider


def stored_login_provider(
    base_url: str,
    env: Mapping[str, str],
    session: requests.Session,
    *,
    clock: Callable[[], float] = time.time,
) -> RefreshingTokenProvider | None:
    """The provider for the login stored for ``base_url``, or None if there is none."""
    store = TokenStore.default(env)
    login = store.get(base_url)
    if login is None:
        return None
    creds = EnvCredentials.from_env(env)
    client_id = login.client_id or creds.client_id
    client_secret = login.client_secret or creds.client_secret
    if not client_id or client_secret is None:
        raise AuthError(
            f"the login stored in {store.path} for {base_url} has no client id/secret: "
            "run `dbt-rdcrm auth login` again"
        )
    require_secure_url(login.token_url, "the token endpoint")
    return RefreshingTokenProvider(
        base_url=base_url,
        token_url=login.token_url,
        client=ClientCredentials(client_id, client_secret),
        slot=StoreSlot(store, base_url, login.token_url),
        session=session,
        source=f"login stored in {store.path}",
        clock=clock,
    )
