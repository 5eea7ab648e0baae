"""Three CI runs in a row: fresh processes and HOME, the same env secrets and warehouse.

RD Station rotates the refresh token on every refresh (the old one dies), so the secret stored
in CI is dead after the first run: each run must find the newest token in the warehouse.
Nothing secret may appear in output, artifacts or state tables.
"""

from __future__ import annotations

import json

import requests
from support import CI_CLIENT_ID, CI_CLIENT_SECRET, emulator_login

from dbt_rdcrm.auth.warehouse_slot import cipher_from_key
from dbt_rdcrm.redaction import Secret

CLIENT_ID, CLIENT_SECRET = CI_CLIENT_ID, CI_CLIENT_SECRET
STATE_KEY = "ci-state-key-0123456789abcdefghijklmnopqrstuvwxyz"


def stored_tokens(project) -> dict:
    (ciphertext,) = project.sql(f"select ciphertext from {project.state_schema}.rdcrm_credentials")[
        0
    ]
    return json.loads(cipher_from_key(Secret(STATE_KEY)).decrypt(ciphertext.encode()))


def test_three_ci_runs_sync_across_rotations_and_leak_nothing(sample, emulator, tmp_path):
    initial = emulator_login(emulator)
    env = {
        "RDCRM_ACCESS_TOKEN": "",
        "RDCRM_CLIENT_ID": CLIENT_ID,
        "RDCRM_CLIENT_SECRET": CLIENT_SECRET,
        "RDCRM_REFRESH_TOKEN": initial["refresh_token"],
        "RDCRM_STATE_KEY": STATE_KEY,
    }
    outputs, secrets = (
        [],
        {CLIENT_SECRET, STATE_KEY, initial["refresh_token"], initial["access_token"]},
    )
    for run_number in range(3):
        home = tmp_path / f"home{run_number}"
        home.mkdir()
        run_env = {**env, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
        sample.sql(
            f"update {sample.table('crm_contacts')} set full_name = 'Maria {run_number}' "
            "where customer_id = 'C001'"
        )
        emulator.expire_access_tokens()  # hours pass between CI runs
        run = sample.subprocess("sync", env=run_env)
        assert run.exit_code == 0, run.output
        outputs.append(run.output + sample.results_file.read_text())
        current = stored_tokens(sample)["tokens"]
        secrets |= {current["access_token"], current["refresh_token"]}
        assert not any(home.rglob("*")), "a CI run must not rely on files in HOME"

    refreshes = [r for r in emulator.requests() if r["path"] == "/oauth2/token"]
    assert len(refreshes) == 1 + 3  # the first login, then one refresh per run
    maria = [c["name"] for c in emulator.state()["contacts"] if c["name"].startswith("Maria")]
    assert maria == ["Maria 2"]

    dead = requests.post(
        f"{emulator.url}/oauth2/token",
        timeout=10,
        data={
            "grant_type": "refresh_token",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": initial["refresh_token"],
        },
    )
    assert dead.status_code in (400, 401)  # rotated away on the first run

    artifacts = [
        p.read_text(errors="replace")
        for p in (sample.path / "target").rglob("*")
        if p.is_file() and p.suffix in (".json", ".log", ".txt")
    ]
    logs = [p.read_text(errors="replace") for p in sample.path.rglob("*.log")]
    tables = [
        repr(sample.project_rows(t))
        for t in ("rdcrm_id_map", "rdcrm_sync_log", "rdcrm_credentials")
    ]
    for text in outputs + artifacts + logs + tables:
        for secret in secrets:
            assert secret not in text
