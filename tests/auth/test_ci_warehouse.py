"""CI on ephemeral runners: the rotated refresh token kept encrypted in the warehouse."""

from __future__ import annotations

import json
import sys
import time

import duckdb
import pytest

from dbt_rdcrm.auth.ci import SeededSlot
from dbt_rdcrm.auth.oauth import TokenSet, fingerprint
from dbt_rdcrm.auth.warehouse_slot import WarehouseSlot, cipher_from_key
from dbt_rdcrm.redaction import Secret

STATE_KEY = "QmlnIHJhbmRvbSBzdGF0ZSBrZXkgZm9yIHRoZSB0ZXN0cyE="
BASE = "http://127.0.0.1:9/crm/v2"

# One CI job: connect to the warehouse, resolve credentials, make one CRM call (refreshing once
# after a 401, as the CRM client does). Exit 2 with one redacted line on an auth error.
CI_JOB = """
import os, sys
from pathlib import Path
import requests
from dbt_rdcrm.auth import resolve_token_provider
from dbt_rdcrm.errors import RdcrmError
from dbt_rdcrm.redaction import redact
from dbt_rdcrm.dbt.warehouse import Warehouse

project_dir, profiles_dir, base_url = sys.argv[1:4]

def users(session, token):
    headers = {"Authorization": "Bearer " + token.reveal()}
    return session.get(base_url + "/users", params={"page[size]": "1"}, headers=headers)

try:
    with Warehouse.connect(Path(project_dir), Path(profiles_dir)) as wh, requests.Session() as s:
        provider = resolve_token_provider(
            base_url, os.environ, s, warehouse=wh, state_schema="rdcrm_state"
        )
        print(provider.describe())
        token = provider.access_token()
        response = users(s, token)
        if response.status_code == 401:
            response = users(s, provider.refresh_after_unauthorized(token))
        print("CRM answered", response.status_code)
        sys.exit(0 if response.status_code == 200 else 1)
except RdcrmError as exc:
    print("Error:", redact(str(exc)), file=sys.stderr)
    sys.exit(exc.exit_code)
"""


def read_credentials_table(database_file) -> list[tuple]:
    with duckdb.connect(str(database_file), read_only=True) as db:
        return db.execute("select * from rdcrm_state.rdcrm_credentials").fetchall()


def test_three_ci_runs_each_get_a_working_token_across_rotations(
    live_emulator, duckdb_project, ci_runner, mint_tokens, token_calls, control
):
    seed = mint_tokens(live_emulator, time.time())
    secrets = {
        "RDCRM_CLIENT_ID": "emulator-client",
        "RDCRM_CLIENT_SECRET": "emulator-secret",
        "RDCRM_REFRESH_TOKEN": seed.refresh_token.reveal(),
        "RDCRM_STATE_KEY": STATE_KEY,
    }
    argv = [
        sys.executable,
        "-c",
        CI_JOB,
        str(duckdb_project.project_dir),
        str(duckdb_project.profiles_dir),
        live_emulator.base_url,
    ]
    runs = []
    for _ in range(3):
        run = ci_runner(argv, secrets)
        assert run.returncode == 0, run.stderr[-2000:]
        assert "CRM answered 200" in run.stdout
        runs.append(run)
        control("expire", {"all": True})  # the next run's stored access token is refused
    assert "refresh token: RDCRM_REFRESH_TOKEN" in runs[0].stdout
    for later in runs[1:]:
        assert "refresh token: a rotation stored in warehouse table" in later.stdout
    assert token_calls() == 1 + 3  # the hand-made login, then one rotation per run

    rows = read_credentials_table(duckdb_project.database_file)
    assert len(rows) == 1
    scope, lineage, ciphertext, _updated_at = rows[0]
    assert (scope, lineage) == (live_emulator.base_url, fingerprint(seed.refresh_token))
    latest = json.loads(cipher_from_key(Secret(STATE_KEY)).decrypt(ciphertext.encode()))
    secret_strings = [
        seed.refresh_token.reveal(),
        seed.access_token.reveal(),
        latest["tokens"]["access_token"],
        latest["tokens"]["refresh_token"],
        "emulator-secret",
        STATE_KEY,
    ]
    table_text = repr(rows)
    outputs = "".join(run.stdout + run.stderr for run in runs)
    for secret in secret_strings:
        assert secret not in outputs
        assert secret not in table_text.replace(ciphertext, "")
        assert secret not in ciphertext


@pytest.fixture
def warehouse(duckdb_project):
    from dbt_rdcrm.dbt.warehouse import Warehouse

    with Warehouse.connect(duckdb_project.project_dir, duckdb_project.profiles_dir) as wh:
        yield wh


def tokens(n: int, lineage: str | None = None) -> TokenSet:
    return TokenSet(Secret(f"access-{n}-abc"), Secret(f"refresh-{n}-abc"), 1000.0, 7200.0, lineage)


def slot_for(warehouse, key: str = STATE_KEY, base_url: str = BASE) -> WarehouseSlot:
    return WarehouseSlot(
        warehouse,
        database=None,
        schema="rdcrm_state",
        base_url=base_url,
        cipher=cipher_from_key(Secret(key)),
    )


def test_the_warehouse_slot_round_trips_one_row_per_base_url(warehouse):
    slot = slot_for(warehouse)
    assert slot.load() is None
    slot.save(tokens(1, "lineage-1"))
    slot.save(tokens(2, "lineage-1"))
    slot_for(warehouse, base_url="http://127.0.0.1:10/crm/v2").save(tokens(3))
    assert slot.load() == tokens(2, "lineage-1")
    rows = warehouse.query(f"select crm_scope, lineage from {slot.table}")
    assert sorted(rows, key=str) == [("http://127.0.0.1:10/crm/v2", None), (BASE, "lineage-1")]


def test_a_changed_state_key_falls_back_to_the_environment_token_with_a_warning(warehouse):
    seed = Secret("refresh-seed-abc")
    slot_for(warehouse).save(tokens(1, fingerprint(seed)))
    seeded = SeededSlot(seed, slot_for(warehouse, key="another key, also long enough to use!"))
    assert seeded.load().refresh_token == seed
    assert seeded.load().refresh_token == seed
    assert len(seeded.warnings) == 1
    assert "do not decrypt with RDCRM_STATE_KEY" in seeded.warnings[0]


def test_a_row_copied_to_another_base_url_does_not_decrypt(warehouse):
    slot = slot_for(warehouse)
    slot.save(tokens(1))
    other = "http://127.0.0.1:11/crm/v2"
    warehouse.execute(f"update {slot.table} set crm_scope = ?", [other])
    warehouse.commit()
    seeded = SeededSlot(Secret("refresh-seed-abc"), slot_for(warehouse, base_url=other))
    assert seeded.load().refresh_token == Secret("refresh-seed-abc")
    assert seeded.warnings
