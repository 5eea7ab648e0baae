"""Which credentials a run uses (resolve_token_provider), and CI rotation kept in a file."""

from __future__ import annotations

import pytest

from dbt_rdcrm.auth import StaticTokenProvider, resolve_token_provider
from dbt_rdcrm.auth.ci import NOT_PERSISTED
from dbt_rdcrm.auth.credentials import NO_CREDENTIALS
from dbt_rdcrm.auth.refreshing import LoginRevoked, RefreshingTokenProvider
from dbt_rdcrm.auth.store import TokenStore
from dbt_rdcrm.auth.warehouse_slot import cipher_from_key
from dbt_rdcrm.errors import AuthError
from dbt_rdcrm.redaction import Secret


@pytest.fixture
def ci_env(emulator, env, mint_tokens, clock) -> dict[str, str]:
    """CI secrets: the app's credentials and a refresh token from a login made by hand."""
    seed = mint_tokens(emulator, clock())
    return {
        **env,
        "RDCRM_CLIENT_ID": "emulator-client",
        "RDCRM_CLIENT_SECRET": "emulator-secret",
        "RDCRM_REFRESH_TOKEN": seed.refresh_token.reveal(),
    }


def test_an_access_token_alone_is_used_as_is(emulator, env, session):
    provider = resolve_token_provider(
        emulator.base_url, {**env, "RDCRM_ACCESS_TOKEN": "emulator-token"}, session
    )
    assert isinstance(provider, StaticTokenProvider)
    assert provider.access_token() == Secret("emulator-token")


def test_no_credentials_anywhere_says_every_way_to_provide_them(emulator, env, session):
    with pytest.raises(AuthError) as caught:
        resolve_token_provider(emulator.base_url, env, session)
    assert str(caught.value) == NO_CREDENTIALS


def test_a_stored_login_is_used_when_the_environment_has_no_credentials(
    login, emulator, env, session
):
    login()
    provider = resolve_token_provider(emulator.base_url, env, session)
    assert isinstance(provider, RefreshingTokenProvider)
    assert provider.describe().startswith("login stored in ")


def test_a_login_for_another_base_url_is_not_used(login, env, session):
    login()
    with pytest.raises(AuthError, match="no RD Station CRM credentials"):
        resolve_token_provider("https://api.rd.services/crm/v2", env, session)


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        (("RDCRM_CLIENT_SECRET",), "RDCRM_CLIENT_SECRET is not"),
        (("RDCRM_CLIENT_ID", "RDCRM_CLIENT_SECRET"), "RDCRM_CLIENT_ID and RDCRM_CLIENT_SECRET are"),
    ],
    ids=["secret", "both"],
)
def test_a_refresh_token_without_the_app_credentials_names_what_is_missing(
    emulator, ci_env, session, missing, named
):
    env = {**ci_env, **dict.fromkeys(missing, "")}  # unset CI secrets expand to ""
    with pytest.raises(AuthError, match=named):
        resolve_token_provider(emulator.base_url, env, session)


def test_ci_credentials_win_over_a_stored_login(login, emulator, ci_env, session):
    login()
    provider = resolve_token_provider(emulator.base_url, ci_env, session)
    assert provider.describe().startswith("CI credentials from the environment")


def test_ci_without_persistence_works_but_warns_the_rotation_will_be_lost(
    emulator, ci_env, session, clock, token_calls
):
    provider = resolve_token_provider(emulator.base_url, ci_env, session, clock=clock)
    assert NOT_PERSISTED in provider.describe()
    first = provider.access_token()
    clock.advance(601)
    assert provider.access_token() != first  # the rotation lives on in memory
    assert token_calls() == 3  # mint + two refreshes


def test_ci_access_token_is_used_first_then_refreshed_after_a_401(
    emulator, ci_env, session, clock, token_calls
):
    env = {**ci_env, "RDCRM_ACCESS_TOKEN": "emulator-token"}
    provider = resolve_token_provider(emulator.base_url, env, session, clock=clock)
    assert provider.access_token() == Secret("emulator-token")
    assert token_calls() == 1
    renewed = provider.refresh_after_unauthorized(Secret("emulator-token"))
    assert renewed != Secret("emulator-token")
    assert provider.access_token() == renewed
    assert token_calls() == 2


