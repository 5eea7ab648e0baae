"""`auth login`: through the real redirect, by paste, and what a wrong redirect gets."""

from __future__ import annotations

import queue
import socket
import stat
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from dbt_rdcrm.auth.login import (
    AuthorizationDenied,
    LoginRequest,
    LoopbackReceiver,
    code_from_paste,
    run_login,
)
from dbt_rdcrm.auth.oauth import ClientCredentials
from dbt_rdcrm.auth.urls import authorize_url_for
from dbt_rdcrm.errors import AuthError
from dbt_rdcrm.redaction import Secret

STATE = "state-123"


def start_login(emulator, client, store, session, clock, **overrides):
    """Run the loopback login in a thread; return (authorize URL queue, result queue)."""
    urls: queue.Queue[str] = queue.Queue()
    results: queue.Queue[object] = queue.Queue()
    settings = {
        "authorize_url": authorize_url_for(emulator.base_url),
        "redirect_uri": "http://127.0.0.1:0/callback",
        "timeout": 10,
        **overrides,
    }
    request = LoginRequest(base_url=emulator.base_url, client=client, **settings)

    def target() -> None:
        try:
            results.put(
                run_login(
                    request,
                    session=session,
                    store=store,
                    show=lambda text: None,
                    open_url=lambda url: urls.put(url) or True,
                    read_paste=lambda: pytest.fail("no paste in loopback mode"),
                    clock=clock,
                )
            )
        except AuthError as exc:
            results.put(exc)

    threading.Thread(target=target, daemon=True).start()
    return urls.get(timeout=10), results


def test_login_through_the_real_redirect_stores_working_tokens(
    emulator, client, store, session, clock, browser
):
    authorize_url, results = start_login(emulator, client, store, session, clock)
    landing = browser.approve(authorize_url)
    assert landing.status_code == 200
    assert "You can close this tab" in landing.text
    login = results.get(timeout=10)
    assert store.get(emulator.base_url) == login
    assert login.client_id == "emulator-client"
    assert login.tokens.issued_at == clock()
    users = session.get(
        f"{emulator.base_url}/users",
        headers={"Authorization": f"Bearer {login.tokens.access_token.reveal()}"},
    )
    assert users.status_code == 200
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_the_authorize_url_carries_a_random_state_and_the_loopback_redirect(
    emulator, client, store, session, clock, browser
):
    authorize_url, results = start_login(emulator, client, store, session, clock)
    query = parse_qs(urlsplit(authorize_url).query)
    assert query["response_type"] == ["code"]
    assert query["client_id"] == ["emulator-client"]
    assert len(query["state"][0]) >= 20
    redirect = urlsplit(query["redirect_uri"][0])
    assert (redirect.hostname, redirect.path) == ("127.0.0.1", "/callback")
    assert redirect.port not in (0, 80)  # port 0 became the real, ephemeral port
    browser.approve(authorize_url)
    results.get(timeout=10)


def test_a_redirect_with_the_wrong_state_is_refused_and_the_login_keeps_waiting(
    emulator, client, store, session, clock, browser
):
    authorize_url, results = start_login(emulator, client, store, session, clock)
    redirect_uri = parse_qs(urlsplit(authorize_url).query)["redirect_uri"][0]
    forged = requests.get(redirect_uri, params={"code": "stolen-code", "state": "forged"})
    assert forged.status_code == 400
    assert results.empty()
    browser.approve(authorize_url)
    login = results.get(timeout=10)
    assert store.get(emulator.base_url) == login


def test_a_denied_authorization_ends_the_login_with_the_reason(
    emulator, client, store, session, clock, browser
):
    authorize_url, results = start_login(emulator, client, store, session, clock)
    browser.submit(authorize_url, "deny")
    error = results.get(timeout=10)
    assert isinstance(error, AuthorizationDenied)
    assert "access_denied" in str(error)
    assert store.get(emulator.base_url) is None


def test_a_failed_code_exchange_is_shown_as_a_failure_in_the_browser(
    emulator, store, session, clock, browser
):
    wrong = ClientCredentials("emulator-client", Secret("not-the-secret"))
    authorize_url, results = start_login(emulator, wrong, store, session, clock)
    landing = browser.approve(authorize_url)
    assert landing.status_code == 500
    assert "Login failed" in landing.text
    error = results.get(timeout=10)
    assert "RDCRM_CLIENT_SECRET" in str(error)
    assert "not-the-secret" not in str(error)
    assert store.get(emulator.base_url) is None


def test_login_gives_up_after_the_timeout(emulator, client, store, session, clock):
    _, results = start_login(emulator, client, store, session, clock, timeout=0.3)
    error = results.get(timeout=10)
    assert isinstance(error, AuthError)
    assert "no login redirect arrived" in str(error)


def test_pasted_redirect_address_logs_in(login, store, emulator):
    stored = login()
    assert store.get(emulator.base_url) == stored


