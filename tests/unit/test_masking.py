"""Personal data in `plan --show` payloads: masked with shape and a hint; ids and numbers kept."""

import pytest

from dbt_rdcrm.report.events import ModelFinished, RunFinished
from dbt_rdcrm.report.masking import (
    PLANNED_PARENT,
    mask_email,
    mask_payload,
    mask_phone,
    mask_text,
    mask_url,
    masking_emit,
)
from dbt_rdcrm.report.results import PLANNED_ID, ModelResult, RunResult


@pytest.mark.parametrize(
    ("mask", "value", "expected"),
    [
        pytest.param(mask_email, "maria.silva@example.com", "m***@example.com", id="email"),
        pytest.param(mask_email, "not-an-email", "n***", id="email-malformed"),
        pytest.param(mask_phone, "+55 11 91234-5678", "+55 ** *****-**78", id="phone-intl"),
        pytest.param(mask_phone, "(11) 91234-5678", "(**) *****-**78", id="phone-local"),
        pytest.param(mask_phone, "11912345678", "*********78", id="phone-digits-only"),
        pytest.param(mask_text, "Maria Silva", "M*** S***", id="name"),
        pytest.param(
            mask_text,
            "Capital de giro - Maria",
            "C*** d*** g*** - M***",
            id="text-keeps-punctuation",
        ),
        pytest.param(mask_text, "123.456.789-00", "***.***.***-00", id="document-number"),
        pytest.param(mask_text, "Cliente desde 2019", "C*** d*** **19", id="text-with-year"),
        pytest.param(mask_text, "ana@example.com", "a***@example.com", id="email-in-text"),
        pytest.param(mask_text, "", "", id="empty"),
        pytest.param(mask_url, "https://empresaabc.com.br", "https://e***.com.br", id="url"),
        pytest.param(
            mask_url, "https://x.com/people/ana", "https://x***.com/***", id="url-with-path"
        ),
        pytest.param(mask_url, "www.site.org", "w***.site.org", id="url-without-scheme"),
    ],
)
def test_masks(mask, value, expected):
    assert mask(value) == expected


def test_payload_masks_personal_fields_and_keeps_ids_statuses_dates_and_numbers():
    data = {
        "name": "Maria Silva",
        "emails": [{"email": "maria.silva@example.com"}],
        "phones": [{"phone": "+55 11 91234-5678"}],
        "job_title": "Diretora Financeira",
        "birthday": "1985-04-12",
        "organization_id": "6621a1b2c3d4e5f678905678",
        "contact_ids": ["6621a1b2c3d4e5f678900009"],
        "status": "ongoing",
        "expected_close_date": "2025-01-31",
        "one_time_price": 150000,
        "rating": 4,
        "custom_fields": {"cpf": "123.456.789-00", "score": 7.5, "vip": True, "tags": ["ouro"]},
    }
    assert mask_payload(data) == {
        "name": "M*** S***",
        "emails": [{"email": "m***@example.com"}],
        "phones": [{"phone": "+55 ** *****-**78"}],
        "job_title": "D*** F***",
        "birthday": "****-**-**",
        "organization_id": "6621a1b2c3d4e5f678905678",
        "contact_ids": ["6621a1b2c3d4e5f678900009"],
        "status": "ongoing",
        "expected_close_date": "2025-01-31",
        "one_time_price": 150000,
        "rating": 4,
        "custom_fields": {"cpf": "***.***.***-00", "score": 7.5, "vip": True, "tags": ["o***"]},
    }
    assert data["name"] == "Maria Silva"  # the original is left alone


def _run_with_sample(data):
    model = ModelResult("crm_contacts", "model.p.crm_contacts", "contacts")
    model.add_sample("create", "C001", None, data, limit=1)
    run = RunResult(
        "r", "plan", None, "now", "http://127.0.0.1/crm/v2", 120, dry_run=True, models=[model]
    )
    return model, run


@pytest.mark.parametrize("unmasked", [False, True], ids=["masked", "unmasked"])
def test_samples_are_masked_before_reporters_see_them(unmasked):
    seen = []
    emit = masking_emit(seen.append, unmasked=unmasked)
    model, run = _run_with_sample({"name": "Maria Silva", "organization_id": PLANNED_ID})
    emit(ModelFinished(model))
    emit(RunFinished(run))
    data = model.samples["create"][0]["data"]
    assert data["name"] == ("Maria Silva" if unmasked else "M*** S***")
    assert data["organization_id"] == PLANNED_PARENT
    assert run.samples_masked is not unmasked
    assert len(seen) == 2
