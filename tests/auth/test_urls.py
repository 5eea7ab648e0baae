"""Where the OAuth endpoints are, and HTTPS everywhere but loopback."""

from __future__ import annotations

import pytest

from dbt_rdcrm.auth.urls import (
    authorize_url_for,
    normalize_base_url,
    require_secure_url,
    token_url_for,
)
from dbt_rdcrm.errors import AuthError


def test_token_and_authorize_urls_sit_at_the_origin_of_the_base_url():
    base = "https://api.rd.services/crm/v2"
    assert token_url_for(base) == "https://api.rd.services/oauth2/token"
    assert authorize_url_for(base) == "https://api.rd.services/oauth2/authorize"
    assert token_url_for("http://127.0.0.1:5000/crm/v2") == "http://127.0.0.1:5000/oauth2/token"


def test_base_urls_are_keyed_without_trailing_slash_or_case():
    assert normalize_base_url("HTTPS://API.rd.services/crm/v2/") == "https://api.rd.services/crm/v2"


def test_a_base_url_without_scheme_is_refused():
    with pytest.raises(AuthError, match="invalid CRM base URL"):
        normalize_base_url("api.rd.services/crm/v2")


@pytest.mark.parametrize(
    "url",
    [
        "https://api.rd.services/crm/v2",
        "http://127.0.0.1:8000/crm/v2",
        "http://localhost:8000/crm/v2",
        "http://[::1]:8000/crm/v2",
        "http://127.3.2.1/x",
    ],
    ids=["https", "ipv4-loopback", "localhost", "ipv6-loopback", "loopback-range"],
)
def test_https_or_loopback_http_is_accepted(url):
    assert require_secure_url(url, "the CRM base URL") == url


@pytest.mark.parametrize(
    "url",
    [
        "http://api.rd.services/crm/v2",
        "http://10.0.0.5/crm/v2",
        "http://localhost.example.com/crm/v2",
        "ftp://api.rd.services/x",
    ],
    ids=["plain-http", "private-ip", "localhost-lookalike", "other-scheme"],
)
def test_credentials_never_travel_over_plain_http_to_other_hosts(url):
    with pytest.raises(AuthError, match="must be an https:// URL"):
        require_secure_url(url, "the CRM base URL")
