"""Injected faults: status codes, 429 bursts, latency, dropped connections, scripting."""

from __future__ import annotations

import time

import pytest
import requests


def set_faults(emu, *rules) -> requests.Response:
    response = requests.post(f"{emu.url}/_emulator/faults", json={"faults": list(rules)}, timeout=5)
    assert response.status_code == 200, response.text
    return response


def statuses(api, count: int, path: str = "/users") -> list[int]:
    return [api.get(path).status_code for _ in range(count)]


def test_status_fault_answers_a_non_json_5xx(emu, api):
    set_faults(emu, {"action": "status", "status": 503})
    response = api.get("/users")
    assert response.status_code == 503
    assert response.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        response.json()


def test_status_fault_can_carry_its_own_body(emu, api):
    set_faults(emu, {"action": "status", "status": 502, "body": "upstream timed out"})
    assert api.get("/users").text == "upstream timed out"


def test_4xx_status_fault_uses_the_errors_shape(emu, api):
    set_faults(emu, {"action": "status", "status": 403})
    response = api.get("/users")
    assert (response.status_code, response.json()["errors"][0]["status"]) == (403, "403")


def test_rate_limit_fault_answers_429_with_its_retry_after(emu, api):
    set_faults(emu, {"action": "rate_limit", "retry_after": 7})
    response = api.get("/users")
    assert (response.status_code, response.headers["Retry-After"]) == (429, "7")


def test_latency_fault_delays_then_answers_normally(emu, api):
    set_faults(emu, {"action": "latency", "seconds": 0.2})
    started = time.monotonic()
    response = api.get("/users")
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.2


def test_drop_before_commit_closes_without_storing(emu, api):
    set_faults(emu, {"method": "POST", "path": "/contacts", "action": "drop_before_commit"})
    with pytest.raises(requests.ConnectionError):
        api.post("/contacts", {"name": "Ana"})
    assert emu.state()["contacts"] == []


def test_drop_after_commit_stores_the_record_but_sends_nothing(emu, api):
    set_faults(emu, {"method": "POST", "path": "/contacts", "action": "drop_after_commit"})
    with pytest.raises(requests.ConnectionError):
        api.post("/contacts", {"name": "Ana"})
    assert [c["name"] for c in emu.state()["contacts"]] == ["Ana"]


def test_drop_after_commit_on_a_reused_connection_is_not_retried(emu, api):
    api.get("/users")
    set_faults(emu, {"method": "POST", "action": "drop_after_commit", "count": 1})
    with pytest.raises(requests.ConnectionError):
        api.post("/contacts", {"name": "Ana"})
    assert len(emu.state()["contacts"]) == 1


def test_connection_works_again_after_a_drop(emu, api):
    set_faults(emu, {"action": "drop_before_commit", "count": 1})
    with pytest.raises(requests.ConnectionError):
        api.get("/users")
    assert api.get("/users").status_code == 200


@pytest.mark.parametrize("action", ["drop_before_commit", "drop_after_commit"])
def test_dropped_requests_are_logged_with_status_zero(emu, api, action):
    set_faults(emu, {"action": action, "count": 1})
    with pytest.raises(requests.ConnectionError):
        api.post("/contacts", {"name": "Ana"})
    assert [(r["path"], r["status"]) for r in emu.requests()] == [("/crm/v2/contacts", 0)]


def test_faulted_requests_are_logged_with_the_injected_status(emu, api):
    set_faults(emu, {"action": "status", "status": 500})
    api.get("/users")
    assert [r["status"] for r in emu.requests()] == [500]


def test_after_and_count_script_a_sequence(emu, api):
    set_faults(emu, {"action": "status", "status": 503, "after": 1, "count": 2})
    assert statuses(api, 4) == [200, 503, 503, 200]


def test_rule_without_count_applies_forever(emu, api):
    set_faults(emu, {"action": "status", "status": 500})
    assert statuses(api, 3) == [500, 500, 500]


def test_method_must_match(emu, api):
    set_faults(emu, {"method": "POST", "action": "status", "status": 500})
    assert api.get("/users").status_code == 200


