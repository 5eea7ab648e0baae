"""CI credentials from the environment, and keeping CI's rotating refresh token alive.

RD Station rotates the refresh token on every refresh: the ``RDCRM_REFRESH_TOKEN`` a CI secret
holds is dead after the first run that spends it. So each rotation is persisted where the next
run finds it (the warehouse, encrypted, or a file on a persistent volume), tagged with the
fingerprint of the ``RDCRM_REFRESH_TOKEN`` it descends from: when the user sets a new secret,
its fingerprint no longer matches and the new secret wins over the stored chain.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from dbt_rdcrm.auth.oauth import ClientCredentials, TokenSet, fingerprint
from dbt_rdcrm.auth.refreshing import RefreshingTokenProvider, StoreSlot, TokenSlot
from dbt_rdcrm.auth.store import TokenStore
from dbt_rdcrm.auth.urls import token_url_for
from dbt_rdcrm.auth.warehouse_slot import (
    MIN_KEY_LENGTH,
    CredentialsUnreadable,
    WarehouseSlot,
    cipher_from_key,
)
from dbt_rdcrm.errors import AuthError
from dbt_rdcrm.redaction import Secret

NOT_PERSISTED = (
    "the rotated refresh token is kept in memory only and will be lost when this run ends, "
    "leaving RDCRM_REFRESH_TOKEN dead for the next run: set RDCRM_STATE_KEY (kept encrypted "
    "in the warehouse) or RDCRM_TOKEN_FILE (a file on a persistent volume)"
)


@dataclass(frozen=True)
class EnvCredentials:
    """The ``RDCRM_*`` credential variables; empty values count as unset (CI secrets that
    are not defined expand to empty strings)."""

    client_id: str | None
    client_secret: Secret | None
    refresh_token: Secret | None
    access_token: Secret | None
    state_key: Secret | None
    token_file: Path | None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EnvCredentials:
        def get(name: str) -> str | None:
            value = (env.get(name) or "").strip()
            return value or None

        def secret(name: str) -> Secret | None:
            value = get(name)
            return Secret(value) if value else None

        def state_key(value: str | None) -> Secret | None:
            # A key too short to use is refused before it is used for anything; it is not
            # registered for masking, so the message saying so is not mangled.
            if value is None:
                return None
            return Secret(value, register=len(value.encode()) >= MIN_KEY_LENGTH)

        token_file = get("RDCRM_TOKEN_FILE")
        return cls(
            client_id=get("RDCRM_CLIENT_ID"),
            client_secret=secret("RDCRM_CLIENT_SECRET"),
            refresh_token=secret("RDCRM_REFRESH_TOKEN"),
            access_token=secret("RDCRM_ACCESS_TOKEN"),
            state_key=state_key(get("RDCRM_STATE_KEY")),
            token_file=Path(token_file).expanduser() if token_file else None,
        )

    def ci_client(self) -> ClientCredentials:
        """The client for refreshing RDCRM_REFRESH_TOKEN; AuthError naming what is missing."""
        missing = [
            name
            for name, value in (
                ("RDCRM_CLIENT_ID", self.client_id),
                ("RDCRM_CLIENT_SECRET", self.client_secret),
            )
            if not value
        ]
        if missing or self.client_id is None or self.client_secret is None:
            raise AuthError(
                f"RDCRM_REFRESH_TOKEN is set but {' and '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} not: set both to the RD Station app's "
                "credentials"
            )
        return ClientCredentials(self.client_id, self.client_secret)


class SeededSlot:
    """CI's tokens: the stored chain if it descends from this RDCRM_REFRESH_TOKEN, else the seed.

    Without persistence (``inner`` is None) rotations live in memory for this process only.
    """

    def __init__(self, seed: Secret, inner: TokenSlot | None):
        self.lineage = fingerprint(seed)
        self._seed = TokenSet(None, seed, issued_at=None, expires_in=0.0, lineage=self.lineage)
        self._inner = inner
        self._memory: TokenSet | None = None
        self.warnings: list[str] = []
        self.unreadable: str | None = None  # why the stored chain could not be read, if so

    @property
    def race_rereads(self) -> int:
        return self._inner.race_rereads if self._inner else 1

    def locked(self) -> AbstractContextManager[None]:
        return self._inner.locked() if self._inner else nullcontext()

    def load(self) -> TokenSet | None:
        stored = self.stored()
        if stored is not None:
            return stored
        return self._memory or self._seed

    def stored(self) -> TokenSet | None:
        """The persisted descendant of this run's RDCRM_REFRESH_TOKEN, if any."""
        if self._inner is None:
            return None
        try:
            stored = self._inner.load()
        except CredentialsUnreadable as exc:
            warning = f"{exc}; starting again from RDCRM_REFRESH_TOKEN"
            if warning not in self.warnings:
                self.warnings.append(warning)
            self.unreadable = exc.message_for_refused_seed()
            return None
        return stored if stored is not None and stored.lineage == self.lineage else None

    def save(self, tokens: TokenSet) -> None:
        self._memory = tokens
        if self._inner is not None:
            self._inner.save(tokens)

    def describe(self) -> str:
        return self._inner.describe() if self._inner else "memory (not persisted)"


def ci_provider(
    base_url: str,
    creds: EnvCredentials,
    session: requests.Session,
    *,
    warehouse: Any = None,
    state_database: str | None = None,
    state_schema: str | None = None,
    clock: Callable[[], float] = time.time,
) -> RefreshingTokenProvider:
    assert creds.refresh_token is not None
    client = creds.ci_client()
    token_url = token_url_for(base_url)
    warnings: list[str] = []
    inner: TokenSlot | None
    if creds.token_file is not None:
        inner = StoreSlot(TokenStore(creds.token_file), base_url, token_url)
        if creds.state_key is not None:
            warnings.append("RDCRM_TOKEN_FILE is set, so RDCRM_STATE_KEY is not used")
    elif creds.state_key is not None:
        if warehouse is None:
            raise AuthError(
                "RDCRM_STATE_KEY is set but this command has no warehouse to keep the rotated "
                "refresh token in: run `dbt-rdcrm sync`, or set RDCRM_TOKEN_FILE"
            )
        inner = WarehouseSlot(
            warehouse,
            database=state_database or getattr(warehouse, "database", None),
            schema=state_schema or warehouse.schema,
            base_url=base_url,
            cipher=cipher_from_key(creds.state_key),
        )
    else:
        inner = None
        warnings.append(NOT_PERSISTED)
    slot = SeededSlot(creds.refresh_token, inner)
    origin = (
        f"a rotation stored in {inner.describe()}"
        if inner is not None and slot.stored() is not None
        else "RDCRM_REFRESH_TOKEN"
    )
    warnings.extend(slot.warnings)
    source = f"CI credentials from the environment (refresh token: {origin})"
    if creds.access_token is not None:
        source += "; RDCRM_ACCESS_TOKEN used until it expires"
    return RefreshingTokenProvider(
        base_url=base_url,
        token_url=token_url,
        client=client,
        slot=slot,
        session=session,
        source=source,
        initial_access_token=creds.access_token,
        clock=clock,
        warnings=tuple(warnings),
    )
