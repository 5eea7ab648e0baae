"""The token store: private, atomic, keyed by base URL, locked across processes."""

from __future__ import annotations

import json
import os
import stat

import pytest

from dbt_rdcrm.auth.oauth import TokenSet
from dbt_rdcrm.auth.store import StoredLogin, TokenStore, default_config_dir
from dbt_rdcrm.errors import AuthError
from dbt_rdcrm.redaction import Secret

EMULATOR = "http://127.0.0.1:5001/crm/v2"
PRODUCTION = "https://api.rd.services/crm/v2"


def a_login(n: int = 1) -> StoredLogin:
    tokens = TokenSet(Secret(f"access-{n}-xyz"), Secret(f"refresh-{n}-xyz"), 100.0, 7200.0)
    return StoredLogin(
        tokens=tokens,
        token_url="https://api.rd.services/oauth2/token",
        client_id="app",
        client_secret=Secret("app-secret-xyz"),
        logged_in_at=100.0,
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"RDCRM_CONFIG_DIR": "/c/rd", "XDG_CONFIG_HOME": "/x", "HOME": "/h"}, "/c/rd"),
        ({"XDG_CONFIG_HOME": "/x", "HOME": "/h"}, "/x/dbt-rdcrm"),
        ({"HOME": "/h"}, "/h/.config/dbt-rdcrm"),
        ({"RDCRM_CONFIG_DIR": "", "XDG_CONFIG_HOME": "", "HOME": "/h"}, "/h/.config/dbt-rdcrm"),
    ],
    ids=["explicit", "xdg", "home", "empty-values-ignored"],
)
def test_config_dir_precedence(env, expected):
    assert str(default_config_dir(env)) == expected


def test_store_file_is_private_and_its_dir_too(tmp_path):
    store = TokenStore(tmp_path / "cfg" / "credentials.json")
    store.put(PRODUCTION, a_login())
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700


def test_round_trip_keeps_every_field(tmp_path):
    store = TokenStore(tmp_path / "credentials.json")
    store.put(PRODUCTION + "/", a_login())
    loaded = store.get(PRODUCTION)
    assert loaded == a_login()


def test_emulator_and_production_logins_coexist(tmp_path):
    store = TokenStore(tmp_path / "credentials.json")
    store.put(PRODUCTION, a_login(1))
    store.put(EMULATOR, a_login(2))
    assert store.get(PRODUCTION).tokens.refresh_token == Secret("refresh-1-xyz")
    assert store.get(EMULATOR).tokens.refresh_token == Secret("refresh-2-xyz")
    assert store.delete(EMULATOR)
    assert store.get(EMULATOR) is None
    assert store.get(PRODUCTION) is not None


def test_writes_replace_the_file_whole_and_leave_no_temp_files(tmp_path):
    store = TokenStore(tmp_path / "credentials.json")
    store.put(PRODUCTION, a_login(1))
    inode = store.path.stat().st_ino
    store.put(PRODUCTION, a_login(2))
    assert store.path.stat().st_ino != inode  # renamed into place, not rewritten
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "credentials.json",
        "credentials.json.lock",
    ]
    assert json.loads(store.path.read_text())["version"] == 1


def test_a_store_with_loose_permissions_is_made_private_on_read(tmp_path):
    store = TokenStore(tmp_path / "credentials.json")
    store.put(PRODUCTION, a_login())
    os.chmod(store.path, 0o644)
    store.get(PRODUCTION)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_a_corrupt_store_says_how_to_recover(tmp_path):
    path = tmp_path / "credentials.json"
    path.write_text("{not json")
    with pytest.raises(AuthError, match="logout --all"):
        TokenStore(path).get(PRODUCTION)
    assert TokenStore(path).delete_all()
    assert not path.exists()


def test_lock_is_reentrant_within_a_thread(tmp_path):
    store = TokenStore(tmp_path / "credentials.json")
    with store.lock(), store.lock():
        store.put(PRODUCTION, a_login())
    assert store.get(PRODUCTION) is not None


def test_missing_store_means_no_login(tmp_path):
    store = TokenStore(tmp_path / "nothing" / "credentials.json")
    assert store.get(PRODUCTION) is None
    assert store.logins() == {}
    assert not store.delete(PRODUCTION)
    assert not store.delete_all()
