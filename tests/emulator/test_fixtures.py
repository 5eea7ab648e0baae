"""Fixtures: the default account, replacement by a dict or a JSON file, and their checks."""

from __future__ import annotations

import copy
import json

import pytest

from dbt_rdcrm.emulator import DEFAULT_FIXTURES, Emulator, FixtureError

MINIMAL = {
    "users": [{"id": "a00000000000000000000001", "name": "Bea", "email": "bea@example.com"}],
    "pipelines": [
        {
            "id": "b00000000000000000000001",
            "name": "Vendas",
            "stages": [{"id": "b10000000000000000000001", "name": "Novo"}],
        }
    ],
}


def test_default_fixtures_hold_the_documented_example_ids():
    stage_ids = [s["id"] for p in DEFAULT_FIXTURES["pipelines"] for s in p["stages"]]
    org_ids = [o["id"] for o in DEFAULT_FIXTURES["organizations"]]
    assert "6621a1b2c3d4e5f678900001" in stage_ids
    assert org_ids == ["6621a1b2c3d4e5f678905678", "6621a1b2c3d4e5f678905679"]


def test_default_fixtures_define_the_documented_custom_fields():
    fields = {(f["entity"], f["slug"], f["type"]) for f in DEFAULT_FIXTURES["custom_fields"]}
    assert fields == {
        ("contact", "cpf", "text"),
        ("organization", "cnpj", "text"),
        ("deal", "valor_credito", "text"),  # v2 has no number type (crm-v2-create-custom-field)
        ("contact", "erp_id", "text"),
        ("organization", "erp_id", "text"),
        ("deal", "erp_id", "text"),
    }


def test_default_pipeline_has_at_least_three_stages():
    assert len(DEFAULT_FIXTURES["pipelines"][0]["stages"]) >= 3


def test_fixtures_property_is_a_copy_of_the_active_fixtures(emu):
    emu.fixtures["users"].clear()
    assert emu.fixtures["users"] == DEFAULT_FIXTURES["users"]


def test_fixtures_dict_replaces_the_defaults(make_emulator):
    emulator = make_emulator(fixtures=MINIMAL)
    assert emulator.state() == {"contacts": [], "organizations": [], "deals": []}
    assert emulator.fixtures["users"] == MINIMAL["users"]


def test_fixtures_json_file_replaces_the_defaults(make_emulator, make_api, tmp_path):
    path = tmp_path / "account.json"
    path.write_text(json.dumps(MINIMAL), encoding="utf-8")
    deal = make_api(make_emulator(fixtures=str(path))).create("deals", {"name": "D"})
    assert (deal["stage_id"], deal["owner_id"]) == (
        "b10000000000000000000001",
        MINIMAL["users"][0]["id"],
    )


def test_seeded_records_keep_their_ids_and_timestamps(make_emulator, make_api):
    fixtures = {
        **MINIMAL,
        "contacts": [
            {
                "id": "c00000000000000000000001",
                "name": "Ana",
                "created_at": "2026-01-02T03:04:05.006Z",
            }
        ],
    }
    contact = make_api(make_emulator(fixtures=fixtures)).get("/contacts/c00000000000000000000001")
    data = contact.json()["data"]
    assert (data["name"], data["created_at"], data["updated_at"]) == (
        "Ana",
        "2026-01-02T03:04:05.006Z",
        "2026-01-02T03:04:05.006Z",
    )


def test_seeded_deal_may_have_any_status_and_gets_defaults(make_emulator):
    fixtures = {**MINIMAL, "deals": [{"name": "Antigo", "status": "won"}]}
    [deal] = make_emulator(fixtures=fixtures).state()["deals"]
    assert (deal["status"], deal["stage_id"]) == ("won", "b10000000000000000000001")


def with_(**changes):
    fixtures = copy.deepcopy(MINIMAL)
    fixtures.update(changes)
    return fixtures


@pytest.mark.parametrize(
    ("fixtures", "named"),
    [
        pytest.param(with_(tasks=[]), "tasks", id="unknown-section"),
        pytest.param(with_(users=[]), "users", id="no-user"),
        pytest.param(with_(users=[{"id": "1", "name": "A", "email": "a@b.c"}]), "users[0].id", id="user-id-not-hex"),
        pytest.param(with_(campaigns=[{"id": "c00000000000000000000001"}]), "campaigns[0].name", id="campaign-without-name"),
        pytest.param(with_(pipelines=[{"id": "b00000000000000000000001", "name": "P", "stages": []}]), "pipelines[0].stages", id="pipeline-without-stages"),
        pytest.param(with_(segments=[{"id": "d00000000000000000000001", "name": "S"}] * 2), "duplicate id", id="duplicate-segment-id"),
        pytest.param(with_(custom_fields=[{"id": "e00000000000000000000001", "slug": "x", "label": "X", "entity": "lead", "type": "text"}]), "custom_fields[0].entity", id="custom-field-unknown-entity"),
        pytest.param(with_(custom_fields=[{"id": "e00000000000000000000001", "slug": "x", "label": "X", "entity": "deal", "type": "option"}]), "custom_fields[0].options", id="option-field-without-options"),
        pytest.param(with_(contacts=[{"name": "A", "organization_id": "f00000000000000000000001"}]), "contacts[0].organization_id", id="seeded-contact-unknown-organization"),
        pytest.param(with_(organizations=[{"name": "A"}, {"name": "a"}]), "organizations[1].name", id="seeded-duplicate-organization-name"),
        pytest.param(with_(contacts=[{"id": "xyz", "name": "A"}]), "contacts[0].id", id="seeded-id-not-hex"),
        pytest.param(with_(contacts=[{"name": "A", "created_at": "yesterday"}]), "contacts[0].created_at", id="seeded-timestamp-not-iso"),
    ],
)  # fmt: skip
def test_invalid_fixtures_raise_naming_the_path(fixtures, named):
    with pytest.raises(FixtureError) as caught:
        Emulator(fixtures=fixtures)
    assert named in str(caught.value)


def test_every_fixture_problem_is_reported_at_once():
    fixtures = with_(users=[], campaigns=[{"id": "1", "name": ""}])
    with pytest.raises(FixtureError) as caught:
        Emulator(fixtures=fixtures)
    assert len(caught.value.problems) == 3


def test_unreadable_fixtures_file_names_the_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(FixtureError, match="broken.json: invalid JSON at line 1"):
        Emulator(fixtures=str(path))


def test_fixtures_file_top_level_must_be_an_object(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(FixtureError, match="the top level must be a JSON object"):
        Emulator(fixtures=path)
