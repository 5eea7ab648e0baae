"""Two processes refreshing the same login at once: both succeed, one refresh is spent."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from dbt_rdcrm.auth.store import StoredLogin
from dbt_rdcrm.auth.urls import token_url_for
from dbt_rdcrm.redaction import Secret

USE_LOGIN = """
import hashlib, os, sys
import requests
from dbt_rdcrm.auth import resolve_token_provider

base_url = sys.argv[1]
with requests.Session() as session:
    provider = resolve_token_provider(base_url, os.environ, session)
    print("ready", flush=True)
    token = provider.access_token()
    response = session.get(
        base_url + "/users", headers={"Authorization": "Bearer " + token.reveal()}
    )
    print("token", hashlib.sha256(token.reveal().encode()).hexdigest()[:16])
    print("status", response.status_code)
"""


def test_two_processes_refreshing_at_once_spend_one_refresh_token(
    live_emulator, env, store, mint_tokens, token_calls, tmp_path
):
    # The access token has 60 s left: both processes decide to refresh.
    tokens = mint_tokens(live_emulator, time.time() - (7200 - 60))
    store.put(
        live_emulator.base_url,
        StoredLogin(
            tokens=tokens,
            token_url=token_url_for(live_emulator.base_url),
            client_id="emulator-client",
            client_secret=Secret("emulator-secret"),
        ),
    )
    process_env = {**env, "PATH": os.environ.get("PATH", ""), "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-c", USE_LOGIN, live_emulator.base_url]
    with store.lock():  # hold both at the start line
        processes = [
            subprocess.Popen(
                argv,
                env=process_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=tmp_path,
            )
            for _ in range(2)
        ]
        for process in processes:
            assert process.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # both are now waiting for the lock to refresh
    outputs = [process.communicate(timeout=30) for process in processes]
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
        assert "status 200" in stdout
    token_lines = {
        line for stdout, _ in outputs for line in stdout.splitlines() if line.startswith("token")
    }
    assert len(token_lines) == 1  # both use the one new access token
    assert token_calls() == 1 + 1  # the login, then exactly one refresh
    assert store.get(live_emulator.base_url).tokens.refresh_token != tokens.refresh_token
