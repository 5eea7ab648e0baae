"""Incremental, key-matched syncs on DuckDB and PostgreSQL, proven with the emulator's request log."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import requests
from support import ACCOUNT_CHECK

STAGE = "6621a1b2c3d4e5f678900001"
ORG_A = "6621a1b2c3d4e5f678905678"
UNKNOWN_STAGE = "aaaaaaaaaaaaaaaaaaaaaaaa"


def calls(emulator, method=None, prefix="/crm/v2/"):
    return [
        (r["method"], r["path"])
        for r in emulator.requests()
        if r["path"].startswith(prefix)
        and (method is None or r["method"] == method)
        and not r["path"].startswith(ACCOUNT_CHECK)
    ]


def names(emulator, kind):
    return sorted(r["name"] for r in emulator.state()[kind])


def crm_post(emulator, resource, data):
    response = requests.post(
        f"{emulator.base_url}/{resource}",
        json={"data": data},
        headers={"Authorization": "Bearer emulator-token"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def test_rerun_without_changes_sends_zero_requests(project, emulator):
    assert project.sync().exit_code == 0
    emulator.clear_requests()
    run = project.sync()
    assert calls(emulator) == []
    assert run.results["totals"]["unchanged"] == 10


def test_one_changed_row_is_exactly_one_put(project, emulator):
    project.sync()
    project.sql(
        f"update {project.table('crm_organizations')} set company_website = "
        "'https://abc.example' where company_code = 'ABC'"
    )
    emulator.clear_requests()
    run = project.sync()
    abc = next(o for o in emulator.state()["organizations"] if o["name"] == "Empresa ABC Ltda")
    assert calls(emulator) == [("PUT", f"/crm/v2/organizations/{abc['id']}")]
    assert abc["url"] == "https://abc.example"
    assert run.counts("crm_organizations")["updated"] == 1


def test_one_new_row_is_exactly_one_post(project, emulator):
    project.sync()
    project.sql(
        f"insert into {project.table('crm_deals')} values "
        f"('D003', 'Credito PJ 003', '{ORG_A}', '{STAGE}', 10.0)"
    )
    emulator.clear_requests()
    project.sync()
    assert calls(emulator) == [("POST", "/crm/v2/deals")]


def test_state_lives_in_the_warehouse_and_maps_keys_to_crm_ids(project, emulator):
    project.sync()
    rows = project.sql(
        f"select model_name, row_key, object_type, crm_id from "
        f"{project.state_schema}.rdcrm_id_map where model_name = 'crm_contacts' "
        "order by row_key"
    )
    maria = next(c for c in emulator.state()["contacts"] if c["name"] == "Maria Silva")
    assert rows[0] == ("crm_contacts", "C001", "contact", maria["id"])
    log = project.sql(
        f"select operation, outcome from {project.state_schema}.rdcrm_sync_log "
        "where model_name = 'crm_contacts' and row_key = 'C001'"
    )
    assert log == [("create", "created")]


def test_refused_row_is_not_resent_until_it_changes(project, emulator):
    project.sync()
    project.sql(
        f"insert into {project.table('crm_deals')} values "
        f"('D999', 'Credito X', '{ORG_A}', '{UNKNOWN_STAGE}', 1.0)"
    )
    emulator.clear_requests()
    first = project.sync("-s", "crm_deals")
    assert first.exit_code == 1
    assert calls(emulator) == [("POST", "/crm/v2/deals")]
    assert first.model("crm_deals")["issues"][0]["http_status"] == 422

    emulator.clear_requests()
    second = project.sync("-s", "crm_deals")
    assert calls(emulator) == []
    assert second.counts("crm_deals")["failed"] == 1
    assert "refused earlier and unchanged" in second.model("crm_deals")["issues"][0]["reason"]

    project.sql(
        f"update {project.table('crm_deals')} set stage = '{STAGE}' where deal_code = 'D999'"
    )
    third = project.sync("-s", "crm_deals")
    assert third.exit_code == 0
    assert calls(emulator) == [("POST", "/crm/v2/deals")]


def test_retry_failed_resends_a_refused_row(project, emulator):
    project.sql(
        f"insert into {project.table('crm_deals')} values "
        f"('D999', 'Credito X', '{ORG_A}', '{UNKNOWN_STAGE}', 1.0)"
    )
    project.sync("-s", "crm_deals")
    emulator.clear_requests()
    project.sync("-s", "crm_deals", "--retry-failed")
    assert calls(emulator) == [("POST", "/crm/v2/deals")]


def test_rows_wait_for_their_parent_then_go_through(project, emulator):
    first = project.sync("-s", "crm_contacts")
    assert first.exit_code == 0
    assert first.counts("crm_contacts")["waiting"] == 2
    assert [m for m, _ in calls(emulator)] in ([], ["GET"])  # at most the lost-state look
    second = project.sync("-s", "crm_organizations crm_contacts")
    assert second.counts("crm_contacts")["created"] == 2
    orgs = {o["name"]: o["id"] for o in emulator.state()["organizations"]}
    contacts = {c["name"]: c["organization_id"] for c in emulator.state()["contacts"]}
    assert contacts == {
        "Maria Silva": orgs["Empresa ABC Ltda"],
        "Joao Santos": orgs["Tech Corp SA"],
    }


def test_deals_link_to_synced_contacts_and_organizations(project, emulator):
    project.sync()
    state = emulator.state()
    contact = {c["name"]: c["id"] for c in state["contacts"]}
    org = {o["name"]: o["id"] for o in state["organizations"]}
    deal = next(d for d in state["deals"] if d["name"] == "Credito pessoal - Joao Santos")
    assert deal["contact_ids"] == [contact["Joao Santos"]]
    assert deal["organization_id"] == org["Tech Corp SA"]


def test_match_updates_an_existing_record_instead_of_creating(project, emulator):
    existing = crm_post(emulator, "organizations", {"name": "EMPRESA ABC LTDA"})
    emulator.clear_requests()
    run = project.sync("-s", "crm_organizations")
    assert run.counts("crm_organizations")["updated"] == 1
    assert run.counts("crm_organizations")["created"] == 1
    assert ("PUT", f"/crm/v2/organizations/{existing}") in calls(emulator)
    assert len(calls(emulator, "POST")) == 1
    assert names(emulator, "organizations").count("Empresa ABC Ltda") == 1


def test_ambiguous_match_is_rejected_with_the_ids_found(sample, emulator):
    contacts = {
        "mode": "contacts",
        "key": "customer_id",
        "match": "email",
        "partial_success": True,
        "mapping": {"full_name": "name", "contact_email": "email"},
    }
    sample.edit_manifest("crm_contacts", contacts)
    one = crm_post(
        emulator, "contacts", {"name": "M1", "emails": [{"email": "maria.silva@example.com"}]}
    )
    two = crm_post(
        emulator, "contacts", {"name": "M2", "emails": [{"email": "MARIA.SILVA@example.com"}]}
    )
    run = sample.sync("-s", "crm_contacts")
    assert run.counts("crm_contacts")["rejected"] == 1
    assert run.counts("crm_contacts")["created"] == 1
    reason = run.model("crm_contacts")["issues"][0]["reason"]
    assert one in reason and two in reason and "ambiguous match on email" in reason


def test_connection_dropped_after_a_create_leaves_one_record_per_key(project, emulator):
    emulator.set_faults(
        [{"method": "POST", "path": "/contacts", "action": "drop_after_commit", "count": 1}]
    )
    run = project.sync()
    assert run.exit_code == 0, run.output
    assert names(emulator, "contacts") == ["Joao Santos", "Maria Silva"]
    assert run.counts("crm_contacts")["created"] == 2
    assert len(calls(emulator, "POST", "/crm/v2/contacts")) == 2  # the dropped one was not resent


def test_unresolved_create_is_looked_up_on_the_next_run(project, emulator):
    emulator.set_faults(
        [
            {"method": "POST", "path": "/contacts", "action": "drop_after_commit", "count": 1},
            # the first lookup (is the CRM already holding these rows?) goes through
            {"method": "GET", "path": "/contacts", "action": "status", "status": 503, "after": 1},
        ]
    )
    first = project.sync("-s", "crm_organizations crm_contacts", env={"RDCRM_MAX_ATTEMPTS": "1"})
    assert first.counts("crm_contacts")["failed"] == 1
    emulator.clear_faults()
    emulator.clear_requests()
    second = project.sync("-s", "crm_organizations crm_contacts")
    assert second.exit_code == 0
    assert names(emulator, "contacts") == ["Joao Santos", "Maria Silva"]
    assert calls(emulator, "POST") == []  # found by lookup, adopted, not created again
    assert second.counts("crm_contacts")["created"] == 1


def test_server_errors_on_create_are_resolved_then_retried(project, emulator):
    emulator.set_faults(
        [{"method": "POST", "path": "/deals", "action": "status", "status": 503, "count": 1}]
    )
    run = project.sync("-s", "crm_deals")
    assert run.exit_code == 0
    assert run.counts("crm_deals")["created"] == 2
    assert len(emulator.state()["deals"]) == 2


def test_transient_failures_are_retried_on_the_next_run(project, emulator):
    project.sync()
    project.sql(
        f"update {project.table('crm_contacts')} set full_name = 'Maria B. Silva' "
        "where customer_id = 'C001'"
    )
    emulator.set_faults([{"method": "PUT", "path": "*", "action": "status", "status": 503}])
    first = project.sync("-s", "crm_contacts", env={"RDCRM_MAX_ATTEMPTS": "2"})
    assert first.counts("crm_contacts")["failed"] == 1
    assert first.model("crm_contacts")["issues"][0]["http_status"] == 503
    emulator.clear_faults()
    emulator.clear_requests()
    second = project.sync("-s", "crm_contacts")
    assert second.counts("crm_contacts")["updated"] == 1
    assert len(calls(emulator, "PUT")) == 1


def test_null_and_duplicate_keys_are_rejected_and_never_sent(project, emulator):
    table = project.table("crm_contacts")
    project.sql(f"insert into {table} values (null, 'Sem Chave', 'a@b.com', null, null, 'ABC')")
    project.sql(f"insert into {table} values ('C002', 'Joao Dup', 'j@b.com', null, null, 'ABC')")
    run = project.sync("-s", "crm_organizations crm_contacts")
    counts = run.counts("crm_contacts")
    assert (counts["rejected"], counts["created"]) == (3, 1)
    reasons = sorted(i["reason"] for i in run.model("crm_contacts")["issues"])
    assert reasons == ["duplicate key: 2 rows share it"] * 2 + ["key (customer_id) is null"]
    assert names(emulator, "contacts") == ["Maria Silva"]


def test_partial_success_off_stops_the_model_at_its_first_bad_row(project, emulator):
    project.sql(
        f"insert into {project.table('crm_deals')} values "
        f"('D000', 'Credito Ruim', '123', '{STAGE}', 1.0)"
    )
    run = project.sync()
    assert run.exit_code == 1
    counts = run.counts("crm_deals")
    assert (counts["rejected"], counts["skipped"], counts["created"]) == (1, 2, 0)
    assert run.model("crm_deals")["status"] == "failed"
    deals = names(emulator, "deals")
    assert "Credito Ruim" not in deals and "Credito PJ 001" not in deals  # nothing sent
    assert run.counts("crm_contacts")["created"] == 2  # other models still ran


def test_partial_success_on_keeps_going_past_bad_rows(project, emulator):
    project.sql(
        f"insert into {project.table('crm_contacts')} values "
        "('C000', 'Email Ruim', 'not-an-email', null, null, 'ABC')"
    )
    run = project.sync()
    assert run.exit_code == 0
    counts = run.counts("crm_contacts")
    assert (counts["rejected"], counts["created"]) == (1, 2)
    issue = run.model("crm_contacts")["issues"][0]
    assert issue == {
        "outcome": "rejected",
        "key": "C000",
        "row_number": None,
        "http_status": None,
        "field": "email",
        "reason": "email is not a valid e-mail address",
    }


def test_kill_9_mid_run_then_rerun_leaves_exactly_one_record_per_key(project, emulator):
    values = ", ".join(
        f"('K{i:03d}', 'Kill deal {i:03d}', '{ORG_A}', '{STAGE}', {i}.0)" for i in range(40)
    )
    project.sql(f"insert into {project.table('crm_deals')} values {values}")
    emulator.set_faults([{"method": "POST", "path": "/deals", "action": "latency", "seconds": 0.1}])
    env = {**os.environ, **project.env}
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        [str(CLI), "sync", "-s", "crm_deals", "--project-dir", str(project.path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while len(calls(emulator, "POST")) < 12 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    landed = len(emulator.state()["deals"])
    assert 0 < landed < 42
    emulator.clear_faults()
    run = project.sync("-s", "crm_deals")
    assert run.exit_code == 0, run.output
    deals = names(emulator, "deals")
    assert len(deals) == len(set(deals)) == 42
    assert run.counts("crm_deals")["unchanged"] + run.counts("crm_deals")["created"] == 42


from support import CLI  # noqa: E402


def test_a_taken_organization_name_fails_with_a_hint_to_match(sample, emulator):
    crm_post(emulator, "organizations", {"name": "Tech Corp SA"})
    sample.edit_manifest(
        "crm_organizations",
        {
            "mode": "organizations",
            "key": "company_code",
            "mapping": {"company_name": "name", "company_website": "website"},
        },
    )
    run = sample.sync("-s", "crm_organizations")
    assert run.exit_code == 1
    assert (
        run.counts("crm_organizations")["created"],
        run.counts("crm_organizations")["failed"],
    ) == (1, 1)
    issue = run.model("crm_organizations")["issues"][0]
    assert issue["key"] == "TECH" and issue["http_status"] == 400
    assert issue["reason"] == (  # the status is http_status: not repeated in the reason
        "Nome Empresa já cadastrada. (organization names are "
        "unique: add `match: name` to update it instead)"
    )


def test_plan_before_and_after_the_first_sync_matches_it(project, emulator):
    before = project.cli("plan")
    assert before.exit_code == 0, before.output
    run = project.sync()
    keys = ("created", "updated", "unchanged", "waiting", "rejected")
    assert {k: before.results["totals"][k] for k in keys} == {
        k: run.results["totals"][k] for k in keys
    }
    assert before.results["totals"]["planned_requests"] == run.results["totals"]["requests"]
    after = project.cli("plan")
    assert after.results["totals"]["unchanged"] == 10
    assert after.results["totals"]["planned_requests"] == 0
