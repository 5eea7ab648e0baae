"""`plan` (= `sync --dry-run`): exact numbers, zero requests, no state; budgets that resume.

Real dbt on DuckDB and the emulator over HTTP; the emulator's request log is the proof.
"""

from __future__ import annotations

import json

import pytest

COMPARED = ("created", "updated", "unchanged", "waiting", "rejected", "failed", "skipped")


def crm_calls(emulator) -> list[tuple[str, str]]:
    return [
        (r["method"], r["path"]) for r in emulator.requests() if r["path"].startswith("/crm/v2/")
    ]


def writes(emulator) -> list[str]:
    return sorted(m for m, _ in crm_calls(emulator) if m in ("POST", "PUT"))


def state_tables(project) -> list[str]:
    return [
        name
        for (name,) in project.sql(
            "select table_name from information_schema.tables where table_schema = 'main_rdcrm'"
        )
    ]


def per_model(results: dict, requests_key: str) -> dict:
    return {
        m["model"]: ({k: m["counts"][k] for k in COMPARED}, m[requests_key])
        for m in results["models"]
    }


def assert_plan_matches_sync(project, emulator) -> tuple[dict, dict]:
    """Plan, then sync: same per-model counts, and the plan's request count is what was sent."""
    emulator.clear_requests()
    plan = project.cli("plan", "--output", "json")
    assert plan.exit_code == 0, plan.output
    assert emulator.requests() == []  # the plan sent nothing at all
    planned = json.loads(plan.stdout)
    sync = project.sync("--output", "json")
    done = json.loads(sync.stdout)
    assert per_model(planned, "planned_requests") == per_model(done, "requests")
    assert planned["totals"]["planned_requests"] == len(crm_calls(emulator))
    return planned, done


def test_plan_of_the_sample_is_what_the_sync_then_does(sample, emulator):
    planned, _ = assert_plan_matches_sync(sample, emulator)
    # 10 writes, the 2 match values looked up in one list, 3 custom-field checks (one per
    # entity), 3 looks for records of models whose state is empty (a lost state must not
    # create duplicates)
    assert planned["totals"]["planned_requests"] == 17
    assert (planned["totals"]["created"], planned["totals"]["updated"]) == (8, 2)


def test_plan_after_one_changed_row_is_one_update_and_one_request(sample, emulator):
    assert sample.sync().exit_code == 0
    sample.sql(
        "update main.crm_contacts set full_name = 'Maria S. Silva' where customer_id = 'C001'"
    )
    planned, _ = assert_plan_matches_sync(sample, emulator)
    assert planned["totals"]["planned_requests"] == 2  # the account's custom fields, one PUT
    assert planned["totals"]["unchanged"] == 9
    assert writes(emulator) == ["PUT"]


def test_plan_counts_rejected_and_waiting_rows_with_their_reasons(sample, emulator):
    sample.sql(
        "insert into main.crm_contacts values "
        "('C003', 'Ana Souza', 'not-an-email', '+55 11 90000-0001', '1', 'ABC')"
    )
    sample.sql(
        "insert into main.crm_linked_deals values "
        "('D003-L', 'Consorcio', 'Ana Souza', 'C003', 'ABC', 10.0)"
    )
    planned, done = assert_plan_matches_sync(sample, emulator)
    contacts = next(m for m in planned["models"] if m["model"] == "crm_contacts")
    assert contacts["reasons"] == [
        {"outcome": "rejected", "reason": "email is not a valid e-mail address", "rows": 1}
    ]
    linked = next(m for m in planned["models"] if m["model"] == "crm_linked_deals")
    assert linked["counts"]["waiting"] == 1
    assert linked["reasons"] == [
        {
            "outcome": "waiting",
            "rows": 1,
            "reason": "waiting for crm_contacts to sync the linked record (contact_id): "
            "parent key C003 failed in this run: email is not a valid e-mail address",
        }
    ]
    assert planned["totals"]["rejected"] == done["totals"]["rejected"] == 1


def test_plan_sends_nothing_writes_no_state_and_needs_no_credentials(sample, emulator):
    run = sample.cli("plan", env={"RDCRM_ACCESS_TOKEN": ""})
    assert run.exit_code == 0, run.output
    assert emulator.requests() == []
    assert state_tables(sample) == []
    assert run.results["dry_run"] is True and run.results["command"] == "plan"


def test_sync_dry_run_is_the_plan(sample, emulator):
    run = sample.sync("--dry-run", "--output", "json")
    assert emulator.requests() == []
    document = json.loads(run.stdout)
    assert document["command"] == "plan" and document["totals"]["planned_requests"] == 17


# the sample's first plan: 17 requests paced every 0.5 s at 120/minute (10 s at 6/minute), 4 in
# flight at once, the last answered 0.3 s (assumed latency) after it left
ETA_TOTAL = 8.3
ETA_MODELS = [1.8, 1.8, 1.8, 1.3, 0.8]
ETA_LINE = "17 requests: about 2m42s at 6 requests/minute, 4 at a time, 0.30s each (assumed)"
ETA_AT_SIX = 161.1