def test_path_is_a_glob_relative_to_crm_v2(emu, api):
    set_faults(emu, {"path": "/contacts/*", "action": "status", "status": 500})
    contact = api.create("contacts", {"name": "Ana"})
    assert api.get(f"/contacts/{contact['id']}").status_code == 500


def test_first_applicable_rule_wins(emu, api):
    set_faults(
        emu,
        {"action": "status", "status": 502, "count": 1},
        {"action": "status", "status": 503},
    )
    assert statuses(api, 2) == [502, 503]


def test_probability_with_a_seed_is_repeatable(emu, api):
    rule = {"action": "status", "status": 500, "probability": 0.5, "seed": 42}
    set_faults(emu, rule)
    first = statuses(api, 20)
    set_faults(emu, rule)
    assert statuses(api, 20) == first
    assert set(first) == {200, 500}


def test_probability_zero_never_applies(emu, api):
    set_faults(emu, {"action": "status", "status": 500, "probability": 0})
    assert statuses(api, 5) == [200] * 5


def test_faults_apply_only_to_crm_routes(emu):
    set_faults(emu, {"action": "status", "status": 500})
    assert requests.get(f"{emu.url}/_emulator/state", timeout=5).status_code == 200


def test_get_faults_lists_rules_with_their_counters(emu, api):
    set_faults(emu, {"action": "status", "status": 500, "count": 1})
    api.get("/users")
    [rule] = requests.get(f"{emu.url}/_emulator/faults", timeout=5).json()["faults"]
    assert (rule["action"], rule["seen"], rule["applied"]) == ("status", 1, 1)


def test_post_faults_replaces_the_rule_list(emu):
    set_faults(emu, {"action": "status", "status": 500})
    body = set_faults(emu, {"action": "latency", "seconds": 0}).json()
    assert [rule["action"] for rule in body["faults"]] == ["latency"]


def test_delete_faults_clears_them(emu, api):
    set_faults(emu, {"action": "status", "status": 500})
    requests.delete(f"{emu.url}/_emulator/faults", timeout=5)
    assert api.get("/users").status_code == 200


@pytest.mark.parametrize(
    ("rule", "named"),
    [
        pytest.param({"action": "explode"}, "faults[0].action", id="unknown-action-400"),
        pytest.param({"action": "status"}, "faults[0].status", id="status-action-without-status-400"),
        pytest.param({"action": "latency"}, "faults[0].seconds", id="latency-without-seconds-400"),
        pytest.param({"action": "status", "status": 503, "cuont": 1}, "faults[0].cuont", id="unknown-key-400"),
        pytest.param({"action": "status", "status": 503, "probability": 2}, "faults[0].probability", id="probability-above-1-400"),
        pytest.param({"action": "drop_after_commit", "path": "contacts"}, "faults[0].path", id="path-without-slash-400"),
    ],
)  # fmt: skip
def test_invalid_rule_is_400_naming_the_key(emu, rule, named):
    response = requests.post(f"{emu.url}/_emulator/faults", json={"faults": [rule]}, timeout=5)
    assert response.status_code == 400
    assert named in response.json()["errors"][0]["detail"]


def test_invalid_rules_leave_the_previous_ones_active(emu, api):
    set_faults(emu, {"action": "status", "status": 500})
    requests.post(f"{emu.url}/_emulator/faults", json={"faults": [{"action": "x"}]}, timeout=5)
    assert api.get("/users").status_code == 500


def test_ignore_field_fault_writes_without_that_field(emu, api):
    set_faults(
        emu, {"method": "POST", "path": "/contacts", "action": "ignore_field", "field": "phones"}
    )
    sent = {"name": "Ana", "phones": [{"phone": "+55 11 1111-1111"}], "job_title": "CFO"}
    created = api.create("contacts", sent)
    assert (created["phones"], created["job_title"]) == ([], "CFO")
    assert emu.faults()[0]["field"] == "phones"


def test_ignore_field_fault_needs_its_field():
    from dbt_rdcrm.emulator.faults import FaultError, parse_rules

    with pytest.raises(FaultError, match=r"faults\[0\]\.field: required for action ignore_field"):
        parse_rules([{"action": "ignore_field"}])
