"""Rows become v2 payloads; values the CRM would surely refuse are rejected with a reason."""

import datetime as dt
from decimal import Decimal

import pytest

from dbt_rdcrm.config.fields import Mode
from dbt_rdcrm.config.spec_parsing import parse_sync
from dbt_rdcrm.sync.mapper import RowRejected, build_payload, check_create

OID = "6621a1b2c3d4e5f678905678"
OID2 = "6621a1b2c3d4e5f678900001"


def spec(mode, mapping=None, values=None, links=None):
    raw = {"mode": mode, "key": "k", "mapping": mapping or {}}
    if values:
        raw["values"] = values
    if links:
        raw["links"] = links
    parsed, problems = parse_sync("m", "model.p.m", raw, "models.m.config.meta.rdcrm")
    assert not problems, problems
    return parsed


def test_contact_fields_take_their_v2_shapes():
    s = spec(
        "contacts",
        {
            "n": "name",
            "e": "email",
            "p": "phone",
            "b": "birthday",
            "o": "organization_id",
            "cpf": "@cpf",
        },
    )
    data, record_id = build_payload(
        s,
        {
            "n": "Maria",
            "e": "m@x.com",
            "p": "+55 11 1",
            "b": dt.date(1990, 5, 17),
            "o": OID,
            "cpf": "1",
        },
    )
    assert record_id is None
    assert data == {
        "name": "Maria",
        "emails": [{"email": "m@x.com"}],
        "phones": [{"phone": "+55 11 1"}],
        "birthday": "1990-05-17",
        "organization_id": OID,
        "custom_fields": {"cpf": "1"},
    }


def test_organization_website_becomes_url_and_segments_split_text():
    s = spec("organizations", {"n": "name", "w": "website", "s": "segment_ids"})
    data, _ = build_payload(s, {"n": "ACME", "w": "https://a.com", "s": f"{OID}, {OID2}"})
    assert data == {"name": "ACME", "url": "https://a.com", "segment_ids": [OID, OID2]}


def test_deal_contact_id_becomes_a_list_and_decimals_become_numbers():
    s = spec(
        "deals",
        {
            "n": "name",
            "c": "contact_id",
            "v": "one_time_price",
            "amt": "@valor",
            "d": "expected_close_date",
        },
    )
    data, _ = build_payload(
        s,
        {
            "n": "D",
            "c": OID,
            "v": Decimal("10.50"),
            "amt": Decimal("150000.00"),
            "d": dt.datetime(2026, 12, 1, 15, 0),
        },
    )
    assert data == {
        "name": "D",
        "contact_ids": [OID],
        "one_time_price": 10.5,
        "expected_close_date": "2026-12-01",
        "custom_fields": {"valor": 150000},
    }


def test_null_values_are_not_sent():
    s = spec("contacts", {"n": "name", "j": "job_title", "c": "@cpf"})
    data, _ = build_payload(s, {"n": "A", "j": None, "c": None})
    assert data == {"name": "A"}


def test_record_id_column_addresses_the_update():
    s = spec("organizations", {"i": "_id", "w": "website"})
    assert build_payload(s, {"i": OID.upper(), "w": "x"}) == ({"url": "x"}, OID)


def test_constants_and_templates_fill_fields():
    s = spec("deals", values={"status": "ongoing", "name": "[[ first ]] [[ last ]]"})
    data, _ = build_payload(s, {"first": "Ana", "last": None})
    assert data == {"status": "ongoing", "name": "Ana"}


def test_links_fill_ids_from_the_state():
    s = spec("deals", {"n": "name"}, links={"organization_id": {"model": "o", "column": "oc"}})
    data, _ = build_payload(s, {"n": "D", "oc": "ABC"}, {"organization_id": OID})
    assert data == {"name": "D", "organization_id": OID}


@pytest.mark.parametrize(
    ("mode", "mapping", "row", "reason"),
    [
        pytest.param(
            "contacts",
            {"o": "organization_id"},
            {"o": "123"},
            "organization_id must be a 24-character hexadecimal CRM id",
            id="bad-id",
        ),
        pytest.param(
            "contacts",
            {"e": "email"},
            {"e": "not-an-email"},
            "email is not a valid e-mail address",
            id="bad-email",
        ),
        pytest.param(
            "deals",
            {"r": "rating"},
            {"r": 6},
            "rating must be an integer from 1 to 5",
            id="rating-out-of-range",
        ),
        pytest.param(
            "deals",
            {"s": "status"},
            {"s": "closed"},
            "status must be one of ongoing, won, lost, paused",
            id="unknown-status",
        ),
        pytest.param(
            "deals",
            {"d": "expected_close_date"},
            {"d": "31/12/2026"},
            "expected_close_date must be a date (YYYY-MM-DD)",
            id="bad-date",
        ),
        pytest.param(
            "deals",
            {"v": "one_time_price"},
            {"v": "ten"},
            "one_time_price must be a number",
            id="price-not-a-number",
        ),
        pytest.param(
            "organizations",
            {"s": "segment_ids"},
            {"s": ["x"]},
            "segment_ids must be a 24-character hexadecimal CRM id",
            id="bad-segment",
        ),
    ],
)
def test_invalid_values_are_rejected_without_their_contents(mode, mapping, row, reason):
    with pytest.raises(RowRejected) as caught:
        build_payload(spec(mode, mapping), row)
    assert caught.value.reason == reason
    for value in row.values():
        assert str(value) not in reason


@pytest.mark.parametrize(
    ("mode", "data", "reason"),
    [
        pytest.param(
            Mode.CONTACTS, {"emails": []}, "name is required to create a record", id="missing-name"
        ),
        pytest.param(
            Mode.DEALS,
            {"name": "D", "status": "won"},
            "deals can only be created with status ongoing",
            id="deal-created-won",
        ),
    ],
)
def test_create_only_rules(mode, data, reason):
    with pytest.raises(RowRejected, match=reason):
        check_create(mode, data)


def test_deal_created_ongoing_or_without_status_passes():
    check_create(Mode.DEALS, {"name": "D"})
    check_create(Mode.DEALS, {"name": "D", "status": "ongoing"})
