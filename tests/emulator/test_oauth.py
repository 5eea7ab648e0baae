"""OAuth2: consent page, code and refresh grants, rotation, expiry, revocation.

Reference pages: crm-v2-authentication-step-1 (https callback URLs), -step-2 (authorization
code), -step-3 (token request), -step-4 (refresh); rotation and lifetimes as rdcrm-api.md.
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

CLIENT = {"client_id": "emulator-client", "client_secret": "emulator-secret"}
REDIRECT_URI = "http://127.0.0.1:8910/callback"
ACCESS_TTL, REFRESH_TTL = 7200, 14 * 86400


class FormParser(HTMLParser):
    """The first form of a page: its attributes, named inputs and button labels."""

    def __init__(self) -> None:
        super().__init__()
        self.form: dict[str, str] = {}
        self.inputs: dict[str, str] = {}
        self.buttons: list[str] = []
        self._in_button = False

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form" and not self.form:
            self.form = attributes
        elif tag == "input" and "name" in attributes:
            self.inputs[attributes["name"]] = attributes.get("value", "")
        elif tag == "button":
            self._in_button = True

    def handle_endtag(self, tag):
        if tag == "button":
            self._in_button = False

    def handle_data(self, data):
        if self._in_button and data.strip():
            self.buttons.append(data.strip())


@pytest.fixture
def oauth_emulator(make_emulator, clock):
    return make_emulator(
        rate_limit=0, clock=clock, access_token_ttl=ACCESS_TTL, refresh_token_ttl=REFRESH_TTL
    )


def consent_page(emulator, path="/oauth2/authorize", **overrides) -> requests.Response:
    params = {"response_type": "code", "client_id": "emulator-client"}
    params |= {"redirect_uri": REDIRECT_URI, "state": "xyz-123", **overrides}
    return requests.get(emulator.url + path, params=params, timeout=5)


def parse_form(page: requests.Response) -> FormParser:
    parser = FormParser()
    parser.feed(page.text)
    return parser


def approve(emulator, **overrides) -> requests.Response:
    form = parse_form(consent_page(emulator, **overrides))
    return requests.post(
        emulator.url + form.form["action"], data=form.inputs, allow_redirects=False, timeout=5
    )


def authorization_code(emulator) -> str:
    location = approve(emulator).headers["Location"]
    return parse_qs(urlsplit(location).query)["code"][0]


def token_request(emulator, **form) -> requests.Response:
    return requests.post(emulator.url + "/oauth2/token", data={**CLIENT, **form}, timeout=5)


def exchange(emulator, code: str, redirect_uri: str = REDIRECT_URI) -> requests.Response:
    return token_request(
        emulator, grant_type="authorization_code", code=code, redirect_uri=redirect_uri
    )


def login(emulator) -> dict:
    response = exchange(emulator, authorization_code(emulator))
    assert response.status_code == 200, response.text
    return response.json()


def refresh(emulator, refresh_token: str) -> requests.Response:
    return token_request(emulator, grant_type="refresh_token", refresh_token=refresh_token)


def crm_status(emulator, access_token: str) -> int:
    headers = {"Authorization": f"Bearer {access_token}"}
    return requests.get(f"{emulator.base_url}/users", headers=headers, timeout=5).status_code


def error_of(response: requests.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]


@pytest.mark.parametrize("path", ["/oauth2/authorize", "/oauth/authorize"])
def test_consent_page_posts_a_form_to_oauth2_authorize(oauth_emulator, path):
    page = consent_page(oauth_emulator, path=path)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    form = parse_form(page)
    assert (form.form["method"], form.form["action"]) == ("post", "/oauth2/authorize")


def test_consent_form_carries_client_redirect_and_state(oauth_emulator):
    inputs = parse_form(consent_page(oauth_emulator)).inputs
    assert inputs == {
        "client_id": "emulator-client",
        "redirect_uri": REDIRECT_URI,
        "state": "xyz-123",
    }


def test_consent_page_has_an_authorize_button(oauth_emulator):
    assert "Authorize" in parse_form(consent_page(oauth_emulator)).buttons


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"client_id": "someone-else"}, id="unknown-client-400"),
        pytest.param(
            {"redirect_uri": "http://app.example.com/cb"}, id="plain-http-non-loopback-400"
        ),
        pytest.param({"redirect_uri": "ftp://127.0.0.1/cb"}, id="other-scheme-400"),
        pytest.param({"response_type": "token"}, id="response-type-not-code-400"),
    ],
)
def test_consent_page_refuses_bad_requests(oauth_emulator, overrides):
    page = consent_page(oauth_emulator, **overrides)
    assert page.status_code == 400
    assert page.headers["Content-Type"].startswith("text/html")


def test_localhost_redirect_uri_is_accepted(oauth_emulator):
    assert consent_page(oauth_emulator, redirect_uri="http://localhost:5000/cb").status_code == 200


def test_a_registered_https_callback_gets_the_code_and_can_exchange_it(oauth_emulator):
    # crm-v2-authentication-step-1/-2: apps register an https callback URL
    callback = "https://app.example.com/rdcrm/callback"
    response = approve(oauth_emulator, redirect_uri=callback)
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == callback
    code = parse_qs(location.query)["code"][0]
    assert exchange(oauth_emulator, code, redirect_uri=callback).status_code == 200


def test_submitting_the_form_redirects_with_code_and_state(oauth_emulator):
    response = approve(oauth_emulator)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    query = parse_qs(location.query)
    assert query["state"] == ["xyz-123"] and query["code"][0]


def test_deny_redirects_with_access_denied(oauth_emulator):
    form = parse_form(consent_page(oauth_emulator))
    response = requests.post(
        oauth_emulator.url + "/oauth2/authorize",
        data={**form.inputs, "decision": "deny"},
        allow_redirects=False,
        timeout=5,
    )
    assert parse_qs(urlsplit(response.headers["Location"]).query)["error"] == ["access_denied"]


def test_code_exchange_returns_a_bearer_token_pair(oauth_emulator):
    tokens = login(oauth_emulator)
    assert set(tokens) == {"access_token", "refresh_token", "expires_in", "token_type"}
    assert (tokens["expires_in"], tokens["token_type"]) == (ACCESS_TTL, "bearer")


def test_issued_access_token_is_accepted_by_the_crm(oauth_emulator):
    assert crm_status(oauth_emulator, login(oauth_emulator)["access_token"]) == 200


def test_issued_token_belongs_to_the_default_user(oauth_emulator, make_api):
    tokens = login(oauth_emulator)
    deal = make_api(oauth_emulator, token=tokens["access_token"]).create("deals", {"name": "D"})
    assert deal["owner_id"] == oauth_emulator.fixtures["users"][0]["id"]


def test_code_is_single_use(oauth_emulator):
    code = authorization_code(oauth_emulator)
    exchange(oauth_emulator, code)
    assert error_of(exchange(oauth_emulator, code)) == (400, "invalid_grant")


def test_code_expires_after_five_minutes(oauth_emulator, clock):
    code = authorization_code(oauth_emulator)
    clock.advance(301)
    assert error_of(exchange(oauth_emulator, code)) == (400, "invalid_grant")


def test_code_exchange_needs_the_same_redirect_uri(oauth_emulator):
    code = authorization_code(oauth_emulator)
    response = exchange(oauth_emulator, code, redirect_uri="http://127.0.0.1:9999/other")
    assert error_of(response) == (400, "invalid_grant")


def test_wrong_client_secret_is_401_invalid_client(oauth_emulator):
    response = token_request(
        oauth_emulator, client_secret="nope", grant_type="refresh_token", refresh_token="x"
    )
    assert error_of(response) == (401, "invalid_client")


def test_client_credentials_in_basic_auth_are_not_accepted(oauth_emulator):
    response = requests.post(
        oauth_emulator.url + "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        auth=("emulator-client", "emulator-secret"),
        timeout=5,
    )
    assert error_of(response) == (401, "invalid_client")


def test_json_token_request_is_400_invalid_request(oauth_emulator):
    response = requests.post(
        oauth_emulator.url + "/oauth2/token",
        json={**CLIENT, "grant_type": "refresh_token", "refresh_token": "x"},
        timeout=5,
    )
    assert error_of(response) == (400, "invalid_request")


def test_unknown_grant_type_is_400(oauth_emulator):
    response = token_request(oauth_emulator, grant_type="password")
    assert error_of(response) == (400, "unsupported_grant_type")


def test_oauth_errors_carry_a_description(oauth_emulator):
    assert exchange(oauth_emulator, "bogus").json()["error_description"]


def test_refresh_returns_a_new_pair(oauth_emulator):
    tokens = login(oauth_emulator)
    renewed = refresh(oauth_emulator, tokens["refresh_token"]).json()
    assert renewed["refresh_token"] != tokens["refresh_token"]
    assert crm_status(oauth_emulator, renewed["access_token"]) == 200


def test_used_refresh_token_dies_at_once(oauth_emulator):
    tokens = login(oauth_emulator)
    refresh(oauth_emulator, tokens["refresh_token"])
    assert error_of(refresh(oauth_emulator, tokens["refresh_token"])) == (400, "invalid_grant")


def test_rotated_refresh_token_works(oauth_emulator):
    first = login(oauth_emulator)
    second = refresh(oauth_emulator, first["refresh_token"]).json()
    assert refresh(oauth_emulator, second["refresh_token"]).status_code == 200


def test_access_token_expires_after_its_ttl(oauth_emulator, clock):
    tokens = login(oauth_emulator)
    clock.advance(ACCESS_TTL)
    assert crm_status(oauth_emulator, tokens["access_token"]) == 401


def test_refresh_after_access_expiry_gives_a_working_token(oauth_emulator, clock):
    tokens = login(oauth_emulator)
    clock.advance(ACCESS_TTL + 1)
    renewed = refresh(oauth_emulator, tokens["refresh_token"]).json()
    assert crm_status(oauth_emulator, renewed["access_token"]) == 200


def test_unused_refresh_token_expires_after_its_ttl(oauth_emulator, clock):
    tokens = login(oauth_emulator)
    clock.advance(REFRESH_TTL)
    assert error_of(refresh(oauth_emulator, tokens["refresh_token"])) == (400, "invalid_grant")


def test_revoke_endpoint_kills_one_refresh_token(oauth_emulator):
    tokens, other = login(oauth_emulator), login(oauth_emulator)
    response = requests.post(
        oauth_emulator.url + "/_emulator/oauth/revoke",
        json={"refresh_token": tokens["refresh_token"]},
        timeout=5,
    )
    assert response.json() == {"revoked": 1}
    assert error_of(refresh(oauth_emulator, tokens["refresh_token"])) == (400, "invalid_grant")
    assert refresh(oauth_emulator, other["refresh_token"]).status_code == 200


def test_revoke_all_kills_every_refresh_token(oauth_emulator):
    tokens = [login(oauth_emulator) for _ in range(2)]
    url = oauth_emulator.url + "/_emulator/oauth/revoke"
    assert requests.post(url, json={"all": True}, timeout=5).json() == {"revoked": 2}
    assert all(refresh(oauth_emulator, t["refresh_token"]).status_code == 400 for t in tokens)


def test_expire_endpoint_makes_the_access_token_401_at_once(oauth_emulator):
    tokens = login(oauth_emulator)
    url = oauth_emulator.url + "/_emulator/oauth/expire"
    response = requests.post(url, json={"access_token": tokens["access_token"]}, timeout=5)
    assert response.json() == {"expired": 1}
    assert crm_status(oauth_emulator, tokens["access_token"]) == 401
    assert refresh(oauth_emulator, tokens["refresh_token"]).status_code == 200


def test_expire_all_leaves_the_fixed_token_working(oauth_emulator):
    login(oauth_emulator)
    requests.post(oauth_emulator.url + "/_emulator/oauth/expire", json={"all": True}, timeout=5)
    assert crm_status(oauth_emulator, "emulator-token") == 200


@pytest.mark.parametrize("path", ["oauth/revoke", "oauth/expire"])
def test_revoke_and_expire_need_a_token_or_all(oauth_emulator, path):
    response = requests.post(f"{oauth_emulator.url}/_emulator/{path}", json={}, timeout=5)
    assert response.status_code == 400


def test_reset_revokes_issued_tokens_but_not_the_fixed_token(oauth_emulator):
    tokens = login(oauth_emulator)
    requests.post(oauth_emulator.url + "/_emulator/reset", timeout=5)
    assert crm_status(oauth_emulator, tokens["access_token"]) == 401
    assert refresh(oauth_emulator, tokens["refresh_token"]).status_code == 400
    assert crm_status(oauth_emulator, "emulator-token") == 200


def test_oauth_requests_are_in_the_request_log(oauth_emulator):
    login(oauth_emulator)
    paths = [(r["method"], r["path"], r["status"]) for r in oauth_emulator.requests()]
    assert paths == [
        ("GET", "/oauth2/authorize", 200),
        ("POST", "/oauth2/authorize", 302),
        ("POST", "/oauth2/token", 200),
    ]
