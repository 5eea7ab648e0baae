"""Contacts, organizations and deals: create, read, partial update, stored shapes.

Reference pages: crm-v2-create-contact, crm-v2-update-contact, crm-v2-create-organization,
crm-v2-create-deal, crm-v2-update-deal (fields and enums), crm-v2-legal-bases.
"""

from __future__ import annotations

import re

import pytest

from dbt_rdcrm.emulator.fixtures import DEFAULT_FIXTURES

USER_ID = DEFAULT_FIXTURES["users"][0]["id"]
PIPELINE_ID = DEFAULT_FIXTURES["pipelines"][0]["id"]
FIRST_STAGE_ID = DEFAULT_FIXTURES["pipelines"][0]["stages"][0]["id"]
SECOND_STAGE_ID = DEFAULT_FIXTURES["pipelines"][0]["stages"][1]["id"]
OTHER_PIPELINE_ID = DEFAULT_FIXTURES["pipelines"][1]["id"]
OTHER_FIRST_STAGE_ID = DEFAULT_FIXTURES["pipelines"][1]["stages"][0]["id"]
OTHER_SECOND_STAGE_ID = DEFAULT_FIXTURES["pipelines"][1]["stages"][1]["id"]
ORG_ID = "6621a1b2c3d4e5f678905678"
SEGMENT_IDS = [s["id"] for s in DEFAULT_FIXTURES["segments"]]
OBJECT_ID = re.compile(r"[0-9a-f]{24}")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")

MINIMAL = {
    "contacts": {"name": "Ana Souza"},
    "organizations": {"name": "Nova Empresa"},
    "deals": {"name": "Venda 1"},
}
SHAPES = {  # the response fields of each create page, in the page's order
    "contacts": [  # crm-v2-create-contact
        "id", "name", "job_title", "emails", "phones", "birthday", "social_profiles",
        "organization_id", "legal_bases", "custom_fields", "created_at", "updated_at",
    ],
    "organizations": [  # crm-v2-create-organization (no phones in v2)
        "id", "name", "description", "url", "address", "segment_ids", "follower_ids",
        "owner_id", "custom_fields", "created_at", "updated_at",
    ],
    "deals": [  # crm-v2-create-deal
        "id", "name", "recurrence_price", "one_time_price", "total_price",
        "expected_close_date", "rating", "status", "closed_at", "pipeline_id", "stage_id",
        "owner_id", "source_id", "campaign_id", "lost_reason_id", "organization_id",
        "contact_ids", "custom_fields", "created_at", "updated_at",
    ],
}  # fmt: skip
SOURCE_ID = DEFAULT_FIXTURES["sources"][0]["id"]
LOST_REASON_ID = DEFAULT_FIXTURES["lost_reasons"][0]["id"]
RESOURCES = pytest.mark.parametrize("resource", ["contacts", "organizations", "deals"])


@RESOURCES
def test_create_answers_201_with_the_record_in_data(api, resource):
    response = api.post(f"/{resource}", MINIMAL[resource])
    assert response.status_code == 201
    assert response.json()["data"]["name"] == MINIMAL[resource]["name"]


@RESOURCES
def test_created_record_has_a_24_hex_id_and_millisecond_utc_timestamps(api, resource):
    record = api.create(resource, MINIMAL[resource])
    assert OBJECT_ID.fullmatch(record["id"])
    assert TIMESTAMP.fullmatch(record["created_at"])
    assert record["updated_at"] == record["created_at"]


@RESOURCES
def test_created_record_has_the_documented_shape(api, resource):
    assert list(api.create(resource, MINIMAL[resource])) == SHAPES[resource]


@RESOURCES
def test_get_by_id_answers_200_with_the_stored_record(api, resource):
    record = api.create(resource, MINIMAL[resource])
    response = api.get(f"/{resource}/{record['id']}")
    assert response.status_code == 200
    assert response.json() == {"data": record}


@RESOURCES
def test_get_unknown_id_is_404_in_the_errors_shape(api, resource):
    response = api.get(f"/{resource}/0123456789abcdef01234567")
    assert response.status_code == 404
    assert response.json()["errors"][0]["status"] == "404"


@RESOURCES
def test_put_unknown_id_is_404(api, resource):
    response = api.put(f"/{resource}/0123456789abcdef01234567", {"name": "x"})
    assert response.status_code == 404


def test_ids_are_unique_across_creates(api):
    ids = {api.create("contacts", {"name": f"c{i}"})["id"] for i in range(20)}
    assert len(ids) == 20


def test_created_at_strictly_increases_in_creation_order(api):
    stamps = [api.create("contacts", {"name": f"c{i}"})["created_at"] for i in range(5)]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == 5


