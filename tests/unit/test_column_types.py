"""Column types as warehouses report them, and which fields each may fill (conservatively)."""

import pytest

from dbt_rdcrm.config.column_types import Family, family, type_mismatch
from dbt_rdcrm.config.fields import Mode, field_def


@pytest.mark.parametrize(
    ("data_type", "expected"),
    [
        ("VARCHAR", Family.TEXT),
        ("character varying", Family.TEXT),
        ("STRING", Family.TEXT),
        ("BIGINT", Family.INTEGER),
        ("NUMBER(38,0)", Family.INTEGER),
        ("DECIMAL(18,2)", Family.DECIMAL),
        ("numeric", Family.DECIMAL),
        ("double precision", Family.FLOAT),
        ("FLOAT64", Family.FLOAT),
        ("BOOLEAN", Family.BOOLEAN),
        ("DATE", Family.DATE),
        ("timestamp without time zone", Family.TIMESTAMP),
        ("TIMESTAMP_NTZ", Family.TIMESTAMP),
        ("VARCHAR[]", Family.ARRAY),
        ("ARRAY<STRING>", Family.ARRAY),
        ("ARRAY", Family.ARRAY),
        ("STRUCT(x INTEGER)", Family.STRUCT),
        ("MAP(VARCHAR, INTEGER)", Family.STRUCT),
        ("jsonb", Family.JSON),
        ("VARIANT", Family.JSON),
        ("UUID", Family.UUID),
        ("BLOB", Family.BINARY),
        ("geometry", Family.UNKNOWN),
    ],
    ids=lambda value: str(value),
)
def test_family(data_type, expected):
    assert family(data_type) == expected


@pytest.mark.parametrize(
    ("mode", "field", "data_type", "flagged"),
    [
        pytest.param(Mode.CONTACTS, "birthday", "BOOLEAN", True, id="date-from-boolean"),
        pytest.param(Mode.CONTACTS, "birthday", "INTEGER", True, id="date-from-integer"),
        pytest.param(Mode.CONTACTS, "birthday", "TIMESTAMP", False, id="date-from-timestamp"),
        pytest.param(Mode.CONTACTS, "birthday", "VARCHAR", False, id="date-from-iso-text"),
        pytest.param(Mode.DEALS, "one_time_price", "VARCHAR", True, id="number-from-text"),
        pytest.param(Mode.DEALS, "one_time_price", "DECIMAL(12,2)", False, id="number"),
        pytest.param(Mode.DEALS, "rating", "DATE", True, id="rating-from-date"),
        pytest.param(Mode.CONTACTS, "email", "INTEGER", True, id="email-from-integer"),
        pytest.param(Mode.CONTACTS, "phone", "BIGINT", False, id="phone-from-integer"),
        pytest.param(Mode.CONTACTS, "phone", "DOUBLE", True, id="phone-from-float"),
        pytest.param(Mode.DEALS, "stage_id", "DOUBLE", True, id="id-from-number"),
        pytest.param(Mode.DEALS, "stage_id", "UUID", True, id="id-from-uuid"),
        pytest.param(Mode.DEALS, "contact_id", "VARCHAR[]", False, id="ids-from-list"),
        pytest.param(Mode.DEALS, "status", "BOOLEAN", True, id="status-from-boolean"),
        pytest.param(Mode.CONTACTS, "name", "INTEGER", False, id="text-from-anything-scalar"),
        pytest.param(Mode.CONTACTS, "name", "BLOB", True, id="text-from-binary"),
        pytest.param(Mode.CONTACTS, "@score", "DOUBLE", False, id="custom-from-number"),
        pytest.param(Mode.CONTACTS, "@profile", "STRUCT(a INTEGER)", True, id="custom-from-struct"),
        pytest.param(Mode.CONTACTS, "birthday", "JSON", False, id="json-is-never-flagged"),
        pytest.param(Mode.CONTACTS, "email", "GEOMETRY", False, id="unknown-is-never-flagged"),
    ],
)
def test_type_mismatch_flags_only_clear_mismatches(mode, field, data_type, flagged):
    assert (type_mismatch(field_def(mode, field), "col", data_type) is not None) is flagged


def test_mismatch_names_the_column_its_type_and_what_is_accepted():
    message = type_mismatch(field_def(Mode.DEALS, "one_time_price"), "amount", "VARCHAR")
    assert message == (
        "column 'amount' is VARCHAR (text), but one_time_price takes a number: expected "
        "integer, decimal or float (cast it in the model)"
    )
