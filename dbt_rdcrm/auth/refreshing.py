"""A TokenProvider that keeps an OAuth access token fresh and never loses a rotated refresh token.

The provider renews when fewer than 5 minutes remain, and once after the CRM answers 401. A
renewal runs under the slot's lock: it re-reads the slot first (another process may already
have renewed), spends the refresh token, and **saves the new pair before the new access token
is handed out**, so a crash can lose an access token but never the only live refresh token.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

import requests

from dbt_rdcrm.auth import oauth
from dbt_rdcrm.auth.oauth import ClientCredentials, InvalidGrant, TokenSet
from dbt_rdcrm.auth.store import TokenStore
from dbt_rdcrm.errors import AuthError
from dbt_rdcrm.redaction import Secret

REFRESH_MARGIN = 300.0


class TokenSlot(Protocol):
    """Somewhere one login's current tokens are kept between processes.

    ``race_rereads``: after a refused refresh, how many times to re-read the slot (one second
    apart) looking for a pair another process saved meanwhile; 1 where ``locked`` really locks.
    """

    race_rereads: int

    def locked(self) -> AbstractContextManager[None]:
        """Held across read, refresh and save; may be a no-op where no lock exists."""
        ...

    def load(self) -> TokenSet | None: ...

    def save(self, tokens: TokenSet) -> None: ...

    def describe(self) -> str: ...


class StoreSlot:
    """One base URL's login in a :class:`TokenStore` file."""

    race_rereads = 1

    def __init__(self, store: TokenStore, base_url: str, token_url: str):
        self._store = store
        self._base_url = base_url
        self._token_url = token_url

    def locked(self) -> AbstractContextManager[None]:
        return self._store.lock()

    def load(self) -> TokenSet | None:
        login = self._store.get(self._base_url)
        return login.tokens if login else None

    def save(self, tokens: TokenSet) -> None:
        self._store.update_tokens(self._base_url, tokens, self._token_url)

    def describe(self) -> str:
        return f"token store {self._store.path}"


def revoked_message(base_url: str) -> str:
    return (
        f"RD Station CRM login for {base_url} is no longer valid (refresh token revoked or "
        "expired). Run `dbt-rdcrm auth login` again (or update RDCRM_REFRESH_TOKEN in CI)."
    )


class LoginRevoked(AuthError):
    """The refresh token was refused: only a new login (or a new CI secret) helps."""

    def __init__(self, base_url: str, token_url: str):
        super().__init__(revoked_message(base_url))
        self.base_url = base_url
        self.token_url = token_url


class RefreshingTokenProvider:
    """OAuth tokens from a :class:`TokenSlot`, renewed through the token endpoint."""

    def __init__(
        self,
        *,
        base_url: str,
        token_url: str,
        client: ClientCredentials,
        slot: TokenSlot,
        session: requests.Session,
        source: str,
        initial_access_token: Secret | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        warnings: tuple[str, ...] = (),
    ):
        self.base_url = base_url
        self.token_url = token_url
        self.slot = slot
        self.warnings = warnings
        self._client = client
        self._session = session
        self._source = source
        self._initial = initial_access_token
        self._clock = clock
        self._sleep = sleep
        self._current: TokenSet | None = None
        self._mutex = threading.RLock()

    def access_token(self) -> Secret:
        with self._mutex:
            if self._initial is not None:
                return self._initial
            current = self._current
            if current is None:
                current = self._current = self.slot.load()
            if current is None or current.needs_refresh(self._clock(), REFRESH_MARGIN):
                current = self._renew(rejected=None)
            assert current.access_token is not None
            return current.access_token

    def refresh_after_unauthorized(self, rejected: Secret) -> Secret:
        with self._mutex:
            self._initial = None
            current = self._current
            if (
                current is not None
                and current.access_token is not None
                and current.access_token != rejected
                and not current.needs_refresh(self._clock(), REFRESH_MARGIN)
            ):
                return current.access_token  # renewed meanwhile by another caller
            renewed = self._renew(rejected=rejected)
            assert renewed.access_token is not None
            return renewed.access_token

    def describe(self) -> str:
        return "; ".join([self._source, *(f"warning: {w}" for w in self.warnings)])

    def _renew(self, rejected: Secret | None) -> TokenSet:
        with self.slot.locked():
            stored = self.slot.load()
            if stored is None:
                raise AuthError(
                    f"the RD Station CRM login for {self.base_url} was removed from "
                    f"{self.slot.describe()}. Run `dbt-rdcrm auth login` again."
                )
            if self._usable(stored, rejected):
                self._current = stored  # another process renewed while we waited
                return stored
            renewed = self._rotate(stored, rejected, after_race=False)
            self._current = renewed
            return renewed

    def _rotate(self, stored: TokenSet, rejected: Secret | None, *, after_race: bool) -> TokenSet:
        """Spend ``stored.refresh_token`` and save the new pair; adopt a racer's pair if it won."""
        try:
            fresh = oauth.refresh(
                self._session, self.token_url, self._client, stored.refresh_token, self._clock()
            )
        except InvalidGrant:
            newer = None if after_race else self._newer_after_race(stored)
            if newer is None:
                unreadable = getattr(self.slot, "unreadable", None)
                if unreadable is not None:  # the live token is likely in the unreadable row
                    raise AuthError(unreadable) from None
                raise LoginRevoked(self.base_url, self.token_url) from None
            if self._usable(newer, rejected):
                return newer
            return self._rotate(newer, rejected, after_race=True)
        renewed = fresh.with_lineage(stored.lineage)
        self.slot.save(renewed)
        return renewed

    def _newer_after_race(self, spent: TokenSet) -> TokenSet | None:
        """For slots without a real lock: did another process rotate the token under us?"""
        for attempt in range(self.slot.race_rereads):
            if attempt:
                self._sleep(1.0)
            stored = self.slot.load()
            if stored is not None and stored.refresh_token != spent.refresh_token:
                return stored
        return None

    def _usable(self, tokens: TokenSet, rejected: Secret | None) -> bool:
        return (
            tokens.access_token is not None
            and tokens.access_token != rejected
            and not tokens.needs_refresh(self._clock(), REFRESH_MARGIN)
        )
