"""`dbt-rdcrm auth login | status | logout` as a user runs them: output, exit codes, no secrets."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from dbt_rdcrm.auth import oauth
from dbt_rdcrm.auth.cli import auth_group
from dbt_rdcrm.auth.store import StoredLogin
from dbt_rdcrm.auth.urls import token_url_for
from dbt_rdcrm.redaction import Secret

RDCRM_VARS = (
    "RDCRM_ACCESS_TOKEN",
    "RDCRM_BASE_URL",
    "RDCRM_CLIENT_ID",
    "RDCRM_CLIENT_SECRET",
    "RDCRM_REFRESH_TOKEN",
    "RDCRM_STATE_KEY",
    "RDCRM_TOKEN_FILE",
    "XDG_CONFIG_HOME",
)
AUTH_CLI = "from dbt_rdcrm.auth.cli import auth_group; auth_group(prog_name='dbt-rdcrm auth')"


@pytest.fixture
def invoke(env):
    """Run an auth command in-process with only ``env`` (plus extra) as RDCRM configuration."""

    def run(*args: str, **extra: str):
        full = {**dict.fromkeys(RDCRM_VARS), **env, **extra}
        return CliRunner().invoke(auth_group, list(args), env=full)

    return run


@pytest.fixture
def logged_in(live_emulator, store, mint_tokens) -> StoredLogin:
    login = StoredLogin(
        tokens=mint_tokens(live_emulator, time.time()),
        token_url=token_url_for(live_emulator.base_url),
        client_id="emulator-client",
        client_secret=Secret("emulator-secret"),
        logged_in_at=time.time(),
    )
    store.put(live_emulator.base_url, login)
    return login


def secrets_of(login: StoredLogin) -> list[str]:
    return [
        login.tokens.access_token.reveal(),
        login.tokens.refresh_token.reveal(),
        "emulator-secret",
    ]


def login_in_a_terminal(live_emulator, env, browser, cwd, *flags: str) -> tuple[int, str, str]:
    """Run `auth login --no-browser` in its own process and click through the printed URL.

    The client secret comes on standard input; returns (exit code, stdout, stderr).
    """
    argv = [sys.executable, "-c", AUTH_CLI, "login", "--base-url", live_emulator.base_url]
    argv += ["--no-browser", "--redirect-port", "0", "--client-secret-stdin", *flags]
    process_env = {**env, "PATH": os.environ.get("PATH", ""), "PYTHONUNBUFFERED": "1"}
    process_env["RDCRM_CLIENT_ID"] = "emulator-client"
    process = subprocess.Popen(
        argv,
        env=process_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )
    process.stdin.write("emulator-secret\n")
    process.stdin.close()
    messages = process.stderr if "--ci" in flags else process.stdout
    shown = []
    while not any("/oauth2/authorize?" in line for line in shown):
        line = messages.readline()
        assert line, (process.stdout.read(), process.stderr.read())
        shown.append(line)
    landing = browser.approve(shown[-1].strip())
    assert "You can close this tab" in landing.text
    process.wait(timeout=30)
    stdout, stderr = process.stdout.read(), process.stderr.read()
    if messages is process.stdout:
        return process.returncode, "".join(shown) + stdout, stderr
    return process.returncode, stdout, "".join(shown) + stderr


def test_login_through_the_browser_end_to_end(live_emulator, env, store, browser, tmp_path):
    code, stdout, stderr = login_in_a_terminal(live_emulator, env, browser, tmp_path)
    assert code == 0, stderr
    output = stdout + stderr
    assert f"Logged in to {live_emulator.base_url}" in output
    assert "credentials accepted" in output
    login = store.get(live_emulator.base_url)
    for secret in secrets_of(login):
        assert secret not in output


def test_login_for_ci_prints_only_the_refresh_token_and_stores_nothing(
    live_emulator, env, store, browser, tmp_path, session, client
):
    code, stdout, stderr = login_in_a_terminal(live_emulator, env, browser, tmp_path, "--ci")
    assert code == 0, stderr
    assert "RDCRM_REFRESH_TOKEN" in stderr
    token = stdout.strip()
    assert len(stdout.splitlines()) == 1 and token
    assert not store.path.exists()
    refreshed = oauth.refresh(
        session, token_url_for(live_emulator.base_url), client, Secret(token), time.time()
    )
    assert refreshed.refresh_token != Secret(token)


def test_status_shows_source_lifetimes_and_the_crm_check_but_no_token(
    invoke, live_emulator, logged_in, store
):
    result = invoke("status", "--base-url", live_emulator.base_url)
    assert result.exit_code == 0, result.output
    assert f"RD Station CRM credentials for {live_emulator.base_url}" in result.output
    assert f"login stored in {store.path}" in result.output
    assert "access token:   valid until" in result.output
    assert "refresh token:  issued just now; expires if unused by" in result.output
    assert "CRM check:      credentials accepted" in result.output
    for secret in secrets_of(logged_in):
        assert secret not in result.output


def test_status_renews_an_expired_access_token_and_keeps_the_rotation(
    invoke, live_emulator, logged_in, store, control, token_calls
):
    control("expire", {"all": True})
    result = invoke("status", "--base-url", live_emulator.base_url)
    assert result.exit_code == 0, result.output
    assert "credentials accepted" in result.output
    assert token_calls() == 2
    assert store.get(live_emulator.base_url).tokens.refresh_token != logged_in.tokens.refresh_token


def test_a_revoked_login_exits_2_with_the_message(invoke, live_emulator, logged_in, control):
    control("revoke", {"all": True})
    control("expire", {"all": True})
    result = invoke("status", "--base-url", live_emulator.base_url)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: RD Station CRM login for {live_emulator.base_url} is no longer valid (refresh "
        "token revoked or expired). Run `dbt-rdcrm auth login` again (or update "
        "RDCRM_REFRESH_TOKEN in CI)."
    )
    for secret in secrets_of(logged_in):
        assert secret not in result.output


def test_status_without_credentials_exits_2(invoke, live_emulator):
    result = invoke("status", "--base-url", live_emulator.base_url)
    assert result.exit_code == 2
    assert "not logged in to" in result.stderr
    assert "dbt-rdcrm auth login" in result.stderr


def test_status_with_an_environment_access_token(invoke, live_emulator):
    result = invoke(
        "status", "--base-url", live_emulator.base_url, RDCRM_ACCESS_TOKEN="emulator-token"
    )
    assert result.exit_code == 0, result.output
    assert "RDCRM_ACCESS_TOKEN (environment)" in result.output
    assert "credentials accepted" in result.output
    assert "emulator-token" not in result.output


def test_status_in_ci_does_not_spend_a_refresh_token_it_cannot_keep(
    invoke, live_emulator, mint_tokens, token_calls
):
    seed = mint_tokens(live_emulator, time.time())
    result = invoke(
        "status",
        "--base-url",
        live_emulator.base_url,
        RDCRM_CLIENT_ID="emulator-client",
        RDCRM_CLIENT_SECRET="emulator-secret",
        RDCRM_REFRESH_TOKEN=seed.refresh_token.reveal(),
    )
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output
    assert "kept in memory only" in result.output
    assert token_calls() == 1
    assert seed.refresh_token.reveal() not in result.output


def test_status_with_a_plain_http_remote_base_url_is_refused(invoke):
    result = invoke("status", "--base-url", "http://api.rd.services/crm/v2")
    assert result.exit_code == 2
    assert "https" in result.stderr


def test_logout_removes_one_login(invoke, live_emulator, logged_in, store):
    other = "https://api.rd.services/crm/v2"
    store.put(other, logged_in)
    result = invoke("logout", "--base-url", live_emulator.base_url)
    assert result.exit_code == 0
    assert f"Logged out of {live_emulator.base_url}" in result.output
    assert store.get(live_emulator.base_url) is None
    assert store.get(other) is not None
    again = invoke("logout", "--base-url", live_emulator.base_url)
    assert "No stored login" in again.output


def test_logout_all_removes_the_store(invoke, logged_in, store):
    result = invoke("logout", "--all")
    assert result.exit_code == 0
    assert not store.path.exists()
