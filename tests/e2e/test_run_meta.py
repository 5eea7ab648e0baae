"""The limiter's last minute and the measured pace live in the state: a sync from a fresh
``target/`` (a CI job) right after another starts from the account's usage, and a plan from a
fresh ``target/`` times itself with the latency the last sync measured.

The emulator counts 20 requests a minute. The first sync runs its client faster than that
(600 a minute: it stands for the account's recent usage, and fills most of the window in
seconds); the second, at the account's real limit, knows of that usage only through the state.
That a limiter given that usage waits for it to leave the window (and meets no 429) is proven
without waiting a minute here: ``tests/unit/test_limiter.py`` (restore) and
``tests/warehouse/test_run_meta.py`` (the next session restores the last minute and waits)."""

from __future__ import annotations

import json
import shutil

from dbt_rdcrm.emulator import Emulator
from dbt_rdcrm.sync.run_meta import FROM_STATE

LIMIT = 20


def fresh_target(project, name: str) -> str:
    """A target directory with nothing but the manifest, as a CI job's `dbt parse` leaves."""
    target = project.path / name
    target.mkdir()
    shutil.copy(project.manifest_file, target / "manifest.json")
    return str(target)


def test_a_sync_from_a_fresh_target_starts_from_the_accounts_usage_in_the_state(sample):
    with Emulator(rate_limit=LIMIT) as emulator:
        sample.env.update({"RDCRM_BASE_URL": emulator.base_url})
        first = sample.sync("--rate-limit", "600")
        assert first.exit_code == 0, first.output
        used = len(emulator.requests())
        assert LIMIT - 5 < used < LIMIT  # most of the window: the next sync has a few left

        sample.sql("update main.crm_contacts set full_name = full_name || ' Jr'")
        sample.sql("update main.crm_organizations set company_name = company_name || ' SA'")
        target = fresh_target(sample, "ci-target")
        room = LIMIT - used  # what the window has room for: sent without waiting
        second = sample.sync(
            "--rate-limit", str(LIMIT), "--target-path", target, "--max-requests", str(room)
        )
        assert second.exit_code == 0, second.output
        limiter = json.loads((sample.path / "ci-target" / "rdcrm_run_results.json").read_text())[
            "limiter"
        ]
        assert limiter["remembered"] == used  # the first sync's minute, read from the state
        log = emulator.requests()[used:]
        assert len(log) == room and [r for r in log if r["status"] == 429] == []
        assert limiter["throttled"] == 0

        target = fresh_target(sample, "plan-target")
        plan = sample.cli("plan", "--full-refresh", "--target-path", target, "--output", "json")
        assert plan.exit_code == 0, plan.output
        eta = json.loads(plan.stdout)["eta"]
        assert eta["latency_source"] == FROM_STATE
        assert eta["latency_s"] == limiter["latency_s"]
        assert FROM_STATE in plan.stderr  # the human output's ETA line says so too
