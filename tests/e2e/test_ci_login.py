"""CI logins are never lost silently: each way of losing one is said plainly, with its fix."""

from __future__ import annotations

from support import CI_CLIENT_ID as CLIENT_ID
from support import CI_CLIENT_SECRET as CLIENT_SECRET
from support import emulator_login as first_login

STATE_KEY = "ci-state-key-0123456789abcdefghijklmnopqrstuvwxyz"


def ci_env(emulator, tmp_path, **extra: str) -> dict[str, str]:
    initial = first_login(emulator)
    return {
        "RDCRM_ACCESS_TOKEN": "",
        "RDCRM_CLIENT_ID": CLIENT_ID,
        "RDCRM_CLIENT_SECRET": CLIENT_SECRET,
        "RDCRM_REFRESH_TOKEN": initial["refresh_token"],
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "home" / ".config"),
        **extra,
    }


def test_a_first_ci_run_without_persistence_warns_that_the_login_will_be_lost(
    sample, emulator, tmp_path
):
    run = sample.sync("-s", "crm_organizations", env=ci_env(emulator, tmp_path))
    assert run.exit_code == 0, run.output
    assert "warning: the rotated refresh token is kept in memory only" in run.stdout
    assert "RDCRM_STATE_KEY" in run.stdout and "RDCRM_TOKEN_FILE" in run.stdout
    assert any("kept in memory only" in notice for notice in run.results["notices"])


def test_a_changed_state_key_says_the_stored_credentials_do_not_decrypt(sample, emulator, tmp_path):
    env = ci_env(emulator, tmp_path, RDCRM_STATE_KEY=STATE_KEY)
    first = sample.sync("-s", "crm_organizations", env=env)
    assert first.exit_code == 0, first.output
    emulator.expire_access_tokens()
    other_key = "another-state-key-0123456789abcdefghijklmnopq"
    run = sample.sync(
        "-s", "crm_organizations", "--full-refresh", env={**env, "RDCRM_STATE_KEY": other_key}
    )
    assert run.exit_code == 2, run.output
    assert "do not decrypt with this key (RDCRM_STATE_KEY)" in run.stderr
    assert "no longer valid" not in run.output
    assert other_key not in run.output and STATE_KEY not in run.output


def test_a_token_file_of_binary_garbage_is_named(sample, emulator, tmp_path):
    garbage = tmp_path / "tokens.json"
    garbage.write_bytes(b"\xff\xfe\x00\x81binary\x9c")
    env = ci_env(emulator, tmp_path, RDCRM_TOKEN_FILE=str(garbage))
    run = sample.sync("-s", "crm_organizations", env=env)
    assert run.exit_code == 2, run.output
    assert f"the token store {garbage} is unreadable (not text: binary data)" in run.stderr
    assert "internal error" not in run.output and "Traceback" not in run.output


def test_a_short_state_key_is_reported_in_plain_words(sample, emulator, tmp_path):
    env = ci_env(emulator, tmp_path, RDCRM_STATE_KEY="short")
    run = sample.sync("-s", "crm_organizations", env=env)
    assert run.exit_code == 2, run.output
    assert "RDCRM_STATE_KEY is too short (5 characters, at least 32)" in run.stderr
    assert "***" not in run.stderr