def test_plan_json_is_the_one_document_on_stdout_and_the_results_file(sample, emulator):
    run = sample.cli("plan", "--output", "json", "--rate-limit", "120")
    document = json.loads(run.stdout)  # nothing else on stdout
    assert "dbt-rdcrm plan" in run.stderr  # the human output moved to stderr
    assert document == run.results
    # 17 requests paced at 120 requests/minute, 4 at a time, each answered 0.3 s (assumed) after
    # it left
    assert document["totals"]["eta_s"] == ETA_TOTAL
    assert [m["eta_s"] for m in document["models"]] == ETA_MODELS
    assert not sample.results_file.exists()  # a plan leaves the last sync's results alone


def test_eta_follows_the_configured_rate_limit(sample, emulator):
    run = sample.cli("plan", "--rate-limit", "6")
    assert ETA_LINE in run.stdout
    assert run.results["totals"]["eta_s"] == ETA_AT_SIX  # a window edge: answer + 60.1 s


def test_show_masks_personal_data(sample, emulator):
    run = sample.cli(
        "plan", "--show", "1", "-s", "crm_organizations crm_contacts", "--output", "json"
    )
    samples = json.loads(run.stdout)["models"][1]["samples"]
    data = samples["create"][0]["data"]
    assert data["name"] == "M*** S***"
    assert data["emails"] == [{"email": "m***@example.com"}]
    assert data["phones"] == [{"phone": "+55 ** *****-**78"}]
    assert data["custom_fields"] == {"cpf": "***.***.***-00"}
    assert samples["update"] == []
    assert "maria" not in json.dumps(run.results).lower()  # nor in the results file
    assert "maria" not in run.stderr.lower()


def test_unmasked_shows_payloads_as_they_are(sample, emulator):
    run = sample.cli(
        "plan",
        "--show",
        "2",
        "--unmasked",
        "-s",
        "crm_organizations crm_contacts",
        "--output",
        "json",
    )
    document = json.loads(run.stdout)
    created = document["models"][1]["samples"]["create"]
    assert [s["key"] for s in created] == ["C001", "C002"]
    assert created[0]["data"]["emails"] == [{"email": "maria.silva@example.com"}]
    assert document["samples_masked"] is False
    assert emulator.requests() == []


def test_show_needs_a_plan(sample, emulator):
    run = sample.sync("--show", "1")
    assert run.exit_code == 2
    assert "--show and --unmasked need a plan" in run.stderr
    assert emulator.requests() == []


# --- budgets -------------------------------------------------------------------------------


def test_max_requests_stops_cleanly_and_the_next_run_finishes_without_resending(sample, emulator):
    first = sample.sync("--max-requests", "5", "--output", "json")
    assert first.exit_code == 0, first.output
    assert first.results["totals"]["requests"] == len(crm_calls(emulator)) <= 5
    assert first.results["totals"]["skipped"] > 0
    assert "request budget (--max-requests) spent" in first.stderr

    rest = sample.cli("plan", "--output", "json").results  # what is left, exactly
    emulator.clear_requests()
    second = sample.sync()
    assert second.exit_code == 0, second.output
    assert len(crm_calls(emulator)) == rest["totals"]["planned_requests"]
    assert second.results["totals"]["skipped"] == 0
    assert sample.sync().results["totals"]["unchanged"] == 10  # nothing left to do


def test_a_budgeted_run_and_its_sequel_send_each_row_exactly_once(sample, emulator):
    assert sample.sync("--max-requests", "5").exit_code == 0
    assert sample.sync().exit_code == 0
    calls = crm_calls(emulator)
    state = emulator.state()
    created = [r for kind in ("contacts", "deals") for r in state[kind]]
    created += [
        o for o in state["organizations"] if o["name"] in ("Empresa ABC Ltda", "Tech Corp SA")
    ]
    assert len(created) == 8
    names = [r["name"] for r in created]
    assert len(names) == len(set(names))  # every key ended as exactly one CRM record
    assert sum(1 for m, _ in calls if m == "POST") == len(created)
    assert writes(emulator) == sorted(["POST"] * 8 + ["PUT"] * 2)


@pytest.mark.parametrize("budget", [0, 3], ids=lambda n: f"max-requests-{n}")
def test_any_budget_then_a_plain_run_sends_the_same_ten_writes(sample, emulator, budget):
    sample.sync("--max-requests", str(budget))
    sample.sync()
    assert writes(emulator) == sorted(["POST"] * 8 + ["PUT"] * 2)


def test_a_budgeted_plan_predicts_the_budgeted_sync(sample, emulator):
    plan = sample.cli("plan", "--max-requests", "5")
    sync = sample.sync("--max-requests", "5")
    assert plan.exit_code == sync.exit_code == 0
    keys = ("created", "updated", "unchanged", "waiting", "skipped")
    assert {k: plan.results["totals"][k] for k in keys} == {
        k: sync.results["totals"][k] for k in keys
    }
    assert plan.results["totals"]["planned_requests"] == sync.results["totals"]["requests"] == 5
    assert len(emulator.requests()) == 5


def test_plan_keeps_the_last_syncs_results_and_times_itself_with_its_latency(sample, emulator):
    assert sample.sync().exit_code == 0
    synced = sample.results_file.read_text()
    run = sample.cli("plan", "--full-refresh", "--output", "json")
    assert sample.results_file.read_text() == synced
    assert json.loads(sample.plan_results_file.read_text()) == json.loads(run.stdout)
    assert run.results["eta"] == {
        "concurrency": 4,
        "latency_s": json.loads(synced)["limiter"]["latency_s"],
        "overhead_s": json.loads(synced)["limiter"]["overhead_s"] or 0.0,
        "latency_source": "measured by the last sync",
    }
