"""Validation: each refusal is a 422 naming its field, or a 400 for an unusable body.

Reference pages: crm-v2-introduction ("Status de retorno": 400 malformed, 422 unprocessable;
"Tratamento de erros": the errors envelope), the create/update pages of each resource for the
fields and enums (crm-v2-create-contact, crm-v2-create-organization, crm-v2-create-deal,
crm-v2-legal-bases). Ids, formats and the 422 details follow docs/emulator.md.
"""

from __future__ import annotations

import pytest
import requests

from dbt_rdcrm.emulator.fixtures import DEFAULT_FIXTURES

ORG_ID = "6621a1b2c3d4e5f678905678"
USER_ID = DEFAULT_FIXTURES["users"][0]["id"]
PIPELINE_ID = DEFAULT_FIXTURES["pipelines"][0]["id"]
OTHER_STAGE_ID = DEFAULT_FIXTURES["pipelines"][1]["stages"][0]["id"]
UNKNOWN_ID = "0123456789abcdef01234567"
NOT_HEX = "not-an-object-id"

CREATE_CASES = [
    # resource, payload, pointer, code
    pytest.param("contacts", {}, "/data/name", "REQUIRED", id="contact-name-missing-422"),
    pytest.param("contacts", {"name": "  "}, "/data/name", "REQUIRED", id="contact-name-blank-422"),
    pytest.param("contacts", {"name": 42}, "/data/name", "INVALID_TYPE", id="contact-name-not-string-422"),
    pytest.param("contacts", {"name": "A", "organization_id": NOT_HEX}, "/data/organization_id", "INVALID_FORMAT", id="contact-organization-id-not-hex-422"),
    pytest.param("contacts", {"name": "A", "organization_id": UNKNOWN_ID}, "/data/organization_id", "NOT_FOUND", id="contact-organization-id-unknown-422"),
    pytest.param("contacts", {"name": "A", "job_title": 3}, "/data/job_title", "INVALID_TYPE", id="contact-job-title-not-string-422"),
    pytest.param("contacts", {"name": "A", "birthday": "28/02/1990"}, "/data/birthday", "INVALID_FORMAT", id="contact-birthday-not-iso-422"),
    pytest.param("contacts", {"name": "A", "birthday": "2023-02-30"}, "/data/birthday", "INVALID_FORMAT", id="contact-birthday-not-a-real-date-422"),
    pytest.param("contacts", {"name": "A", "emails": "a@b.com"}, "/data/emails", "INVALID_TYPE", id="contact-emails-not-a-list-422"),
    pytest.param("contacts", {"name": "A", "emails": ["a@b.com"]}, "/data/emails/0", "INVALID_TYPE", id="contact-email-item-not-object-422"),
    pytest.param("contacts", {"name": "A", "emails": [{}]}, "/data/emails/0/email", "REQUIRED", id="contact-email-item-without-email-422"),
    pytest.param("contacts", {"name": "A", "emails": [{"email": "nope"}]}, "/data/emails/0/email", "INVALID_FORMAT", id="contact-email-implausible-422"),
    pytest.param("contacts", {"name": "A", "phones": [{"type": "work"}]}, "/data/phones/0/phone", "REQUIRED", id="contact-phone-without-number-422"),
    pytest.param("contacts", {"name": "A", "custom_fields": {"cnpj": "1"}}, "/data/custom_fields/cnpj", "UNKNOWN_FIELD", id="contact-custom-field-of-another-entity-422"),
    pytest.param("contacts", {"name": "A", "custom_fields": {"cpf": ["1"]}}, "/data/custom_fields/cpf", "INVALID_VALUE", id="contact-text-custom-field-given-list-422"),
    pytest.param("contacts", {"name": "A", "birthday": "0000-13-01"}, "/data/birthday", "INVALID_FORMAT", id="contact-birthday-without-year-bad-month-422"),
    pytest.param("contacts", {"name": "A", "phones": [{"phone": "1", "type": "cell"}]}, "/data/phones/0/type", "INVALID_VALUE", id="crm-v2-create-contact-phone-type-enum-422"),
    pytest.param("contacts", {"name": "A", "social_profiles": [{"type": "twitter", "username": "a"}]}, "/data/social_profiles/0/type", "INVALID_VALUE", id="crm-v2-create-contact-social-type-enum-422"),
    pytest.param("contacts", {"name": "A", "social_profiles": [{"type": "skype"}]}, "/data/social_profiles/0/username", "REQUIRED", id="contact-social-profile-without-username-422"),
    pytest.param("contacts", {"name": "A", "legal_bases": [{"category": "marketing", "type": "consent", "status": "granted"}]}, "/data/legal_bases/0/category", "INVALID_VALUE", id="crm-v2-legal-bases-category-enum-422"),
    pytest.param("contacts", {"name": "A", "legal_bases": [{"category": "communications", "type": "marketing_email", "status": "granted"}]}, "/data/legal_bases/0/type", "INVALID_VALUE", id="crm-v2-legal-bases-type-enum-422"),
    pytest.param("contacts", {"name": "A", "legal_bases": [{"category": "communications", "type": "consent", "status": "active"}]}, "/data/legal_bases/0/status", "INVALID_VALUE", id="crm-v2-legal-bases-status-enum-422"),
    pytest.param("organizations", {"name": "N", "address": "Rua A"}, "/data/address", "INVALID_TYPE", id="organization-address-not-object-422"),
    pytest.param("organizations", {"name": "N", "address": {"line": 1}}, "/data/address/line", "INVALID_TYPE", id="organization-address-line-not-string-422"),
    pytest.param("organizations", {"name": "N", "follower_ids": [UNKNOWN_ID]}, "/data/follower_ids/0", "NOT_FOUND", id="organization-follower-id-unknown-422"),
    pytest.param("deals", {"name": "D", "source_id": UNKNOWN_ID}, "/data/source_id", "NOT_FOUND", id="deal-source-id-unknown-422"),
    pytest.param("deals", {"name": "D", "lost_reason_id": NOT_HEX}, "/data/lost_reason_id", "INVALID_FORMAT", id="deal-lost-reason-id-not-hex-422"),
    pytest.param("contacts", {"name": "A", "custom_fields": []}, "/data/custom_fields", "INVALID_TYPE", id="contact-custom-fields-not-object-422"),
    pytest.param("organizations", {"name": "N", "owner_id": UNKNOWN_ID}, "/data/owner_id", "NOT_FOUND", id="organization-owner-id-unknown-422"),
    pytest.param("organizations", {"name": "N", "segment_ids": [NOT_HEX]}, "/data/segment_ids/0", "INVALID_FORMAT", id="organization-segment-id-not-hex-422"),
    pytest.param("organizations", {"name": "N", "segment_ids": [UNKNOWN_ID]}, "/data/segment_ids/0", "NOT_FOUND", id="organization-segment-id-unknown-422"),
    pytest.param("organizations", {"name": "N", "url": ["x"]}, "/data/url", "INVALID_TYPE", id="organization-url-not-string-422"),
    pytest.param("deals", {"name": "D", "status": "won"}, "/data/status", "INVALID_VALUE", id="deal-status-won-on-create-422"),
    pytest.param("deals", {"name": "D", "status": "closed"}, "/data/status", "INVALID_VALUE", id="deal-status-unknown-422"),
    pytest.param("deals", {"name": "D", "contact_ids": "x"}, "/data/contact_ids", "INVALID_TYPE", id="deal-contact-ids-not-a-list-422"),
    pytest.param("deals", {"name": "D", "contact_ids": [UNKNOWN_ID]}, "/data/contact_ids/0", "NOT_FOUND", id="deal-contact-id-unknown-422"),
    pytest.param("deals", {"name": "D", "organization_id": UNKNOWN_ID}, "/data/organization_id", "NOT_FOUND", id="deal-organization-id-unknown-422"),
    pytest.param("deals", {"name": "D", "pipeline_id": UNKNOWN_ID}, "/data/pipeline_id", "NOT_FOUND", id="deal-pipeline-id-unknown-422"),
    pytest.param("deals", {"name": "D", "stage_id": UNKNOWN_ID}, "/data/stage_id", "NOT_FOUND", id="deal-stage-id-unknown-422"),
    pytest.param("deals", {"name": "D", "pipeline_id": PIPELINE_ID, "stage_id": OTHER_STAGE_ID}, "/data/stage_id", "INVALID_VALUE", id="deal-stage-not-in-pipeline-422"),
    pytest.param("deals", {"name": "D", "owner_id": UNKNOWN_ID}, "/data/owner_id", "NOT_FOUND", id="deal-owner-id-unknown-422"),
    pytest.param("deals", {"name": "D", "campaign_id": UNKNOWN_ID}, "/data/campaign_id", "NOT_FOUND", id="deal-campaign-id-unknown-422"),
    pytest.param("deals", {"name": "D", "expected_close_date": "2026-13-01"}, "/data/expected_close_date", "INVALID_FORMAT", id="deal-expected-close-date-invalid-422"),
    pytest.param("deals", {"name": "D", "rating": 0}, "/data/rating", "INVALID_VALUE", id="deal-rating-below-1-422"),
    pytest.param("deals", {"name": "D", "rating": 6}, "/data/rating", "INVALID_VALUE", id="deal-rating-above-5-422"),
    pytest.param("deals", {"name": "D", "rating": 4.5}, "/data/rating", "INVALID_VALUE", id="deal-rating-not-integer-422"),
    pytest.param("deals", {"name": "D", "one_time_price": "100"}, "/data/one_time_price", "INVALID_TYPE", id="deal-one-time-price-string-422"),
    pytest.param("deals", {"name": "D", "recurrence_price": True}, "/data/recurrence_price", "INVALID_TYPE", id="deal-recurrence-price-boolean-422"),
]  # fmt: skip


