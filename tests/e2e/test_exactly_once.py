"""Exactly once against what we did not write: lost state, deleted records, overlapping runs,
keyless syncs, and rows settled by hand; on DuckDB and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import time

import requests
from support import CLI

STAGE = "6621a1b2c3d4e5f678900001"
ORG_A = "6621a1b2c3d4e5f678905678"
D003 = {"name": "Credito PJ 003", "organization_id": ORG_A, "stage_id": STAGE}


def posts(emulator, resource=""):
    return [
        r
        for r in emulator.requests()
        if r["method"] == "POST" and r["path"].startswith(f"/crm/v2/{resource}")
    ]


def one_record_per_name(emulator, kind):
    names = [r["name"] for r in emulator.state()[kind]]
    return len(names) == len(set(names))


def test_an_emptied_id_map_stops_before_any_create_and_rebuild_recovers(project, emulator):
    assert project.sync().exit_code == 0
    before = {k: len(v) for k, v in emulator.state().items()}
    project.sql(f"delete from {project.state_schema}.rdcrm_id_map")
    emulator.clear_requests()
    stopped = project.sync()
    assert stopped.exit_code == 2, stopped.output  # stopped before any model wrote
    assert "dbt-rdcrm state rebuild -s crm_contacts" in stopped.output
    assert [r for r in emulator.requests() if r["method"] in ("POST", "PUT")] == []
    rebuilt = project.cli("state", "rebuild")
    assert rebuilt.exit_code == 0, rebuilt.output
    emulator.clear_requests()
    again = project.sync()
    assert again.exit_code == 0, again.output
    assert posts(emulator) == []
    assert {k: len(v) for k, v in emulator.state().items()} == before


def test_a_dropped_state_schema_never_means_duplicates(sample, emulator):
    assert sample.sync().exit_code == 0
    sample.sql(f"drop schema {sample.state_schema} cascade")
    emulator.clear_requests()
    run = sample.sync()
    assert run.exit_code == 2 and "state rebuild" in run.output
    assert posts(emulator) == []


def test_a_record_deleted_in_the_crm_is_recreated_and_its_children_follow(project, emulator):
    assert project.sync().exit_code == 0
    maria = next(c for c in emulator.state()["contacts"] if c["name"] == "Maria Silva")
    emulator.delete_record("contacts", maria["id"])
    project.sql(
        f"update {project.table('crm_contacts')} set phone_number = '+55 11 90000-0000' "
        "where customer_id = 'C001'"
    )
    run = project.sync()
    assert run.exit_code == 0, run.output
    assert run.counts("crm_contacts")["recreated"] == 1
    (again,) = [c for c in emulator.state()["contacts"] if c["name"] == "Maria Silva"]
    assert again["id"] != maria["id"]
    linked = [d for d in emulator.state()["deals"] if again["id"] in (d.get("contact_ids") or [])]
    assert linked, "deals follow their contact's new id"
    assert all(maria["id"] not in (d.get("contact_ids") or []) for d in emulator.state()["deals"])


def test_an_overlapping_sync_exits_2_naming_the_run_that_holds_the_state(project, emulator):
    values = ", ".join(
        f"('L{i:03d}', 'Lease deal {i:03d}', '{ORG_A}', '{STAGE}', {i}.0)" for i in range(30)
    )
    project.sql(f"insert into {project.table('crm_deals')} values {values}")
    emulator.set_faults([{"method": "POST", "path": "/deals", "action": "latency", "seconds": 1}])
    first = subprocess.Popen(  # noqa: S603 - our own CLI
        [
            str(CLI),
            "sync",
            "-s",
            "crm_deals",
            "--concurrency",
            "1",
            "--project-dir",
            str(project.path),
        ],
        env={**os.environ, **project.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while not posts(emulator, "deals") and time.monotonic() < deadline:
        time.sleep(0.05)
    second = project.subprocess("sync", "-s", "crm_deals")
    assert second.exit_code == 2, second.output
    assert "Traceback" not in second.output and "internal error" not in second.output
    if project.kind == "postgres":
        assert "another sync holds the state" in second.output
    else:  # DuckDB itself refuses a second process the file: said as such
        assert "in use by another process" in second.output
    first.kill()  # a run killed on this machine: its lease does not block the next one
    first.wait()
    # the POST the killed run left held in the CRM (1 s of latency) lands before the next run
    # looks for it: a create still in flight then is the known open case, not this test's subject
    time.sleep(1.5)
    emulator.clear_faults()
    third = project.sync("-s", "crm_deals")
    assert third.exit_code == 0, third.output
    assert one_record_per_name(emulator, "deals")
    assert len(emulator.state()["deals"]) == 32


def test_a_sync_without_key_creates_each_distinct_row_once(sample, emulator):
    sample.edit_manifest(
        "crm_deals",
        {
            "mode": "deals",
            "partial_success": True,
            "mapping": {"deal_name": "name", "org_id": "organization_id", "stage": "stage_id"},
        },
    )
    first = sample.sync("-s", "crm_deals")
    assert first.exit_code == 0, first.output
    assert first.counts("crm_deals")["created"] == 2
    emulator.clear_requests()
    second = sample.sync("-s", "crm_deals")
    assert emulator.requests() == [] or all(r["method"] == "GET" for r in emulator.requests())
    assert second.counts("crm_deals")["unchanged"] == 2
    sample.sql(
        f"update {sample.table('crm_deals')} set deal_name = 'Renamed' where deal_code = 'D001'"
    )
    third = sample.sync("-s", "crm_deals")
    assert third.counts("crm_deals")["created"] == 1  # a changed row is a new row
    assert len(emulator.state()["deals"]) == 3


def test_a_row_left_unresolved_is_settled_with_the_command_it_names(sample, emulator):
    assert sample.sync("-s", "crm_deals").exit_code == 0
    sample.sql(
        f"insert into {sample.table('crm_deals')} values "
        f"('D003', 'Credito PJ 003', '{ORG_A}', '{STAGE}', 10.0)"
    )
    for _ in range(2):  # two records that hold exactly what the create would send
        requests.post(
            f"{emulator.base_url}/deals",
            json={"data": {**D003, "custom_fields": {"valor_credito": 10.0}}},
            headers={"Authorization": "Bearer emulator-token"},
            timeout=10,
        ).raise_for_status()
    emulator.set_faults(
        [{"method": "POST", "path": "/deals", "action": "status", "status": 503, "count": 1}]
    )
    run = sample.sync("-s", "crm_deals")
    assert run.exit_code == 1, run.output
    (issue,) = [i for i in run.model("crm_deals")["issues"] if i["outcome"] == "unresolved"]
    assert "dbt-rdcrm state resolve crm_deals 'D003'" in issue["reason"]
    candidate = next(d["id"] for d in emulator.state()["deals"] if d["name"] == "Credito PJ 003")
    assert candidate in issue["reason"]
    settled = sample.cli("state", "resolve", "crm_deals", "D003", "--crm-id", candidate)
    assert settled.exit_code == 0, settled.output
    emulator.clear_faults()
    emulator.clear_requests()
    after = sample.sync("-s", "crm_deals")
    assert after.exit_code == 0, after.output
    assert posts(emulator) == []
    assert after.counts("crm_deals")["updated"] == 1


def test_a_crm_id_edited_by_hand_in_the_id_map_stops_the_run_before_any_write(project, emulator):
    assert project.sync().exit_code == 0
    id_map = f"{project.state_schema}.rdcrm_id_map"
    (first, second) = project.sql(
        f"select row_key, crm_id from {id_map} where model_name = 'crm_contacts' order by row_key"
    )
    for key, crm_id in ((first[0], second[1]), (second[0], first[1])):  # swap the two ids
        project.sql(
            f"update {id_map} set crm_id = '{crm_id}' where model_name = 'crm_contacts' "
            f"and row_key = '{key}'"
        )
    project.sql(f"update {project.table('crm_contacts')} set full_name = full_name || ' Jr.'")
    emulator.clear_requests()
    run = project.sync()
    assert run.exit_code == 2, run.output
    assert "was changed outside dbt-rdcrm" in run.output
    assert [r for r in emulator.requests() if r["method"] in ("POST", "PUT")] == []
    rebuilt = project.cli("state", "rebuild", "-s", "crm_contacts")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "2 restored" in rebuilt.output
    again = project.sync()
    assert again.exit_code == 0, again.output
    assert again.counts("crm_contacts")["updated"] == 2
    assert len(emulator.state()["contacts"]) == 2
    assert project.sql(
        f"select row_key, crm_id from {id_map} where model_name = 'crm_contacts' order by row_key"
    ) == [first, second]


def test_an_organization_id_swapped_by_hand_stops_the_contacts_that_link_to_it(project, emulator):
    """The organizations' own rows did not change, so their sync uses no id; the contacts
    that link to them would carry the swapped ids: the run stops before they write."""
    assert project.sync().exit_code == 0
    id_map = f"{project.state_schema}.rdcrm_id_map"
    linked = project.sql(
        f"select distinct o.row_key, o.crm_id from {id_map} o join "
        f"{project.table('crm_contacts')} c on c.company_code = o.row_key "
        "where o.model_name = 'crm_organizations' order by o.row_key"
    )
    (first, second) = linked[:2]
    for key, crm_id in ((first[0], second[1]), (second[0], first[1])):  # swap the two ids
        project.sql(
            f"update {id_map} set crm_id = '{crm_id}' where model_name = 'crm_organizations' "
            f"and row_key = '{key}'"
        )
    emulator.clear_requests()
    run = project.sync()
    assert run.exit_code == 2, run.output
    assert "crm_organizations: the CRM id of key(s)" in run.output
    assert "rows of crm_contacts link to it" in run.output
    assert [r for r in emulator.requests() if r["method"] in ("POST", "PUT")] == []
    assert project.cli("state", "rebuild", "-s", "crm_organizations").exit_code == 0
    emulator.clear_requests()
    again = project.sync()
    assert again.exit_code == 0, again.output
    assert [r for r in emulator.requests() if r["method"] in ("POST", "PUT")] == []
