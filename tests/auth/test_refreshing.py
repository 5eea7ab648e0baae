"""The refreshing provider: before expiry, once after a 401, rotation persisted first."""

from __future__ import annotations

import contextlib

import pytest
import requests

from dbt_rdcrm.auth import oauth
from dbt_rdcrm.auth.credentials import stored_login_provider
from dbt_rdcrm.auth.refreshing import LoginRevoked, RefreshingTokenProvider, StoreSlot
from dbt_rdcrm.auth.urls import token_url_for
from dbt_rdcrm.errors import AuthError
from dbt_rdcrm.redaction import Secret


def users_status(emulator, token: Secret) -> int:
    response = requests.get(
        f"{emulator.base_url}/users",
        params={"page[size]": "1"},
        headers={"Authorization": f"Bearer {token.reveal()}"},
    )
    return response.status_code


@pytest.fixture
def provider(login, emulator, env, session, clock) -> RefreshingTokenProvider:
    login()
    provider = stored_login_provider(emulator.base_url, env, session, clock=clock)
    assert provider is not None
    return provider


def test_a_token_with_time_left_is_used_as_is(provider, store, emulator, clock, token_calls):
    clock.advance(599)  # 301 s left
    assert provider.access_token() == store.get(emulator.base_url).tokens.access_token
    assert token_calls() == 1  # the login's code exchange only


def test_refreshes_when_fewer_than_five_minutes_remain(
    provider, store, emulator, clock, token_calls
):
    before = store.get(emulator.base_url).tokens
    clock.advance(601)  # 299 s left
    token = provider.access_token()
    assert token != before.access_token
    assert users_status(emulator, token) == 200
    assert token_calls() == 2
    assert provider.access_token() == token  # and not again
    assert token_calls() == 2


def test_refreshes_once_after_a_401(provider, emulator, control, token_calls):
    token = provider.access_token()
    control("expire", {"access_token": token.reveal()})
    assert users_status(emulator, token) == 401
    renewed = provider.refresh_after_unauthorized(token)
    assert renewed != token
    assert users_status(emulator, renewed) == 200
    assert token_calls() == 2


def test_the_rotated_refresh_token_is_persisted_and_the_old_one_is_dead(
    provider, store, emulator, clock, session, client
):
    content_before = store.path.read_text()
    old = store.get(emulator.base_url).tokens.refresh_token
    clock.advance(601)
    provider.access_token()
    assert store.path.read_text() != content_before
    new = store.get(emulator.base_url).tokens
    assert new.refresh_token != old
    assert new.issued_at == clock()
    with pytest.raises(oauth.InvalidGrant):
        oauth.refresh(session, token_url_for(emulator.base_url), client, old, clock())


class FailingSaveSlot(StoreSlot):
    def save(self, tokens):
        raise OSError("disk full")


def test_a_new_access_token_is_not_used_unless_its_refresh_token_was_saved(
    login, emulator, store, session, client, clock
):
    login()
    token_url = token_url_for(emulator.base_url)
    provider = RefreshingTokenProvider(
        base_url=emulator.base_url,
        token_url=token_url,
        client=client,
        slot=FailingSaveSlot(store, emulator.base_url, token_url),
        session=session,
        source="test",
        clock=clock,
    )
    before = store.get(emulator.base_url).tokens.access_token
    clock.advance(601)
    with pytest.raises(OSError, match="disk full"):
        provider.access_token()
    assert provider._current is None or provider._current.access_token == before


def test_a_revoked_refresh_token_says_how_to_log_in_again(
    provider, store, emulator, clock, control
):
    refresh_token = store.get(emulator.base_url).tokens.refresh_token
    control("revoke", {"refresh_token": refresh_token.reveal()})
    clock.advance(601)
    with pytest.raises(LoginRevoked) as caught:
        provider.access_token()
    assert str(caught.value) == (
        f"RD Station CRM login for {emulator.base_url} is no longer valid (refresh token revoked "
        "or expired). Run `dbt-rdcrm auth login` again (or update RDCRM_REFRESH_TOKEN in CI)."
    )
    assert caught.value.exit_code == 2
    assert refresh_token.reveal() not in repr(caught.value)


def test_a_refresh_token_unused_past_its_lifetime_is_reported_the_same_way(provider, clock):
    clock.advance(3601)
    with pytest.raises(LoginRevoked, match="is no longer valid"):
        provider.access_token()


def test_a_provider_adopts_a_refresh_another_one_already_made(
    login, emulator, env, session, clock, token_calls
):
    login()
    first = stored_login_provider(emulator.base_url, env, session, clock=clock)
    second = stored_login_provider(emulator.base_url, env, session, clock=clock)
    stale = second.access_token()
    clock.advance(601)
    renewed = first.access_token()
    assert second.access_token() == renewed != stale
    assert token_calls() == 2


def test_a_401_for_a_token_already_replaced_uses_the_replacement(
    provider, emulator, clock, token_calls
):
    stale = provider.access_token()
    clock.advance(601)
    renewed = provider.access_token()
    assert provider.refresh_after_unauthorized(stale) == renewed
    assert token_calls() == 2


def test_logging_out_under_a_running_provider_is_reported(provider, store, emulator, clock):
    provider.access_token()
    store.delete(emulator.base_url)
    clock.advance(601)
    with pytest.raises(AuthError, match="was removed from token store"):
        provider.access_token()


class SharedSlot:
    """A slot without a lock (like the warehouse): ``stale_reads`` loads return an old value."""

    race_rereads = 3

    def __init__(self, tokens):
        self.tokens = tokens
        self.stale = None
        self.stale_reads = 0

    def locked(self):
        return contextlib.nullcontext()

    def load(self):
        if self.stale_reads:
            self.stale_reads -= 1
            return self.stale
        return self.tokens

    def save(self, tokens):
        self.tokens = tokens

    def describe(self):
        return "shared test slot"


def test_losing_a_refresh_race_without_a_lock_adopts_the_winner(
    emulator, session, client, clock, mint_tokens, token_calls
):
    slot = SharedSlot(mint_tokens(emulator, clock()))
    token_url = token_url_for(emulator.base_url)

    def provider() -> RefreshingTokenProvider:
        return RefreshingTokenProvider(
            base_url=emulator.base_url,
            token_url=token_url,
            client=client,
            slot=slot,
            session=session,
            source="test",
            clock=clock,
            sleep=lambda seconds: None,
        )

    winner, loser = provider(), provider()
    spent = slot.tokens
    loser.access_token()
    clock.advance(601)
    renewed = winner.access_token()
    slot.stale, slot.stale_reads = spent, 1  # the loser read the row before the winner saved
    assert loser.access_token() == renewed
    assert token_calls() == 1 + 1 + 1  # mint, the winner's refresh, the loser's refused one