@pytest.mark.parametrize(("resource", "payload", "pointer", "code"), CREATE_CASES)
def test_create_refusal_names_the_field(api, resource, payload, pointer, code):
    response = api.post(f"/{resource}", payload)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [(e["source"]["pointer"], e["code"]) for e in errors] == [(pointer, code)]
    assert errors[0]["status"] == "422"


@pytest.mark.parametrize(
    "field",
    [
        pytest.param("owner_id", id="deal-owner-id-not-hex-422"),
        pytest.param("campaign_id", id="deal-campaign-id-not-hex-422"),
        pytest.param("stage_id", id="deal-stage-id-not-hex-422"),
    ],
)
def test_malformed_id_detail_matches_the_real_api(api, field):
    response = api.post("/deals", {"name": "D", field: "123"})
    assert response.json()["errors"][0]["detail"] == (
        f"{field} must be BSON::ObjectId or is in invalid format"
    )


def test_every_problem_is_reported_at_once(api):
    payload = {"rating": 9, "owner_id": NOT_HEX, "source_id": UNKNOWN_ID}
    pointers = {e["source"]["pointer"] for e in api.post("/deals", payload).json()["errors"]}
    assert pointers == {"/data/name", "/data/rating", "/data/owner_id", "/data/source_id"}


def test_refused_create_stores_nothing(api, emu):
    api.post("/contacts", {"name": "A", "birthday": "never"})
    assert emu.state()["contacts"] == []