STORED_AS_SENT = [
    pytest.param("contacts", {
        "name": "Ana Souza", "job_title": "CFO", "birthday": "1990-02-28",
        "organization_id": ORG_ID, "emails": [{"email": "ana@example.com"}],
        "phones": [{"phone": "+55 11 91234-5678", "type": "mobile"}, {"phone": "1", "type": "fax"}],
        "social_profiles": [{"type": "linkedin", "username": "ana"}, {"type": "skype", "username": "a.s"}],
        "legal_bases": [
            {"category": "communications", "type": "consent", "status": "granted"},
            {"category": "data_processing", "type": "vital_interest", "status": "declined"},
        ],
        "custom_fields": {"cpf": "123.456.789-09"},
    }, id="crm-v2-create-contact-every-field"),
    pytest.param("contacts", {"name": "Ana", "birthday": "0000-02-29"}, id="crm-v2-create-contact-birthday-without-year"),
    pytest.param("organizations", {
        "name": "Nova", "description": "Atacado", "url": "https://nova.com.br",
        "address": {"line": "Rua A, 1", "latitude": "-23.5", "longitude": "-46.6"},
        "segment_ids": SEGMENT_IDS, "follower_ids": [USER_ID], "owner_id": USER_ID,
        "custom_fields": {"cnpj": "1"},
    }, id="crm-v2-create-organization-every-field"),
    pytest.param("deals", {
        "name": "Venda", "recurrence_price": 100.5, "one_time_price": 1000,
        "expected_close_date": "2026-12-31", "rating": 3, "pipeline_id": PIPELINE_ID,
        "stage_id": SECOND_STAGE_ID, "owner_id": USER_ID, "source_id": SOURCE_ID,
        "campaign_id": DEFAULT_FIXTURES["campaigns"][0]["id"], "lost_reason_id": LOST_REASON_ID,
        "organization_id": ORG_ID, "custom_fields": {"valor_credito": "1000"},
    }, id="crm-v2-create-deal-every-field"),
]  # fmt: skip


@pytest.mark.parametrize(("resource", "payload"), STORED_AS_SENT)
def test_every_documented_field_is_stored_and_returned_as_sent(api, resource, payload):
    record = api.create(resource, payload)
    assert {key: record[key] for key in payload} == payload
    assert api.get(f"/{resource}/{record['id']}").json()["data"] == record


DROPPED = [
    # undocumented attributes are ignored, not refused: the response simply lacks them
    pytest.param("organizations", {"name": "Org", "phones": [{"phone": "+55 11 3333-4444"}]}, "phones", id="organization-phones-are-not-v2"),
    pytest.param("deals", {"name": "D", "amount": 100}, "amount", id="deal-amount-is-not-v2"),
    pytest.param("contacts", {"name": "A", "email": "a@b.com"}, "email", id="contact-unknown-key"),
    pytest.param("deals", {"name": "D", "total_price": 999, "closed_at": "2026-01-01T00:00:00.000Z"}, "total_price", id="deal-read-only-fields"),
]  # fmt: skip


@pytest.mark.parametrize(("resource", "payload", "key"), DROPPED)
def test_undocumented_attributes_are_dropped_not_refused(api, resource, payload, key):
    response = api.post(f"/{resource}", payload)
    assert response.status_code == 201, response.text
    record = response.json()["data"]
    assert list(record) == SHAPES[resource]
    assert key not in record or record[key] != payload[key]


def test_unknown_keys_inside_nested_objects_are_dropped(api):
    emails = [{"email": "a@b.com", "primary": True}]
    assert api.create("contacts", {"name": "A", "emails": emails})["emails"] == [
        {"email": "a@b.com"}
    ]


def test_deal_total_price_is_one_time_plus_recurrence(api):
    deal = api.create("deals", {"name": "V", "one_time_price": 1000, "recurrence_price": 250.5})
    assert deal["total_price"] == 1250.5
    updated = api.put(f"/deals/{deal['id']}", {"recurrence_price": None}).json()["data"]
    assert updated["total_price"] == 1000


@pytest.mark.parametrize("status", ["won", "lost"])
def test_deal_closed_at_is_set_when_the_status_becomes_won_or_lost(api, status):
    deal = api.create("deals", {"name": "V"})
    assert deal["closed_at"] is None
    closed = api.put(f"/deals/{deal['id']}", {"status": status}).json()["data"]
    assert closed["closed_at"] == closed["updated_at"]
    again = api.put(f"/deals/{deal['id']}", {"name": "V2"}).json()["data"]
    assert again["closed_at"] == closed["closed_at"]


def test_deal_closed_at_is_cleared_when_it_reopens(api):
    deal = api.create("deals", {"name": "V"})
    api.put(f"/deals/{deal['id']}", {"status": "lost", "lost_reason_id": LOST_REASON_ID})
    reopened = api.put(f"/deals/{deal['id']}", {"status": "ongoing"}).json()["data"]
    assert (reopened["closed_at"], reopened["lost_reason_id"]) == (None, LOST_REASON_ID)


def test_put_changes_only_the_sent_keys(api):
    record = api.create("contacts", {"name": "Ana", "job_title": "CFO"})
    updated = api.put(f"/contacts/{record['id']}", {"job_title": "CEO"}).json()["data"]
    assert (updated["name"], updated["job_title"]) == ("Ana", "CEO")


def test_put_answers_200_with_the_updated_record(api):
    record = api.create("contacts", {"name": "Ana"})
    response = api.put(f"/contacts/{record['id']}", {"job_title": "CEO"})
    assert response.status_code == 200
    assert response.json()["data"] == api.get(f"/contacts/{record['id']}").json()["data"]


