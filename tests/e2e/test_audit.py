"""`dbt-rdcrm audit` on DuckDB and PostgreSQL: records edited, deleted or orphaned in the CRM are
found with one listing request per 200 records, logged, and repaired by the next sync."""

from __future__ import annotations

import json
import re

import requests
from support import ACCOUNT_CHECK, REPO

SYNCED_ROWS = 10  # every row of the sample project, once synced


def crm_put(emulator, resource: str, record_id: str, data: dict) -> None:
    """Edit a record as a CRM user would (through the API)."""
    response = requests.put(
        f"{emulator.base_url}/{resource}/{record_id}",
        json={"data": data},
        headers={"Authorization": "Bearer emulator-token"},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def record(emulator, kind: str, name: str) -> dict:
    return next(r for r in emulator.state()[kind] if r["name"] == name)


def audit(project, *args: str) -> tuple[int, dict, str]:
    run = project.cli("audit", "--output", "json", *args)
    document = json.loads(run.stdout)
    saved = json.loads((project.path / "target" / "rdcrm_audit_results.json").read_text())
    assert saved == document
    return run.exit_code, document, run.stderr


def audit_log(project) -> list[tuple]:
    return project.sql(
        f"select model_name, row_key, outcome, reason, crm_id from "
        f"{project.state_schema}.rdcrm_sync_log where operation = 'audit' order by logged_at"
    )


def sync_requests(emulator) -> list[dict]:
    """What a sync sent, less its read of the account's custom fields."""
    return [r for r in emulator.requests() if not r["path"].startswith(ACCOUNT_CHECK)]


def gets(emulator) -> list[str]:
    return [r["path"] for r in emulator.requests() if r["method"] == "GET"]


def test_after_a_sync_every_row_is_in_step_for_one_request_per_resource(project, emulator):
    assert project.sync().exit_code == 0
    emulator.clear_requests()
    code, doc, stderr = audit(project)
    assert code == 0 and doc["success"]
    assert doc["totals"]["in_step"] == SYNCED_ROWS
    assert sum(doc["totals"][k] for k in ("drifted", "missing", "foreign", "unchecked")) == 0
    assert sorted(gets(emulator)) == [
        "/crm/v2/contacts",
        "/crm/v2/deals",
        "/crm/v2/organizations",
    ]
    assert [r["method"] for r in emulator.requests()] == ["GET"] * 3  # an audit writes nothing
    assert doc["requests"] == 3
    assert "dbt-rdcrm audit" in stderr and "in step" in stderr


def test_a_record_edited_in_the_crm_is_drifted_then_repaired_by_the_next_sync(project, emulator):
    project.sync()
    maria = record(emulator, "contacts", "Maria Silva")
    crm_put(emulator, "contacts", maria["id"], {"name": "Maria S.", "emails": []})
    code, doc, stderr = audit(project)
    assert code == 1
    contacts = next(m for m in doc["models"] if m["model"] == "crm_contacts")
    assert contacts["counts"]["drifted"] == 1 and contacts["counts"]["in_step"] == 1
    (finding,) = contacts["findings"]
    assert (finding["key"], finding["crm_id"]) == ("C001", maria["id"])
    assert finding["reason"] == "edited in the CRM: name differs, emails dropped"
    assert "maria" not in json.dumps(doc).lower()  # keys and field names, never contents
    assert "audit --repair" in stderr
    assert project.cli("plan").results["totals"]["updated"] == 0  # audit alone marks nothing

    code, doc, _ = audit(project, "--repair")
    assert doc["totals"]["repaired"] == 1
    plan = project.cli("plan", "-s", "crm_contacts").results
    assert plan["models"][0]["counts"]["updated"] == 1

    emulator.clear_requests()
    assert project.sync("-s", "crm_contacts").exit_code == 0
    assert [(r["method"], r["path"]) for r in sync_requests(emulator)] == [
        ("PUT", f"/crm/v2/contacts/{maria['id']}")
    ]
    assert record(emulator, "contacts", "Maria Silva")["emails"] == [
        {"email": "maria.silva@example.com"}
    ]
    code, doc, _ = audit(project)
    assert code == 0 and doc["totals"]["in_step"] == SYNCED_ROWS


def test_a_record_deleted_in_the_crm_is_missing_then_created_again(project, emulator):
    project.sync()
    joao = record(emulator, "contacts", "Joao Santos")
    emulator.delete_record("contacts", joao["id"])
    code, doc, _ = audit(project, "-s", "crm_contacts", "--repair")
    assert code == 1
    (finding,) = doc["models"][0]["findings"]
    assert (finding["outcome"], finding["key"], finding["crm_id"]) == (
        "missing",
        "C002",
        joao["id"],
    )
    assert "not in the CRM" in finding["reason"] and "creates it again" in finding["reason"]
    plan = project.cli("plan", "-s", "crm_contacts").results
    assert plan["models"][0]["counts"]["created"] == 1

    emulator.clear_requests()
    assert project.sync("-s", "crm_contacts").exit_code == 0
    assert [(r["method"], r["path"]) for r in sync_requests(emulator)] == [
        ("POST", "/crm/v2/contacts")
    ]
    code, doc, _ = audit(project, "-s", "crm_contacts")
    assert code == 0 and doc["totals"]["in_step"] == 2


def test_a_key_dropped_from_the_model_leaves_a_foreign_record(project, emulator):
    project.sync()
    joao = record(emulator, "contacts", "Joao Santos")
    project.sql(f"delete from {project.table('crm_contacts')} where customer_id = 'C002'")
    code, doc, stderr = audit(project, "-s", "crm_contacts", "--repair")
    assert code == 1
    (finding,) = doc["models"][0]["findings"]
    assert (finding["outcome"], finding["key"], finding["crm_id"]) == (
        "foreign",
        "C002",
        joao["id"],
    )
    assert doc["totals"]["repaired"] == 0  # nothing is deleted in the CRM
    assert "foreign records stay" in stderr


def test_every_audit_outcome_is_in_the_sync_log(project, emulator):
    project.sync()
    maria = record(emulator, "contacts", "Maria Silva")
    crm_put(emulator, "contacts", maria["id"], {"job_title": "CEO", "name": "M"})
    audit(project, "-s", "crm_contacts")
    assert sorted(audit_log(project)) == [
        ("crm_contacts", "C001", "drifted", "edited in the CRM: name differs", maria["id"]),
        (
            "crm_contacts",
            "C002",
            "in_step",
            None,
            record(emulator, "contacts", "Joao Santos")["id"],
        ),
    ]


def readme_history_model(project) -> str:
    """The README's dbt model over the sync log, with its source rendered for this project."""
    text = (REPO / "README.md").read_text()
    sql = re.search(r"```sql\n(-- models/rdcrm_audit_history\.sql.*?)```", text, re.S).group(1)
    return sql.replace(
        "{{ source('rdcrm', 'rdcrm_sync_log') }}", f"{project.state_schema}.rdcrm_sync_log"
    )


def test_the_readme_history_model_charts_drift_per_audit(project, emulator):
    project.sync()
    maria = record(emulator, "contacts", "Maria Silva")
    crm_put(emulator, "contacts", maria["id"], {"name": "M"})
    audit(project)
    audit(project, "--repair")
    project.sync()
    audit(project)
    rows = project.sql(
        "select model_name, rows_audited, in_step, drifted, missing, foreign_records, "
        f"drift_rate from ({readme_history_model(project)}) h "
        "where model_name = 'crm_contacts' order by audited_at"
    )
    assert [(r[1], r[2], r[3], r[4], r[5], float(r[6])) for r in rows] == [
        (2, 1, 1, 0, 0, 0.5),
        (2, 1, 1, 0, 0, 0.5),
        (2, 2, 0, 0, 0, 0.0),
    ]


def test_the_request_budget_leaves_rows_unchecked(project, emulator):
    project.sync()
    emulator.clear_requests()
    code, doc, _ = audit(project, "--max-requests", "1")
    assert code == 1 and len(emulator.requests()) == 1
    assert doc["totals"]["in_step"] == 4  # the two organization models: their listing came first
    assert doc["totals"]["unchecked"] == SYNCED_ROWS - 4
    assert doc["totals"]["missing"] == 0  # never concluded from a listing cut short
    incomplete = [r for r in doc["resources"] if not r["complete"]]
    assert {r["incomplete_because"] for r in incomplete} == {
        "request budget (--max-requests) spent"
    }


def test_plan_shows_what_an_audit_would_cost(project, emulator):
    project.sync()
    notices = project.cli("plan").results["notices"]
    assert notices == [
        "an audit would cost about 3 requests (contacts 1, deals 1, organizations 1: 200 records "
        "a request; the id map knows 2 contacts, 4 deals, 4 organizations)"
    ]
    assert project.cli("plan", "-s", "crm_deals").results["notices"] == [
        "an audit would cost about 1 request (deals 1: 200 records a request; the id map knows "
        "4 deals)"
    ]