UPDATE_CASES = [
    # resource, payload, expected status
    # crm-v2-create-deal allows only ongoing on create; crm-v2-update-deal any documented status
    pytest.param("deals", {"status": "won"}, 200, id="deal-update-status-won-200"),
    pytest.param("deals", {"status": "lost", "lost_reason_id": DEFAULT_FIXTURES["lost_reasons"][0]["id"]}, 200, id="deal-update-lost-with-reason-200"),
    pytest.param("deals", {"status": "closed"}, 422, id="deal-update-status-unknown-422"),
    pytest.param("deals", {"rating": 3}, 200, id="deal-update-without-name-200"),
    pytest.param("deals", {"name": ""}, 422, id="deal-update-blank-name-422"),
    pytest.param("deals", {"stage_id": None}, 422, id="deal-update-null-stage-422"),
    pytest.param("deals", {"owner_id": None}, 422, id="deal-update-null-owner-422"),
    pytest.param("deals", {"stage_id": OTHER_STAGE_ID, "pipeline_id": PIPELINE_ID}, 422, id="deal-update-stage-not-in-pipeline-422"),
    pytest.param("contacts", {"birthday": "1990-02-29"}, 422, id="contact-update-invalid-date-422"),
    pytest.param("contacts", {"name": None}, 422, id="contact-update-null-name-422"),
    pytest.param("contacts", {"id": UNKNOWN_ID}, 200, id="contact-update-read-only-id-is-ignored-200"),
    pytest.param("organizations", {"segment_ids": None}, 200, id="organization-update-null-list-clears-200"),
]  # fmt: skip


@pytest.mark.parametrize(("resource", "payload", "status"), UPDATE_CASES)
def test_update_is_validated_like_create_except_name_and_status(api, resource, payload, status):
    record = api.create(resource, {"name": "Original"})
    assert api.put(f"/{resource}/{record['id']}", payload).status_code == status


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{not json", id="malformed-json-400"),
        pytest.param(b"", id="empty-body-400"),
        pytest.param(b'{"name": "A"}', id="body-without-data-400"),
        pytest.param(b'{"data": ["A"]}', id="data-not-an-object-400"),
        pytest.param(b"[]", id="body-not-an-object-400"),
    ],
)
def test_unusable_body_is_400_in_the_errors_shape(emu, body):
    response = requests.post(
        f"{emu.base_url}/contacts",
        data=body,
        headers={"Authorization": "Bearer emulator-token", "Content-Type": "application/json"},
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["status"] == "400"
