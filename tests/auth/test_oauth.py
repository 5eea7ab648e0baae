"""The token endpoint client: what a refusal or an outage looks like to the user."""

from __future__ import annotations

import socket

import pytest

from dbt_rdcrm.auth import oauth
from dbt_rdcrm.auth.oauth import ClientCredentials, TokenSet
from dbt_rdcrm.errors import AuthError
from dbt_rdcrm.redaction import Secret


def test_an_unreachable_token_endpoint_says_the_login_is_unchanged(session, client):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(oauth.TokenEndpointError, match="the stored login is unchanged") as caught:
        oauth.refresh(
            session, f"http://127.0.0.1:{port}/oauth2/token", client, Secret("rt-abcdef"), 0.0
        )
    assert caught.value.status is None
    assert "rt-abcdef" not in str(caught.value)


def test_wrong_app_credentials_name_the_variables_to_check(emulator, session, mint_tokens, clock):
    tokens = mint_tokens(emulator, clock())
    wrong = ClientCredentials("emulator-client", Secret("wrong-secret-123"))
    with pytest.raises(oauth.TokenEndpointError) as caught:
        oauth.refresh(session, f"{emulator.url}/oauth2/token", wrong, tokens.refresh_token, 0.0)
    assert (caught.value.status, caught.value.error) == (401, "invalid_client")
    assert "RDCRM_CLIENT_ID and RDCRM_CLIENT_SECRET" in str(caught.value)
    assert "wrong-secret-123" not in str(caught.value)


def test_a_dead_refresh_token_is_an_invalid_grant(emulator, session, client, mint_tokens, clock):
    tokens = mint_tokens(emulator, clock())
    oauth.refresh(session, f"{emulator.url}/oauth2/token", client, tokens.refresh_token, 0.0)
    with pytest.raises(oauth.InvalidGrant) as caught:
        oauth.refresh(session, f"{emulator.url}/oauth2/token", client, tokens.refresh_token, 0.0)
    assert caught.value.status == 400


def test_the_token_endpoint_must_be_https_unless_local(session, client):
    with pytest.raises(AuthError, match="https"):
        oauth.refresh(
            session, "http://api.rd.services/oauth2/token", client, Secret("rt-abcdef"), 0.0
        )


def test_the_authorize_url_must_be_https_unless_local():
    with pytest.raises(AuthError, match="https"):
        oauth.build_authorize_url(
            "http://accounts.rdstation.com/oauth/authorize", "id", "http://127.0.0.1:1/cb", "s"
        )


def test_an_authorize_url_override_keeps_its_own_query():
    url = oauth.build_authorize_url(
        "https://accounts.rdstation.com/oauth/authorize?locale=pt",
        "id",
        "http://127.0.0.1:1/cb",
        "s",
    )
    assert url.startswith(
        "https://accounts.rdstation.com/oauth/authorize?locale=pt&response_type=code"
    )


@pytest.mark.parametrize(
    ("expires_in", "left", "expected"),
    [
        (7200, 301, False),
        (7200, 299, True),
        (120, 61, False),  # short-lived tokens renew at half their life, not on every use
        (120, 59, True),
    ],
    ids=["7200s-301-left", "7200s-299-left", "120s-61-left", "120s-59-left"],
)
def test_renewal_margin(expires_in, left, expected):
    tokens = TokenSet(Secret("at-abcdef"), Secret("rt-abcdef"), 0.0, expires_in)
    assert tokens.needs_refresh(now=expires_in - left) is expected


def test_tokens_print_masked():
    tokens = TokenSet(Secret("at-abcdef"), Secret("rt-abcdef"), 0.0, 7200.0)
    assert "abcdef" not in repr(tokens) + str(tokens)
