"""The work query's SQL: the census and key scan as golden strings, parts and ``concat``."""

from __future__ import annotations

import dataclasses

from fakes import spec as make_spec

from dbt_rdcrm.config.specs import Relation
from dbt_rdcrm.sync.state_sql import Dialect, StateSql, Tables

DIALECT = Dialect('"', "%s", "text", "timestamp", "integer", "md5({})")
TABLES = Tables('"s"."rdcrm_id_map"', '"s"."rdcrm_sync_log"', '"s"."rdcrm_lease"')
SQL = StateSql(DIALECT, TABLES)
SPEC = dataclasses.replace(make_spec(), relation=Relation("d", "s", "m", '"d"."s"."m"'))
COLUMNS = {"id": "ID", "name": "name", "email": "email"}


def test_the_key_scan_counts_rows_beyond_distinct_keys():
    assert SQL.repeated_keys(SPEC, COLUMNS) == (
        'select count(k) - count(distinct k) from (select cast("ID" as text) as k from '
        '"d"."s"."m") keys'
    )


def test_the_census_counts_rows_and_unchanged_ones_in_one_pass():
    sql, bindings = SQL.census(SPEC, COLUMNS, "scope", duplicates=False)
    assert sql.endswith(
        "select count(*), coalesce(sum(case when r_key_count = 1 and s.crm_id is not null and "
        "s.synced_hash = r_hash then 1 else 0 end), 0)\n"
        'from hashed left join (select row_key, crm_id, synced_hash from "s"."rdcrm_id_map" '
        "where crm_scope = %s and model_name = %s) s\n    on s.row_key = hashed.r_key"
    )
    assert sql.count("md5(") == 1 and bindings == ["scope", "m"]


def test_the_work_query_joins_the_id_map_once_and_orders_only_a_sample():
    sql, _ = SQL.work(SPEC, COLUMNS, "scope", full_refresh=False, duplicates=False)
    assert sql.count('"s"."rdcrm_id_map"') == 1 and "order by" not in sql
    assert "as r_id_sig" not in sql  # every write recomputes the signature
    sample, _ = SQL.work(SPEC, COLUMNS, "scope", full_refresh=False, duplicates=False, limit=5)
    assert sample.endswith("\norder by hashed.r_key limit 5")


def test_a_part_takes_the_same_slice_of_keys_on_both_sides():
    parted = StateSql(dataclasses.replace(DIALECT, part_template="hash({expr}) % {parts}"), TABLES)
    sql, _ = parted.work(SPEC, COLUMNS, "scope", full_refresh=False, duplicates=False, part=(1, 4))
    assert "from src where hash(coalesce(cast(c0 as text), '')) % 4 = 1\n" in sql
    assert "and hash(coalesce(row_key, '')) % 4 = 1) s on s.row_key = hashed.r_key" in sql


def test_concat_builds_the_same_hashed_text():
    joined = StateSql(dataclasses.replace(DIALECT, concat=True), TABLES)
    assert joined.hash_expr("salt", ["c0", "c1"]) == (
        "md5(concat('salt', '|', case when c0 is null then 'N' else 'V' || cast(c0 as text) end, "
        "'|', case when c1 is null then 'N' else 'V' || cast(c1 as text) end))"
    )
    assert SQL.hash_expr("salt", ["c0", "c1"]) == (
        "md5('salt' || '|' || case when c0 is null then 'N' else 'V' || cast(c0 as text) end || "
        "'|' || case when c1 is null then 'N' else 'V' || cast(c1 as text) end)"
    )


def test_a_row_of_work_says_whether_its_crm_id_and_its_parents_can_be_used():
    signature = "md5(s.crm_scope || '|' || s.model_name || '|' || s.row_key || '|' || s.crm_id)"
    assert SQL.id_check("s") == (
        "case when s.crm_id is null then null when s.id_sig is null then 'unsigned' "
        f"when s.id_sig <> {signature} then 'edited' end"
    )
    linked = dataclasses.replace(
        make_spec(links={"organization_id": {"model": "orgs", "column": "org"}}),
        relation=SPEC.relation,
    )
    columns = {c: c for c in linked.columns}
    work, bindings = SQL.work(linked, columns, "x", full_refresh=False, duplicates=False)
    assert f"{SQL.id_check('s')} as r_id_check from hashed" in work
    assert f"p0.row_key as r_link_key0, {SQL.id_check('p0')} as r_link_check0" in work
    assert bindings == ["x", "orgs", "x", "m"]
    census, _ = SQL.census(linked, columns, "x", duplicates=False)
    assert "id_sig" not in census  # counting the model checks no signature
