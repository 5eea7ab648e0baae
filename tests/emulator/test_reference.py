"""Account data: users, pipelines and their stages, campaigns, segments, sources, lost reasons,
products: list and get routes, in the shapes their reference pages document."""

from __future__ import annotations

import pytest

from dbt_rdcrm.emulator.fixtures import DEFAULT_FIXTURES

PIPELINE, OTHER_PIPELINE = DEFAULT_FIXTURES["pipelines"]
UNKNOWN_ID = "0123456789abcdef01234567"
STAMPS = ["created_at", "updated_at"]


def ids(response):
    assert response.status_code == 200, response.text
    return [entry["id"] for entry in response.json()["data"]]


ROUTES = [
    # list path, fixtures section, documented fields (the page's response body, in order)
    pytest.param("/users", "users", ["id", "name", "email", "phone", *STAMPS], id="crm-v2-list-users"),
    pytest.param("/pipelines", "pipelines", ["id", "name", "order", "stage_ids", *STAMPS], id="crm-v2-list-pipelines"),
    pytest.param("/campaigns", "campaigns", ["id", "name", "description", *STAMPS], id="crm-v2-list-campaigns"),
    pytest.param("/segments", "segments", ["id", "name", *STAMPS], id="crm-v2-list-segments"),
    pytest.param("/sources", "sources", ["id", "name", "description", *STAMPS], id="crm-v2-list-sources"),
    pytest.param("/lost_reasons", "lost_reasons", ["id", "name", *STAMPS], id="crm-v2-list-lost-reasons"),
    pytest.param("/products", "products", ["id", "name", "description", "price", "visible", "custom_fields", *STAMPS], id="crm-v2-list-products"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "section", "fields"), ROUTES)
def test_list_serves_every_entry_in_the_documented_shape(api, path, section, fields):
    data = api.get(path).json()["data"]
    assert [entry["id"] for entry in data] == [e["id"] for e in DEFAULT_FIXTURES[section]]
    assert all(list(entry) == fields for entry in data)


@pytest.mark.parametrize(("path", "section", "fields"), ROUTES)
def test_get_by_id_answers_the_listed_entry(api, path, section, fields):
    # crm-v2-get-user, crm-v2-get-pipeline, crm-v2-get-campaign, crm-v2-get-segment, ...
    first = api.get(path).json()["data"][0]
    assert api.get(f"{path}/{first['id']}").json() == {"data": first}


@pytest.mark.parametrize(("path", "section", "fields"), ROUTES)
def test_get_unknown_id_is_404_in_the_errors_shape(api, path, section, fields):
    response = api.get(f"{path}/{UNKNOWN_ID}")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "NOT_FOUND"


def test_users_list_the_default_user(api):
    user = DEFAULT_FIXTURES["users"][0]
    data = api.get("/users").json()["data"]
    assert [(u["id"], u["name"], u["email"]) for u in data] == [
        (user["id"], user["name"], user["email"])
    ]


def test_pipelines_carry_order_and_stage_ids(api):
    pipelines = api.get("/pipelines").json()["data"]
    assert [(p["order"], p["stage_ids"]) for p in pipelines] == [
        (1, [s["id"] for s in PIPELINE["stages"]]),
        (2, [s["id"] for s in OTHER_PIPELINE["stages"]]),
    ]


def test_pipeline_stages_are_listed_in_order(api):
    # crm-v2-list-stages-from-pipeline
    response = api.get(f"/pipelines/{OTHER_PIPELINE['id']}/stages")
    assert ids(response) == [stage["id"] for stage in OTHER_PIPELINE["stages"]]


def test_a_stage_has_the_documented_shape(api):
    stage = api.get(f"/pipelines/{PIPELINE['id']}/stages").json()["data"][0]
    assert list(stage) == ["id", "name", "description", "objective", "order", *STAMPS]
    assert (stage["id"], stage["name"], stage["order"]) == (
        PIPELINE["stages"][0]["id"],
        PIPELINE["stages"][0]["name"],
        1,
    )


def test_a_stage_is_read_under_its_pipeline(api):
    # crm-v2-get-stage-from-pipeline
    stage = PIPELINE["stages"][1]
    data = api.get(f"/pipelines/{PIPELINE['id']}/stages/{stage['id']}").json()["data"]
    assert (data["id"], data["order"]) == (stage["id"], 2)


def test_a_stage_of_another_pipeline_is_404(api):
    stage = OTHER_PIPELINE["stages"][0]
    assert api.get(f"/pipelines/{PIPELINE['id']}/stages/{stage['id']}").status_code == 404


def test_stages_of_an_unknown_pipeline_is_404(api):
    response = api.get(f"/pipelines/{UNKNOWN_ID}/stages")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "NOT_FOUND"


def test_there_is_no_top_level_stages_route(api):
    # the reference serves stages only under /pipelines/{pipeline_id}/stages
    response = api.get("/stages")
    assert response.status_code == 404
    assert response.json() == {"message": "no Route matched with those values"}


def test_reference_lists_use_the_list_envelope(api):
    body = api.get("/segments").json()
    assert set(body) == {"data", "links", "has_more"}
    assert body["links"]["self"].startswith(f"{api.emulator.url}/api/v2/segments?")


def test_reference_reads_need_a_token(emu, make_api):
    assert make_api(emu, token=None).get("/users").status_code == 401
