"""Control endpoints under /_emulator/ and their Python twins."""

from __future__ import annotations

import re

import pytest
import requests

ORG_IDS = ["6621a1b2c3d4e5f678905678", "6621a1b2c3d4e5f678905679"]


def control(emu, method: str, path: str, body=None) -> requests.Response:
    return requests.request(method, f"{emu.url}/_emulator/{path}", json=body, timeout=5)


def test_state_lists_every_stored_record(emu, api):
    contact = api.create("contacts", {"name": "Ana"})
    state = control(emu, "GET", "state").json()
    assert set(state) == {"contacts", "organizations", "deals"}
    assert state["contacts"] == [contact]
    assert [o["id"] for o in state["organizations"]] == ORG_IDS


def test_python_state_matches_http_state(emu, api):
    api.create("deals", {"name": "D"})
    assert emu.state() == control(emu, "GET", "state").json()


def test_reset_restores_the_fixture_records(emu, api):
    api.create("contacts", {"name": "Ana"})
    api.put(f"/organizations/{ORG_IDS[0]}", {"name": "Renomeada"})
    assert control(emu, "POST", "reset").status_code == 200
    state = emu.state()
    assert state["contacts"] == []
    assert state["organizations"][0]["name"] == "Empresa Exemplo Ltda"


def test_reset_clears_the_request_log(emu, api):
    api.get("/users")
    control(emu, "POST", "reset")
    assert control(emu, "GET", "requests").json() == {"data": []}


def test_reset_clears_the_faults(emu, api):
    emu.set_faults([{"action": "status", "status": 500}])
    control(emu, "POST", "reset")
    assert api.get("/users").status_code == 200


def test_request_log_entry_has_method_path_query_status_time(emu, api):
    api.get("/contacts", filter="name:ana")
    [entry] = control(emu, "GET", "requests").json()["data"]
    assert set(entry) == {"method", "path", "query", "status", "time"}
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/crm/v2/contacts", 200)
    assert entry["query"] == "filter=name%3Aana"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])


def test_request_log_keeps_order_and_error_statuses(emu, api):
    api.post("/contacts", {"name": "Ana"})
    api.post("/contacts", {})
    requests.get(f"{emu.url}/api/v2/contacts", timeout=5)
    log = [(r["method"], r["path"], r["status"]) for r in emu.requests()]
    assert log == [
        ("POST", "/crm/v2/contacts", 201),
        ("POST", "/crm/v2/contacts", 422),
        ("GET", "/api/v2/contacts", 404),
    ]


def test_control_requests_are_not_logged(emu):
    control(emu, "GET", "state")
    control(emu, "GET", "faults")
    assert emu.requests() == []


def test_delete_requests_clears_the_log(emu, api):
    api.get("/users")
    control(emu, "DELETE", "requests")
    assert emu.requests() == []


def test_python_clear_requests_clears_the_log(emu, api):
    api.get("/users")
    emu.clear_requests()
    assert control(emu, "GET", "requests").json()["data"] == []


def test_python_faults_match_http_faults(emu):
    emu.set_faults([{"action": "latency", "seconds": 0}])
    assert emu.faults() == control(emu, "GET", "faults").json()["faults"]


def test_python_clear_faults(emu, api):
    emu.set_faults([{"action": "status", "status": 500}])
    emu.clear_faults()
    assert control(emu, "GET", "faults").json() == {"faults": []}


def test_python_set_faults_rejects_bad_rules(emu):
    from dbt_rdcrm.emulator import FaultError

    with pytest.raises(FaultError, match="faults\\[0\\].action"):
        emu.set_faults([{"action": "nope"}])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", "nothing", id="unknown-control-path"),
        pytest.param("PUT", "state", id="wrong-method"),
    ],
)
def test_unknown_control_route_is_404(emu, method, path):
    assert control(emu, method, path).status_code == 404


def test_post_faults_needs_a_faults_key(emu):
    assert control(emu, "POST", "faults", {"rules": []}).status_code == 400


def test_delete_record_removes_it_as_the_crm_ui_would(emu, api):
    contact = api.create("contacts", {"name": "Ana"})
    answer = control(emu, "DELETE", f"records/contacts/{contact['id']}")
    assert answer.json() == {"deleted": contact["id"]}
    assert api.get(f"/contacts/{contact['id']}").status_code == 404


def test_delete_record_frees_an_organization_name(emu, api):
    emu.delete_record("organizations", ORG_IDS[0])
    assert api.create("organizations", {"name": "Empresa Exemplo Ltda"})["name"]


def test_delete_unknown_record_is_404(emu):
    answer = control(emu, "DELETE", "records/deals/6621a1b2c3d4e5f678909999")
    assert answer.status_code == 404
    with pytest.raises(KeyError):
        emu.delete_record("people", ORG_IDS[0])