def test_put_replaces_arrays_whole(api):
    emails = [{"email": "a@example.com"}, {"email": "b@example.com"}]
    record = api.create("contacts", {"name": "Ana", "emails": emails})
    updated = api.put(f"/contacts/{record['id']}", {"emails": [{"email": "c@example.com"}]})
    assert updated.json()["data"]["emails"] == [{"email": "c@example.com"}]


def test_put_merges_custom_fields_key_by_key(api):
    record = api.create("contacts", {"name": "Ana", "custom_fields": {"cpf": "1", "erp_id": "A"}})
    updated = api.put(f"/contacts/{record['id']}", {"custom_fields": {"erp_id": "B"}})
    assert updated.json()["data"]["custom_fields"] == {"cpf": "1", "erp_id": "B"}


def test_put_null_clears_a_field(api):
    record = api.create("contacts", {"name": "Ana", "job_title": "CFO"})
    updated = api.put(f"/contacts/{record['id']}", {"job_title": None})
    assert updated.json()["data"]["job_title"] is None


def test_put_bumps_updated_at_and_keeps_created_at(api):
    record = api.create("contacts", {"name": "Ana"})
    updated = api.put(f"/contacts/{record['id']}", {"job_title": "CEO"}).json()["data"]
    assert updated["created_at"] == record["created_at"]
    assert updated["updated_at"] > record["updated_at"]


def test_deal_without_stage_goes_to_the_default_pipeline_first_stage(api):
    deal = api.create("deals", {"name": "Venda"})
    assert (deal["pipeline_id"], deal["stage_id"]) == (PIPELINE_ID, FIRST_STAGE_ID)


def test_deal_without_owner_belongs_to_the_token_user(api):
    assert api.create("deals", {"name": "Venda"})["owner_id"] == USER_ID


def test_deal_status_defaults_to_ongoing(api):
    assert api.create("deals", {"name": "Venda"})["status"] == "ongoing"


def test_deal_with_only_a_stage_takes_the_stage_pipeline(api):
    deal = api.create("deals", {"name": "Venda", "stage_id": OTHER_SECOND_STAGE_ID})
    assert (deal["pipeline_id"], deal["stage_id"]) == (OTHER_PIPELINE_ID, OTHER_SECOND_STAGE_ID)


def test_deal_with_only_a_pipeline_takes_its_first_stage(api):
    deal = api.create("deals", {"name": "Venda", "pipeline_id": OTHER_PIPELINE_ID})
    assert (deal["pipeline_id"], deal["stage_id"]) == (OTHER_PIPELINE_ID, OTHER_FIRST_STAGE_ID)


def test_deal_update_to_a_stage_of_another_pipeline_moves_the_pipeline(api):
    deal = api.create("deals", {"name": "Venda"})
    moved = api.put(f"/deals/{deal['id']}", {"stage_id": OTHER_FIRST_STAGE_ID}).json()["data"]
    assert moved["pipeline_id"] == OTHER_PIPELINE_ID


def test_deal_update_may_set_any_valid_status(api):
    deal = api.create("deals", {"name": "Venda"})
    assert api.put(f"/deals/{deal['id']}", {"status": "won"}).json()["data"]["status"] == "won"


def test_documented_example_ids_work_verbatim(api):
    contact = api.create("contacts", {"name": "Ana", "organization_id": ORG_ID})
    deal = {"name": "Venda", "stage_id": FIRST_STAGE_ID, "contact_ids": [contact["id"]]}
    assert api.create("deals", deal)["organization_id"] is None


def test_organization_stores_segments_and_owner(api):
    payload = {"name": "Nova", "owner_id": USER_ID, "segment_ids": SEGMENT_IDS}
    record = api.create("organizations", payload)
    assert (record["owner_id"], record["segment_ids"]) == (USER_ID, SEGMENT_IDS)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("Empresa Exemplo Ltda", id="same-case"),
        pytest.param("EMPRESA exemplo LTDA", id="other-case"),
    ],
)
def test_organization_duplicate_name_on_create_is_400_with_detail(api, name):
    response = api.post("/organizations", {"name": name})
    assert response.status_code == 400
    assert response.json() == {"detail": "Nome Empresa já cadastrada."}


def test_organization_rename_to_an_existing_name_is_400(api):
    response = api.put(f"/organizations/{ORG_ID}", {"name": "outra empresa sa"})
    assert response.status_code == 400
    assert response.json() == {"detail": "Nome Empresa já cadastrada."}


def test_organization_rename_to_its_own_name_in_another_case_is_allowed(api):
    response = api.put(f"/organizations/{ORG_ID}", {"name": "EMPRESA EXEMPLO LTDA"})
    assert response.status_code == 200


def test_organization_old_name_is_free_after_a_rename(api):
    api.put(f"/organizations/{ORG_ID}", {"name": "Renomeada"})
    assert api.post("/organizations", {"name": "Empresa Exemplo Ltda"}).status_code == 201
