"""State SQL as golden strings, and row keys that never collide."""

from __future__ import annotations

import pytest

from dbt_rdcrm.config.settings import check_identifier
from dbt_rdcrm.sync.keys import encode_key
from dbt_rdcrm.sync.state_sql import Dialect, StateSql, Tables

DIALECT = Dialect('"', "%s", "text", "timestamp", "integer", "md5({})")
SQL = StateSql(DIALECT, Tables('"s"."rdcrm_id_map"', '"s"."rdcrm_sync_log"', '"s"."rdcrm_lease"'))


def test_identifiers_are_quoted_with_embedded_quotes_doubled():
    assert DIALECT.quote('we"ird') == '"we""ird"'


def test_single_column_key_is_the_value_as_text():
    assert SQL.key_expr(["c0"]) == "cast(c0 as text)"


def test_composite_key_escapes_separator_and_escape():
    assert SQL.key_expr(["c0", "c1"]) == (
        "case when c0 is null or c1 is null then null else "
        "replace(replace(cast(c0 as text), '\\', '\\\\'), '|', '\\|') || '|' || "
        "replace(replace(cast(c1 as text), '\\', '\\\\'), '|', '\\|') end"
    )


@pytest.mark.parametrize(
    "a, b", [(("a|b", "c"), ("a", "b|c")), (("a\\", "|b"), ("a\\|", "b")), (("x",), ("x", ""))]
)
def test_composite_keys_never_collide(a, b):
    assert encode_key(list(a)) != encode_key(list(b))


def test_single_keys_stay_readable_as_stored_before():
    assert encode_key([42]) == "42" and encode_key(["a|b"]) == "a|b"


def test_a_null_key_part_makes_no_key():
    assert encode_key(["a", None]) is None


def test_keyless_rows_are_keyed_by_content():
    assert SQL.content_key_expr(["c0"]) == (
        "'#' || md5('content' || '|' || case when c0 is null then 'N' else 'V' || "
        "cast(c0 as text) end)"
    )


def test_id_map_delete_and_insert_use_bindings_only():
    assert SQL.delete_keys(2) == (
        'delete from "s"."rdcrm_id_map" where crm_scope = %s and model_name = %s '
        "and row_key in (%s, %s)"
    )
    assert SQL.insert('"s"."t"', ["a", "b"], 2) == (
        'insert into "s"."t" ("a", "b") values (%s, %s), (%s, %s)'
    )


def test_lease_reads_live_tickets_in_ticket_order():
    assert SQL.lease_tickets() == (
        "select run_id, holder, ticket_at, expires_at, confirmed_at from "
        '"s"."rdcrm_lease" where crm_scope = %s and expires_at > %s order by ticket_at, run_id'
    )


def test_new_columns_are_added_to_existing_tables():
    assert SQL.add_column('"s"."rdcrm_id_map"', "pending_payload") == (
        'alter table "s"."rdcrm_id_map" add column "pending_payload" text'
    )


@pytest.mark.parametrize("name", ['x"; drop table main.o; --', "1abc", "", "a b", "a.b"])
def test_state_names_must_be_plain_identifiers(name):
    assert check_identifier(name) is not None


def test_plain_names_are_accepted():
    assert check_identifier("analytics_rdcrm") is None


def test_run_meta_statements_read_and_replace_one_key_of_one_scope():
    relation = '"s"."rdcrm_run_meta"'
    where = '"crm_scope" = %s and "meta_key" = %s'
    assert SQL.meta_value(relation) == f'select "meta_value" from {relation} where {where}'
    assert SQL.meta_delete(relation) == f"delete from {relation} where {where}"


def test_shared_ids_look_at_ids_an_unsigned_key_holds():
    assert SQL.shared_ids() == (
        'select crm_id, count(*) from "s"."rdcrm_id_map" where crm_scope = %s and '
        'model_name = %s and crm_id in (select crm_id from "s"."rdcrm_id_map" where '
        "crm_scope = %s and model_name = %s and crm_id is not null and id_sig is null) "
        "group by crm_id having count(*) > 1"
    )


def test_tables_without_signatures_read_every_id_as_unsigned():
    older = StateSql(DIALECT, SQL.tables)
    older.absent = frozenset({"id_sig"})
    assert "cast(null as text) is null then 'unsigned'" in older.id_check("s")
    assert "s.id_sig" not in older.id_check("s")
    assert "cast(null as text) is null" in older.shared_ids()