def test_a_registered_https_callback_logs_in_by_paste(
    emulator, client, store, session, clock, browser, url_in
):
    """An app that registered only an https callback: no local receiver can answer it, so
    the login asks for the address the browser ended on, even without --paste."""
    shown: list[str] = []
    callback = "https://app.example.com/rdcrm/callback"
    request = LoginRequest(
        base_url=emulator.base_url,
        client=client,
        authorize_url=authorize_url_for(emulator.base_url),
        redirect_uri=callback,
        open_browser=False,
    )
    pasted: list[str] = []

    def paste() -> str:
        pasted.append(browser.redirect_location(url_in(shown)))
        return pasted[-1]

    stored = run_login(
        request,
        session=session,
        store=store,
        show=shown.append,
        open_url=lambda url: pytest.fail("--no-browser opened a browser"),
        read_paste=paste,
        clock=clock,
    )
    assert pasted[0].startswith(callback + "?code=")
    assert store.get(emulator.base_url) == stored
    assert any(f"the browser goes to {callback}?code=" in line for line in shown)


def test_pasted_bare_code_logs_in(emulator, client, store, session, clock, browser, url_in):
    shown: list[str] = []

    def paste() -> str:
        location = browser.redirect_location(url_in(shown))
        return parse_qs(urlsplit(location).query)["code"][0]

    request = LoginRequest(
        base_url=emulator.base_url,
        client=client,
        authorize_url=authorize_url_for(emulator.base_url),
        redirect_uri="http://127.0.0.1:8976/callback",
        open_browser=False,
        paste=True,
    )
    stored = run_login(
        request,
        session=session,
        store=store,
        show=shown.append,
        open_url=lambda url: pytest.fail("--no-browser opened a browser"),
        read_paste=paste,
        clock=clock,
    )
    assert store.get(emulator.base_url) == stored


def test_a_code_spent_twice_is_refused_with_a_way_forward(
    emulator, client, store, session, clock, browser, url_in
):
    shown: list[str] = []
    pasted: list[str] = []

    def paste() -> str:
        if not pasted:
            location = browser.redirect_location(url_in(shown))
            pasted.append(parse_qs(urlsplit(location).query)["code"][0])
        return pasted[0]

    request = LoginRequest(
        base_url=emulator.base_url,
        client=client,
        authorize_url=authorize_url_for(emulator.base_url),
        redirect_uri="http://127.0.0.1:8976/callback",
        open_browser=False,
        paste=True,
    )
    kwargs = dict(session=session, store=store, open_url=lambda url: False, read_paste=paste)
    run_login(request, show=shown.append, clock=clock, **kwargs)
    with pytest.raises(AuthError, match="refused the authorization code") as caught:
        run_login(request, show=shown.append, clock=clock, **kwargs)
    assert pasted[0] not in str(caught.value)


@pytest.mark.parametrize(
    ("pasted", "expected"),
    [
        ("abc123", "abc123"),
        ("  abc123\n", "abc123"),
        (f"http://127.0.0.1:8976/callback?code=abc123&state={STATE}", "abc123"),
        (f"code=abc123&state={STATE}", "abc123"),
    ],
    ids=["bare-code", "bare-code-with-spaces", "full-address", "query-only"],
)
def test_paste_accepts_an_address_or_a_code(pasted, expected):
    assert code_from_paste(pasted, STATE) == Secret(expected)


@pytest.mark.parametrize(
    ("pasted", "message"),
    [
        ("", "nothing was pasted"),
        ("http://127.0.0.1:8976/callback?code=abc&state=other", "state mismatch"),
        ("http://127.0.0.1:8976/callback?code=abc", "state mismatch"),
        (f"http://127.0.0.1:8976/callback?state={STATE}", "no code= parameter"),
        (f"http://127.0.0.1:8976/callback?error=access_denied&state={STATE}", "access_denied"),
    ],
    ids=["empty", "other-state", "no-state", "no-code", "denied"],
)
def test_paste_refuses_what_is_not_this_login(pasted, message):
    with pytest.raises(AuthError, match=message):
        code_from_paste(pasted, STATE)


def test_a_busy_redirect_port_says_which_flags_help():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(AuthError, match="--redirect-port or --redirect-uri"):
            LoopbackReceiver(f"http://127.0.0.1:{port}/callback", STATE)


def test_the_receiver_answers_other_paths_with_404():
    with LoopbackReceiver("http://127.0.0.1:0/callback", STATE) as receiver:
        root = receiver.redirect_uri.replace("/callback", "/favicon.ico")
        assert requests.get(root).status_code == 404


def test_an_authorize_url_override_is_where_the_user_is_sent(
    emulator, client, store, session, clock, browser
):
    override = f"{emulator.url}/oauth/authorize"  # the path RD's own integrations use
    authorize_url, results = start_login(
        emulator, client, store, session, clock, authorize_url=override
    )
    assert authorize_url.startswith(override + "?")
    browser.approve(authorize_url)
    login = results.get(timeout=10)
    assert store.get(emulator.base_url) == login
