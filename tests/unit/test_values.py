"""One value rule for validate, plan and sync: what the CRM cannot hold is a rejected row."""

import datetime as dt
import math
from decimal import Decimal

import pytest

from dbt_rdcrm.config.column_types import type_mismatch
from dbt_rdcrm.config.fields import FIELDS, Mode, field_def
from dbt_rdcrm.config.values import MAX_NUMBER, RowRejected, convert

OID = "6621a1b2c3d4e5f678905678"


def field(mode, name):
    return field_def(Mode(mode), name)


@pytest.mark.parametrize(
    ("mode", "name", "value", "reason"),
    [
        pytest.param(
            "contacts", "name", [1, 2], "name takes one value, got a list", id="list-text"
        ),
        pytest.param(
            "contacts", "name", {"a": 1}, "name takes one value, got a struct", id="struct-text"
        ),
        pytest.param("contacts", "job_title", b"\x00", "got binary data", id="bytes-text"),
        pytest.param(
            "contacts", "@cpf", {"a": 1}, "@cpf takes one value, got a struct", id="struct-custom"
        ),
        pytest.param(
            "contacts", "@cpf", [[1]], "@cpf takes one value, got a list", id="nested-list-custom"
        ),
        pytest.param("deals", "status", ["won"], "status takes one value", id="list-status"),
        pytest.param("deals", "organization_id", [OID], "takes one value", id="list-id"),
        pytest.param(
            "deals", "contact_id", {"a": OID}, "takes one value, got a struct", id="struct-ids"
        ),
        pytest.param(
            "deals", "one_time_price", "1_000", "must be a number", id="underscored-number"
        ),
        pytest.param("deals", "one_time_price", " 12abc", "must be a number", id="number-junk"),
        pytest.param("deals", "one_time_price", 1e300, "too large for the CRM", id="huge-double"),
        pytest.param("deals", "one_time_price", math.inf, "finite", id="infinite-double"),
        pytest.param("deals", "one_time_price", math.nan, "finite", id="nan"),
        pytest.param("deals", "one_time_price", 2**100, "too large", id="hugeint"),
        pytest.param("deals", "one_time_price", Decimal("1e40"), "too large", id="huge-decimal"),
        pytest.param("deals", "one_time_price", "1e300", "too large", id="huge-text-number"),
        pytest.param("deals", "one_time_price", [1], "takes one value", id="list-number"),
        pytest.param("contacts", "@score", 2**64, "too large", id="hugeint-custom"),
        pytest.param(
            "contacts", "email", ["a@b.co", "nope"], "not a valid e-mail", id="bad-email-in-list"
        ),
        pytest.param(
            "contacts", "phone", [{"p": 1}], "phone takes one value", id="struct-in-phones"
        ),
    ],
)
def test_values_the_crm_cannot_hold_are_rejected_with_a_reason(mode, name, value, reason):
    with pytest.raises(RowRejected, match=reason) as caught:
        convert(field(mode, name), value)
    assert caught.value.field == name
    assert repr(value)[:20] not in caught.value.reason or str(value) in ("inf", "nan")


@pytest.mark.parametrize(
    ("mode", "name", "value", "expected"),
    [
        pytest.param("deals", "one_time_price", "1000", 1000, id="text-number"),
        pytest.param("deals", "one_time_price", "-1.5", -1.5, id="negative-decimal-text"),
        pytest.param("deals", "one_time_price", Decimal("10.50"), 10.5, id="decimal"),
        pytest.param("deals", "one_time_price", float(MAX_NUMBER), MAX_NUMBER, id="largest"),
        pytest.param("deals", "contact_id", [OID, None], [OID], id="ids-list"),
        pytest.param("deals", "contact_id", f"{OID}, {OID}", [OID, OID], id="ids-text"),
        pytest.param("organizations", "segment_ids", [], [], id="empty-ids"),
        pytest.param(
            "contacts",
            "email",
            ["a@b.co", "c@d.co"],
            [{"email": "a@b.co"}, {"email": "c@d.co"}],
            id="emails-list",
        ),
        pytest.param(
            "contacts",
            "phone",
            ["+55 1", 5511],
            [{"phone": "+55 1"}, {"phone": "5511"}],
            id="phones-list",
        ),
        pytest.param(
            "contacts",
            "@tags",
            ["a", 1, dt.date(2024, 1, 2)],
            ["a", 1, "2024-01-02"],
            id="custom-multi",
        ),
        pytest.param("contacts", "name", 12, "12", id="number-as-text"),
        pytest.param("contacts", "name", dt.date(2024, 1, 2), "2024-01-02", id="date-as-text"),
    ],
)
def test_values_the_crm_holds_are_shaped(mode, name, value, expected):
    assert convert(field(mode, name), value) == expected


def test_validate_accepts_list_columns_exactly_where_the_mapper_does():
    for mode in Mode:
        for definition in FIELDS[mode].values():
            try:
                convert(definition, [OID])
                takes_list = True
            except RowRejected as exc:
                takes_list = "got a list" not in exc.reason
            refused = type_mismatch(definition, "c", "VARCHAR[]") is not None
            assert takes_list != refused, definition.name
