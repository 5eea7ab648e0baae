"""Warehouse column types, sorted into families, and which families each CRM field takes.

The families follow the value rule of :mod:`dbt_rdcrm.config.values` (lists only for list
fields, structs nowhere). Deliberately conservative: a type is only flagged when every non-null value of it would be
rejected or sent as nonsense. Semi-structured (JSON, VARIANT) and unrecognised types are never
flagged, since their values may be anything.
"""

from __future__ import annotations

import re
from enum import Enum

from dbt_rdcrm.config.fields import FieldDef, Kind


class Family(str, Enum):
    TEXT = "text"
    INTEGER = "integer"
    DECIMAL = "decimal"
    FLOAT = "float"
    BOOLEAN = "boolean"
    DATE = "date"
    TIMESTAMP = "timestamp"
    TIME = "time"
    INTERVAL = "interval"
    UUID = "uuid"
    BINARY = "binary"
    ARRAY = "array"
    STRUCT = "struct"
    JSON = "json"  # semi-structured: may hold anything
    UNKNOWN = "unknown"


_NAMES: dict[Family, str] = {
    Family.TEXT: "varchar|char|character|character varying|text|string|nvarchar|nchar|bpchar|"
    "citext|clob|name|enum",
    Family.INTEGER: "tinyint|smallint|integer|int|bigint|hugeint|int1|int2|int4|int8|int16|"
    "int32|int64|int128|byteint|utinyint|usmallint|uinteger|ubigint|uhugeint|serial|bigserial|"
    "smallserial|long|short|signed|oid",
    Family.DECIMAL: "decimal|numeric|number|bignumeric|bigdecimal|money|dec",
    Family.FLOAT: "double|double precision|float|float4|float8|float64|real",
    Family.BOOLEAN: "boolean|bool|logical",
    Family.DATE: "date",
    Family.TIMESTAMP: "timestamp|datetime|timestamptz|timestamp_ntz|timestamp_ltz|timestamp_tz|"
    "timestamp with time zone|timestamp without time zone|timestamp_s|timestamp_ms|timestamp_ns",
    Family.TIME: "time|timetz|time with time zone|time without time zone",
    Family.INTERVAL: "interval",
    Family.UUID: "uuid",
    Family.BINARY: "blob|bytea|binary|varbinary|bytes|bit",
    Family.ARRAY: "array|list",
    Family.STRUCT: "struct|map|object|record|row|union",
    Family.JSON: "json|jsonb|variant|super",
}
_BY_NAME: dict[str, Family] = {
    name: fam for fam, names in _NAMES.items() for name in names.split("|")
}
_SCALE = re.compile(r"\(\s*\d+\s*,\s*(\d+)\s*\)")


def family(data_type: str) -> Family:
    """The family of a type as the warehouse reports it (``VARCHAR``, ``numeric(18,2)``,
    ``INTEGER[]``, ``ARRAY<STRING>``, ``timestamp without time zone``, ...)."""
    text = " ".join(data_type.strip().lower().split())
    if text.endswith("]"):
        return Family.ARRAY
    base = re.split(r"[(<]", text, maxsplit=1)[0].strip()
    found = _BY_NAME.get(base, Family.UNKNOWN)
    if found is Family.DECIMAL:
        scale = _SCALE.search(text)
        if scale and int(scale.group(1)) == 0:
            return Family.INTEGER  # NUMBER(38,0) and the like hold whole numbers
    return found


_ANY_SCALAR = frozenset(Family) - {Family.BINARY, Family.ARRAY, Family.STRUCT}
_TEXTUAL = frozenset({Family.TEXT})
_NUMERIC = frozenset({Family.INTEGER, Family.DECIMAL, Family.FLOAT})

# The families each kind of field takes. Anything else (except JSON/UNKNOWN) is a mismatch.
ACCEPTED: dict[Kind, frozenset[Family]] = {
    Kind.TEXT: _ANY_SCALAR,
    Kind.EMAIL: frozenset({Family.TEXT, Family.ARRAY}),  # a list: one e-mail per item
    Kind.PHONE: frozenset({Family.TEXT, Family.INTEGER, Family.DECIMAL, Family.ARRAY}),
    Kind.ID: _TEXTUAL,
    Kind.IDS: frozenset({Family.TEXT, Family.ARRAY}),
    Kind.DATE: frozenset({Family.DATE, Family.TIMESTAMP, Family.TEXT}),
    Kind.NUMBER: _NUMERIC,
    Kind.RATING: _NUMERIC,
    Kind.STATUS: _TEXTUAL,
    Kind.CUSTOM: frozenset(Family) - {Family.BINARY, Family.STRUCT},
}

_WHAT: dict[Kind, str] = {
    Kind.TEXT: "text",
    Kind.EMAIL: "an e-mail address",
    Kind.PHONE: "a phone number",
    Kind.ID: "a 24-character hexadecimal CRM id",
    Kind.IDS: "a list of 24-character hexadecimal CRM ids",
    Kind.DATE: "a date",
    Kind.NUMBER: "a number",
    Kind.RATING: "a whole number from 1 to 5",
    Kind.STATUS: "a deal status",
    Kind.CUSTOM: "a custom field value",
}


def _or(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def type_mismatch(definition: FieldDef, column: str, data_type: str) -> str | None:
    """Why ``column`` (of ``data_type``) cannot fill ``definition``, or None if it may."""
    found = family(data_type)
    accepted = ACCEPTED[definition.kind]
    if found in accepted or found in (Family.JSON, Family.UNKNOWN):
        return None
    if definition.kind in (Kind.TEXT, Kind.CUSTOM):
        refused = [f.value for f in (Family.BINARY, Family.ARRAY, Family.STRUCT)]
        expected = "any type but " + _or([f for f in refused if Family(f) not in accepted])
    else:
        expected = _or([f.value for f in Family if f in accepted])
    return (
        f"column {column!r} is {data_type} ({found.value}), but {definition.name} takes "
        f"{_WHAT[definition.kind]}: expected {expected} (cast it in the model)"
    )
