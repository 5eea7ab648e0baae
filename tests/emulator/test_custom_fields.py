"""Custom fields: definitions (list, get, create, update, delete), the values each type takes,
uniqueness and required rules.

Reference pages: crm-v2-list-custom-fields, crm-v2-get-custom-field,
crm-v2-create-custom-field, crm-v2-update-custom-field, crm-v2-delete-custom-field; the
interpretation of required_rules is in docs/emulator.md.
"""

from __future__ import annotations

import pytest

from dbt_rdcrm.emulator import Emulator
from dbt_rdcrm.emulator.fixtures import DEFAULT_FIXTURES

LAST_STAGE = DEFAULT_FIXTURES["pipelines"][0]["stages"][3]["id"]
FIELDS = [
    {"id": "aa0000000000000000000001", "slug": "inicio", "name": "Início", "entity": "deal", "type": "date"},
    {"id": "aa0000000000000000000002", "slug": "porte", "name": "Porte", "entity": "deal", "type": "option", "options": ["P", "M", "G"]},
    {"id": "aa0000000000000000000003", "slug": "canais", "name": "Canais", "entity": "deal", "type": "multiple_choice", "options": ["email", "fone"]},
    {"id": "aa0000000000000000000004", "slug": "tags", "name": "Tags", "entity": "deal", "type": "multiple_choice", "options": ["a"], "allow_new_option": True},
    {"id": "aa0000000000000000000005", "slug": "contrato", "name": "Contrato", "entity": "deal", "type": "text", "required_rules": [{"property": "deal_stage_id", "value": LAST_STAGE, "always": False}]},
    {"id": "aa0000000000000000000006", "slug": "cpf", "name": "CPF", "entity": "contact", "type": "text", "unique": True, "required_rules": [{"property": None, "value": None, "always": True}]},
]  # fmt: skip
RICH = {**DEFAULT_FIXTURES, "custom_fields": FIELDS}
DOCUMENTED = [  # crm-v2-create-custom-field, response body, in order
    "id", "name", "slug", "type", "entity", "options", "unique", "allow_new_option", "order",
    "required_rules", "display_rules", "created_at", "updated_at",
]  # fmt: skip


@pytest.fixture(scope="module")
def rich_emulator():
    with Emulator(rate_limit=0, fixtures=RICH) as emulator:
        yield emulator


@pytest.fixture
def rich(rich_emulator, make_api):
    rich_emulator.reset()
    return make_api(rich_emulator)


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


def test_a_definition_has_the_documented_shape(api):
    field = api.get("/custom_fields", filter="entity:deal slug:valor_credito").json()["data"][0]
    assert list(field) == DOCUMENTED
    assert (field["type"], field["required_rules"], field["unique"]) == ("text", [], False)


def test_get_by_id_and_unknown_id(api):
    field = api.get("/custom_fields").json()["data"][0]
    assert api.get(f"/custom_fields/{field['id']}").json() == {"data": field}
    assert api.get("/custom_fields/0123456789abcdef01234567").status_code == 404


def test_create_answers_201_and_the_field_is_usable_at_once(api):
    payload = {
        "name": "Setor Comercial",
        "entity": "organization",
        "type": "option",
        "options": ["A", "B"],
    }
    response = api.post("/custom_fields", payload)
    assert response.status_code == 201, response.text
    field = response.json()["data"]
    assert (field["slug"], field["options"], list(field)) == (
        "setor_comercial",
        ["A", "B"],
        DOCUMENTED,
    )
    org = api.create("organizations", {"name": "X", "custom_fields": {"setor_comercial": "B"}})
    assert org["custom_fields"] == {"setor_comercial": "B"}


DEFINITION_CASES = [
    pytest.param({"entity": "deal", "type": "text"}, "/data/name", id="name-required-422"),
    pytest.param({"name": "X", "entity": "lead", "type": "text"}, "/data/entity", id="entity-enum-422"),
    pytest.param({"name": "X", "entity": "deal", "type": "number"}, "/data/type", id="type-number-is-not-v2-422"),
    pytest.param({"name": "X", "entity": "deal", "type": "option"}, "/data/options", id="option-without-options-422"),
    pytest.param({"name": "X", "slug": "erp_id", "entity": "deal", "type": "text"}, "/data/slug", id="slug-taken-for-the-entity-422"),
    pytest.param({"name": "X", "entity": "deal", "type": "text", "required_rules": [{"always": "yes"}]}, "/data/required_rules/0/always", id="rule-always-boolean-422"),
]  # fmt: skip


@pytest.mark.parametrize(("payload", "pointer"), DEFINITION_CASES)
def test_a_bad_definition_is_422_naming_the_field(api, payload, pointer):
    response = api.post("/custom_fields", payload)
    assert response.status_code == 422
    assert pointer in [e["source"]["pointer"] for e in response.json()["errors"]]


def test_update_changes_the_sent_keys_but_not_the_entity(api):
    field = api.get("/custom_fields", filter="entity:contact slug:cpf").json()["data"][0]
    updated = api.put(f"/custom_fields/{field['id']}", {"name": "CPF do titular"})
    assert updated.json()["data"]["name"] == "CPF do titular"
    assert api.put(f"/custom_fields/{field['id']}", {"entity": "deal"}).status_code == 422