def test_state_key_without_a_warehouse_is_refused_before_spending_the_token(
    emulator, ci_env, session, token_calls
):
    env = {**ci_env, "RDCRM_STATE_KEY": "k" * 44}
    with pytest.raises(AuthError, match="no warehouse"):
        resolve_token_provider(emulator.base_url, env, session)
    assert token_calls() == 1


def test_a_short_state_key_is_refused_without_echoing_it():
    with pytest.raises(AuthError, match="too short") as caught:
        cipher_from_key(Secret("short-key-abc"))
    assert "short-key-abc" not in str(caught.value)


def test_plain_http_to_a_remote_crm_is_refused(env, session):
    with pytest.raises(AuthError, match="https"):
        resolve_token_provider(
            "http://api.rd.services/crm/v2", {**env, "RDCRM_ACCESS_TOKEN": "t" * 10}, session
        )


def call_crm(emulator, session, provider) -> Secret:
    """What the CRM client does: one request, one refresh and retry after a 401."""
    token = provider.access_token()
    response = session.get(
        f"{emulator.base_url}/users", headers={"Authorization": f"Bearer {token.reveal()}"}
    )
    if response.status_code == 401:
        token = provider.refresh_after_unauthorized(token)
        response = session.get(
            f"{emulator.base_url}/users", headers={"Authorization": f"Bearer {token.reveal()}"}
        )
    assert response.status_code == 200
    return token


class TestTokenFile:
    """RDCRM_TOKEN_FILE: rotations on a persistent volume."""

    @pytest.fixture
    def file_env(self, ci_env, tmp_path) -> dict[str, str]:
        return {**ci_env, "RDCRM_TOKEN_FILE": str(tmp_path / "volume" / "rdcrm-tokens.json")}

    def test_each_run_finds_the_rotation_the_previous_one_saved(
        self, emulator, file_env, session, clock, control, token_calls
    ):
        used = []
        for run in range(3):
            provider = resolve_token_provider(emulator.base_url, file_env, session, clock=clock)
            if run:
                assert "a rotation stored in token store" in provider.describe()
            used.append(call_crm(emulator, session, provider))
            control("expire", {"all": True})  # the next run's stored access token gets a 401
        assert len(set(used)) == 3
        assert token_calls() == 1 + 3  # mint, then one refresh per run
        stored = TokenStore(file_env["RDCRM_TOKEN_FILE"]).logins()
        assert list(stored) == [emulator.base_url]
        assert stored[emulator.base_url].client_secret is None  # the app's secret stays in env

    def test_a_new_refresh_token_in_the_environment_wins_over_the_stored_chain(
        self, emulator, file_env, session, clock, mint_tokens
    ):
        resolve_token_provider(emulator.base_url, file_env, session, clock=clock).access_token()
        replacement = mint_tokens(emulator, clock())
        env = {**file_env, "RDCRM_REFRESH_TOKEN": replacement.refresh_token.reveal()}
        provider = resolve_token_provider(emulator.base_url, env, session, clock=clock)
        assert "refresh token: RDCRM_REFRESH_TOKEN" in provider.describe()
        provider.access_token()
        chain = TokenStore(file_env["RDCRM_TOKEN_FILE"]).get(emulator.base_url).tokens
        assert chain.refresh_token != replacement.refresh_token  # spent and rotated

    def test_a_revoked_chain_says_to_update_the_ci_secret(
        self, emulator, file_env, session, clock, control
    ):
        control("revoke", {"all": True})
        provider = resolve_token_provider(emulator.base_url, file_env, session, clock=clock)
        with pytest.raises(LoginRevoked, match="update RDCRM_REFRESH_TOKEN in CI"):
            provider.access_token()
