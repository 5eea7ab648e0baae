"""Reference data: users, pipelines, stages, campaigns, segments, custom field definitions."""

from __future__ import annotations

import pytest

from dbt_rdcrm.emulator.fixtures import DEFAULT_FIXTURES

PIPELINE, OTHER_PIPELINE = DEFAULT_FIXTURES["pipelines"]


def ids(response):
    assert response.status_code == 200, response.text
    return [entry["id"] for entry in response.json()["data"]]


def test_users_lists_the_default_user(api):
    assert api.get("/users").json()["data"] == DEFAULT_FIXTURES["users"]


def test_pipelines_lists_both_pipelines(api):
    assert ids(api.get("/pipelines")) == [PIPELINE["id"], OTHER_PIPELINE["id"]]


def test_pipeline_stages_are_listed_in_order(api):
    response = api.get(f"/pipelines/{OTHER_PIPELINE['id']}/stages")
    assert ids(response) == [stage["id"] for stage in OTHER_PIPELINE["stages"]]


def test_a_stage_names_its_pipeline_and_order(api):
    stage = api.get(f"/pipelines/{PIPELINE['id']}/stages").json()["data"][0]
    assert stage == {
        "id": "6621a1b2c3d4e5f678900001",
        "name": PIPELINE["stages"][0]["name"],
        "pipeline_id": PIPELINE["id"],
        "order": 1,
    }


def test_stages_filtered_by_pipeline_id(api):
    response = api.get("/stages", filter=f"pipeline_id:{PIPELINE['id']}")
    assert ids(response) == [stage["id"] for stage in PIPELINE["stages"]]


def test_stages_without_filter_lists_every_stage(api):
    assert len(ids(api.get("/stages"))) == len(PIPELINE["stages"]) + len(OTHER_PIPELINE["stages"])


def test_stages_of_an_unknown_pipeline_is_404(api):
    response = api.get("/pipelines/0123456789abcdef01234567/stages")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "NOT_FOUND"


def test_campaigns_lists_the_default_campaign(api):
    assert ids(api.get("/campaigns")) == [c["id"] for c in DEFAULT_FIXTURES["campaigns"]]


def test_segments_lists_both_segments(api):
    assert ids(api.get("/segments")) == [s["id"] for s in DEFAULT_FIXTURES["segments"]]


@pytest.mark.parametrize(
    ("entity", "slugs"),
    [
        pytest.param("contact", ["cpf", "erp_id"], id="contact-fields"),
        pytest.param("organization", ["cnpj", "erp_id"], id="organization-fields"),
        pytest.param("deal", ["valor_credito", "erp_id"], id="deal-fields"),
    ],
)
def test_custom_fields_filtered_by_entity(api, entity, slugs):
    data = api.get("/custom_fields", filter=f"entity:{entity}").json()["data"]
    assert [field["slug"] for field in data] == slugs


def test_custom_field_definition_shape(api):
    field = api.get("/custom_fields", filter="entity:deal").json()["data"][0]
    assert field == {
        "id": field["id"],
        "slug": "valor_credito",
        "label": field["label"],
        "entity": "deal",
        "type": "number",
        "required": False,
        "options": [],
    }


def test_reference_lists_use_the_list_envelope(api):
    body = api.get("/segments").json()
    assert set(body) == {"data", "links", "has_more"}
    assert body["links"]["self"].startswith(f"{api.emulator.url}/api/v2/segments?")


def test_reference_reads_need_a_token(emu, make_api):
    assert make_api(emu, token=None).get("/users").status_code == 401