def test_delete_is_204_and_forgets_the_values(api, emu):
    contact = api.create("contacts", {"name": "A", "custom_fields": {"cpf": "1", "erp_id": "E"}})
    field = api.get("/custom_fields", filter="entity:contact slug:cpf").json()["data"][0]
    response = api.session.delete(f"{emu.base_url}/custom_fields/{field['id']}", timeout=5)
    assert (response.status_code, response.content) == (204, b"")
    assert api.get(f"/custom_fields/{field['id']}").status_code == 404
    assert api.get(f"/contacts/{contact['id']}").json()["data"]["custom_fields"] == {"erp_id": "E"}
    assert api.post("/contacts", {"name": "B", "custom_fields": {"cpf": "2"}}).status_code == 422


VALUE_CASES = [
    # slug, value, status: text → string, date → YYYY-MM-DD, option → one option,
    # multiple_choice → a list of options
    pytest.param("contrato", "C-1", 201, id="text-accepts-a-string-201"),
    pytest.param("contrato", 1000, 201, id="text-keeps-a-number-as-sent-201"),
    pytest.param("contrato", ["C-1"], 422, id="text-refuses-a-list-422"),
    pytest.param("contrato", True, 422, id="text-refuses-a-boolean-422"),
    pytest.param("inicio", "2026-12-01", 201, id="date-accepts-iso-date-201"),
    pytest.param("inicio", "01/12/2026", 422, id="date-refuses-other-format-422"),
    pytest.param("porte", "M", 201, id="option-accepts-an-option-201"),
    pytest.param("porte", "XL", 422, id="option-refuses-another-value-422"),
    pytest.param("canais", ["email", "fone"], 201, id="multiple-choice-accepts-options-201"),
    pytest.param("canais", "email", 422, id="multiple-choice-refuses-a-non-list-422"),
    pytest.param("canais", ["fax"], 422, id="multiple-choice-refuses-another-value-422"),
    pytest.param("tags", ["a", "nova"], 201, id="allow-new-option-accepts-a-new-value-201"),
]  # fmt: skip


@pytest.mark.parametrize(("slug", "value", "status"), VALUE_CASES)
def test_values_are_checked_against_the_field_type(rich, slug, value, status):
    response = rich.post("/deals", {"name": "D", "custom_fields": {slug: value}})
    assert response.status_code == status, response.text
    if status == 201:
        assert response.json()["data"]["custom_fields"] == {slug: value}


def test_a_new_option_becomes_part_of_the_field(rich):
    rich.create("deals", {"name": "D", "custom_fields": {"tags": ["nova"]}})
    field = rich.get("/custom_fields", filter="slug:tags").json()["data"][0]
    assert field["options"] == ["a", "nova"]


def test_a_blank_value_clears_the_field(rich):
    deal = rich.create(
        "deals", {"name": "D", "custom_fields": {"porte": "M", "inicio": "2026-01-01"}}
    )
    updated = rich.put(f"/deals/{deal['id']}", {"custom_fields": {"porte": "", "inicio": None}})
    assert updated.json()["data"]["custom_fields"] == {}


def test_a_unique_field_refuses_a_value_another_record_has(rich):
    first = rich.create("contacts", {"name": "A", "custom_fields": {"cpf": "111"}})
    response = rich.post("/contacts", {"name": "B", "custom_fields": {"cpf": "111"}})
    assert response.json()["errors"][0]["code"] == "TAKEN"
    assert (
        rich.put(f"/contacts/{first['id']}", {"custom_fields": {"cpf": "111"}}).status_code == 200
    )


def test_an_always_required_field_is_needed_on_create(rich):
    response = rich.post("/contacts", {"name": "A"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["source"]["pointer"] == "/data/custom_fields/cpf"


def test_an_always_required_field_is_not_needed_by_unrelated_updates_but_cannot_be_cleared(rich):
    contact = rich.create("contacts", {"name": "A", "custom_fields": {"cpf": "1"}})
    assert rich.put(f"/contacts/{contact['id']}", {"name": "B"}).status_code == 200
    cleared = rich.put(f"/contacts/{contact['id']}", {"custom_fields": {"cpf": None}})
    assert cleared.status_code == 422


def test_a_stage_rule_requires_the_field_only_in_that_stage(rich):
    deal = rich.create("deals", {"name": "D"})
    moved = rich.put(f"/deals/{deal['id']}", {"stage_id": LAST_STAGE})
    assert moved.status_code == 422
    assert moved.json()["errors"][0]["source"]["pointer"] == "/data/custom_fields/contrato"
    payload = {"stage_id": LAST_STAGE, "custom_fields": {"contrato": "C-9"}}
    assert rich.put(f"/deals/{deal['id']}", payload).status_code == 200
    assert rich.post("/deals", {"name": "E", "stage_id": LAST_STAGE}).status_code == 422


def test_fixtures_in_the_earlier_label_required_form_still_load(make_api, make_emulator):
    legacy = [
        {"id": "ab0000000000000000000001", "slug": "valor", "label": "Valor", "entity": "deal", "type": "number"},
        {"id": "ab0000000000000000000002", "slug": "canais", "label": "Canais", "entity": "deal", "type": "multiple_option", "options": ["a"], "required": True},
    ]  # fmt: skip
    api = make_api(
        make_emulator(rate_limit=0, fixtures={**DEFAULT_FIXTURES, "custom_fields": legacy})
    )
    fields = api.get("/custom_fields").json()["data"]
    assert [(f["name"], f["type"], f["required_rules"]) for f in fields] == [
        ("Valor", "text", []),
        ("Canais", "multiple_choice", [{"property": None, "value": None, "always": True}]),
    ]
