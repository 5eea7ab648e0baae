"""Every run that started leaves its results; a run that stops after sending says so (exit 3)."""

from __future__ import annotations

import json

GOOD_ORGS = ("-s", "crm_organizations")


def test_a_run_stopped_after_writes_reached_the_crm_exits_3_with_its_results(sample, emulator):
    # The first create lands, then the CRM refuses the credentials: the run cannot go on.
    emulator.set_faults(
        [
            {
                "method": "POST",
                "path": "/organizations",
                "action": "status",
                "status": 401,
                "after": 1,
            }
        ]
    )
    run = sample.sync(*GOOD_ORGS)
    assert run.exit_code == 3, run.output
    assert "the run stopped after 1 write request reached the CRM" in run.stderr
    assert run.results is not None and run.results["success"] is False
    assert run.results["models"][0]["counts"]["created"] == 1


def test_nothing_sent_is_still_exit_2(sample, emulator):
    emulator.set_faults([{"method": "POST", "action": "status", "status": 401}])
    run = sample.sync(*GOOD_ORGS)
    assert run.exit_code == 2, run.output
    assert [r for r in emulator.requests() if r["status"] == 201] == []


def test_a_run_that_cannot_start_replaces_the_previous_results(sample, emulator):
    assert sample.sync(*GOOD_ORGS).exit_code == 0
    sample.edit_manifest("crm_organizations", {"mode": "organisations"})
    run = sample.sync(*GOOD_ORGS)
    assert run.exit_code == 2
    document = json.loads(sample.results_file.read_text())
    assert document["success"] is False and document["models"] == []
    assert document["error"]["type"] == "ConfigError"
    assert "models.crm_organizations.config.meta.rdcrm.mode" in document["error"]["message"]


def test_the_summary_says_how_long_the_run_waited_on_the_crm(sample, emulator):
    emulator.set_faults([{"action": "latency", "seconds": 0.1}])
    run = sample.sync(*GOOD_ORGS)
    assert run.exit_code == 0, run.output
    line = next(n for n in run.results["notices"] if n.startswith("waited "))
    assert "s on the CRM: " in line and "for answers" in line and "at the rate limit" in line
    assert line in run.stdout


def test_timeouts_and_attempts_are_flags(sample, emulator):
    emulator.set_faults([{"method": "GET", "action": "latency", "seconds": 2}])
    run = sample.sync(*GOOD_ORGS, "--read-timeout", "0.2", "--max-attempts", "2")
    assert run.exit_code == 1, run.output
    # the first GET is the account's custom fields: its timeout stops the model before writes
    assert "timed out on GET /custom_fields" in run.stdout
    assert "after 2 attempts" in run.stdout
