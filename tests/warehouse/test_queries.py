"""Reading, streaming and writing through one shared Warehouse per warehouse type.

Each test works on tables of its own and leaves no transaction open, so one connection per
warehouse type serves the whole module.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbt_rdcrm.dbt.warehouse import ColumnInfo, Warehouse, WarehouseError


@pytest.fixture(autouse=True)
def _clean_transaction(warehouse: Warehouse) -> Iterator[None]:
    yield
    warehouse.rollback()


@pytest.fixture
def name() -> str:
    """A table name no other test uses."""
    return f"t_{secrets.token_hex(4)}"


@pytest.fixture
def table(warehouse: Warehouse, name: str) -> str:
    return warehouse.relation(None, warehouse.schema, name)


def create_numbers(warehouse: Warehouse, table: str, count: int) -> None:
    warehouse.execute(
        f"create table {table} as select i as id, 'name ' || i as name"
        f" from generate_series(1, {count}) as g(i)"
    )
    warehouse.commit()


def count_rows(warehouse: Warehouse, table: str) -> int:
    return warehouse.query(f"select count(*) from {table}")[0][0]


def stream_ids(warehouse: Warehouse, sql: str, chunk_size: int = 10_000) -> list[int]:
    return [row[0] for chunk in warehouse.stream(sql, chunk_size=chunk_size) for row in chunk.rows]


def in_other_thread(function, *args) -> None:
    """Run ``function`` on another thread (so on another connection) and re-raise its error."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            function(*args)
        except BaseException as exc:  # handed back to the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


EXPECTED = {
    "duckdb": {"binding_char": "?", "database": "warehouse", "types": ["INTEGER", "VARCHAR"]},
    "postgres": {"binding_char": "%s", "database": "test", "types": ["integer", "text"]},
}


def test_attributes_describe_the_target(warehouse: Warehouse) -> None:
    expected = EXPECTED[warehouse.adapter_type]

    assert warehouse.target_name == "dev"
    assert warehouse.database == expected["database"]
    assert warehouse.binding_char == expected["binding_char"]
    assert warehouse.string_type == "TEXT"
    assert warehouse.invocation_id


def test_only_a_duckdb_file_is_exclusive_to_the_process(warehouse: Warehouse) -> None:
    # DuckDB locks its file for the process that opened it; a server is shared.
    assert warehouse.exclusive(None) is (warehouse.adapter_type == "duckdb")
    assert warehouse.exclusive("no_such_database") is False


def test_relations_and_identifiers_are_quoted(warehouse: Warehouse) -> None:
    assert warehouse.relation(None, "rdcrm", "id_map") == '"rdcrm"."id_map"'
    assert warehouse.relation("db", "rdcrm", "id_map") == '"db"."rdcrm"."id_map"'
    assert warehouse.quote("full name") == '"full name"'


def test_get_columns_of_a_table(warehouse: Warehouse, table: str, name: str) -> None:
    warehouse.execute(f"create table {table} (id integer, {warehouse.quote('Full Name')} text)")
    warehouse.commit()

    columns = warehouse.get_columns(None, warehouse.schema, name)

    types = EXPECTED[warehouse.adapter_type]["types"]
    assert columns == [ColumnInfo("id", types[0]), ColumnInfo("Full Name", types[1])]


def test_get_columns_of_a_missing_relation_is_none(warehouse: Warehouse, name: str) -> None:
    assert warehouse.get_columns(None, warehouse.schema, name) is None
    assert warehouse.get_columns(None, f"{warehouse.schema}_missing", name) is None


def test_stream_yields_every_row_once_in_chunks(warehouse: Warehouse, table: str) -> None:
    create_numbers(warehouse, table, 25_000)

    chunks = list(warehouse.stream(f"select id, name from {table} order by id", chunk_size=10_000))

    assert [len(chunk.rows) for chunk in chunks] == [10_000, 10_000, 5_000]
    assert {tuple(chunk.columns) for chunk in chunks} == {("id", "name")}
    assert [row for chunk in chunks for row in chunk.rows] == [
        (i, f"name {i}") for i in range(1, 25_001)
    ]


def resident_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")
def test_stream_holds_about_one_chunk_in_memory(warehouse: Warehouse, table: str) -> None:
    warehouse.execute(
        f"create table {table} as select i as id, repeat('x', 5000) as payload"
        " from generate_series(1, 20000) as g(i)"
    )  # about 100 MB of text
    warehouse.commit()
    before = resident_mb()

    chunks = warehouse.stream(f"select id, payload from {table}", chunk_size=1_000)
    next(chunks)
    growth = resident_mb() - before
    rest = sum(len(chunk.rows) for chunk in chunks)

    assert growth < 50, f"memory grew by {growth:.0f} MB for one 5 MB chunk"
    assert rest == 19_000


def test_stream_of_an_empty_result_yields_no_chunk(warehouse: Warehouse, table: str) -> None:
    create_numbers(warehouse, table, 3)

    assert list(warehouse.stream(f"select id from {table} where id > 3")) == []


def test_stream_takes_bindings(warehouse: Warehouse, table: str) -> None:
    create_numbers(warehouse, table, 10)
    b = warehouse.binding_char

    chunks = warehouse.stream(f"select id from {table} where id > {b} order by id", [7])

    assert [row for chunk in chunks for row in chunk.rows] == [(8,), (9,), (10,)]


@pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)  # its server-side cursors
def test_a_postgres_stream_is_planned_for_its_whole_result(warehouse: Warehouse) -> None:
    # A cursor is planned for its first 10 % by default: on tables without statistics that
    # picks nested loops, quadratic when every row is read.
    list(warehouse.stream("select 1"))
    assert warehouse.query("show cursor_tuple_fraction") == [("1",)]


def test_stream_then_write_then_stream_again_sees_every_row(
    warehouse: Warehouse, table: str
) -> None:
    create_numbers(warehouse, table, 25_000)
    sql = f"select id from {table}"

    first = stream_ids(warehouse, sql, chunk_size=7_000)
    warehouse.execute(f"insert into {table} values (25001, 'late')")
    warehouse.commit()
    second = stream_ids(warehouse, sql, chunk_size=7_000)

    assert sorted(first) == list(range(1, 25_001))
    assert sorted(second) == list(range(1, 25_002))


def test_resuming_a_stream_after_another_operation_raises(warehouse: Warehouse, table: str) -> None:
    create_numbers(warehouse, table, 30)
    chunks = warehouse.stream(f"select id from {table}", chunk_size=10)
    next(chunks)

    warehouse.query("select 1")

    with pytest.raises(RuntimeError, match="stream resumed after another operation"):
        next(chunks)
    assert sorted(stream_ids(warehouse, f"select id from {table}")) == list(range(1, 31))


def test_an_abandoned_stream_leaves_the_connection_usable(warehouse: Warehouse, table: str) -> None:
    create_numbers(warehouse, table, 30)
    chunks = warehouse.stream(f"select id from {table}", chunk_size=10)
    next(chunks)
    chunks.close()

    warehouse.execute(f"insert into {table} values (31, 'after')")
    warehouse.commit()
    warehouse.execute(f"insert into {table} values (32, 'discarded')")
    warehouse.rollback()

    assert count_rows(warehouse, table) == 31


def test_another_thread_can_write_while_a_stream_is_open(warehouse: Warehouse, name: str) -> None:
    source = warehouse.relation(None, warehouse.schema, name)
    sink = warehouse.relation(None, warehouse.schema, f"{name}_sink")
    create_numbers(warehouse, source, 25_000)
    warehouse.execute(f"create table {sink} (id integer)")
    warehouse.commit()

    def write(ids: list[int]) -> None:
        b = warehouse.binding_char
        warehouse.execute(f"insert into {sink} values {', '.join([f'({b})'] * len(ids))}", ids)
        warehouse.commit()

    seen = 0
    for chunk in warehouse.stream(f"select id from {source}", chunk_size=10_000):
        seen += len(chunk.rows)
        in_other_thread(write, [row[0] for row in chunk.rows])

    assert seen == 25_000
    assert count_rows(warehouse, sink) == 25_000


def test_execute_is_invisible_to_other_connections_until_committed(
    warehouse: Warehouse, table: str
) -> None:
    create_numbers(warehouse, table, 1)
    counts: list[int] = []

    def count_elsewhere() -> None:
        counts.append(count_rows(warehouse, table))
        warehouse.commit()  # ends the reading thread's own transaction

    warehouse.execute(f"insert into {table} values (2, 'two')")
    in_other_thread(count_elsewhere)
    warehouse.commit()
    in_other_thread(count_elsewhere)

    assert counts == [1, 2]


def test_rollback_discards_uncommitted_writes(warehouse: Warehouse, table: str) -> None:
    warehouse.execute(f"create table {table} (id integer)")
    warehouse.commit()

    warehouse.execute(f"insert into {table} values (1)")
    warehouse.rollback()
    warehouse.execute(f"insert into {table} values (2)")
    warehouse.commit()
    warehouse.execute(f"insert into {table} values (3)")
    warehouse.rollback()
    warehouse.create_schema(None, warehouse.schema)
    warehouse.execute(f"insert into {table} values (4)")
    warehouse.rollback()

    assert warehouse.query(f"select id from {table}") == [(2,)]


def test_create_schema_is_idempotent(warehouse: Warehouse, name: str) -> None:
    schema = f"{warehouse.schema}_{name}"

    warehouse.create_schema(None, schema)
    warehouse.create_schema(None, schema)
    warehouse.execute(f"create table {warehouse.relation(None, schema, 'state')} (id integer)")
    warehouse.commit()

    assert warehouse.get_columns(warehouse.database, schema, "state") is not None


def test_multi_row_insert_with_binding_placeholders(warehouse: Warehouse, table: str) -> None:
    warehouse.execute(
        f"create table {table} (id {warehouse.integer_type}, label {warehouse.string_type},"
        f" seen_at {warehouse.timestamp_type})"
    )
    b = warehouse.binding_char
    rows = [(1, "it's 50% done", "2024-01-02 03:04:05"), (2, None, None), (3, "ação", None)]
    placeholders = f"({b}, {b}, cast({b} as {warehouse.timestamp_type}))"

    warehouse.execute(
        f"insert into {table} values {', '.join([placeholders] * len(rows))}",
        [value for row in rows for value in row],
    )
    warehouse.commit()

    stored = warehouse.query(
        f"select id, label, cast(seen_at as {warehouse.string_type}) from {table} order by id"
    )
    assert stored == [
        (1, "it's 50% done", "2024-01-02 03:04:05"),
        (2, None, None),
        (3, "ação", None),
    ]


@pytest.mark.parametrize("text", ["", "plain", "Ação|🙂|50%"], ids=["empty", "ascii", "unicode"])
def test_hash_expr_is_the_hex_md5_of_the_text(warehouse: Warehouse, text: str) -> None:
    b = warehouse.binding_char

    [(digest,)] = warehouse.query(f"select {warehouse.hash_expr(b)}", [text])

    assert digest == hashlib.md5(text.encode()).hexdigest()


def test_cast_text_turns_a_value_into_text(warehouse: Warehouse) -> None:
    assert warehouse.query(f"select {warehouse.cast_text('42')}") == [("42",)]


def test_failing_sql_is_a_one_line_warehouse_error(warehouse: Warehouse, name: str) -> None:
    with pytest.raises(WarehouseError) as error:
        warehouse.query(f"select * from {warehouse.quote(name)}")

    assert str(error.value).startswith(
        f"target 'dev' of profile 'rdcrm_test' ({warehouse.adapter_type})"
    )
    assert name in str(error.value)
    assert "\n" not in str(error.value)
    assert warehouse.query("select 1") == [(1,)]


def test_failing_sql_on_another_thread_is_a_warehouse_error(
    warehouse: Warehouse, name: str
) -> None:
    with pytest.raises(WarehouseError, match=name):
        in_other_thread(warehouse.query, f"select * from {warehouse.quote(name)}")


def test_failing_stream_raises_when_called(warehouse: Warehouse, name: str) -> None:
    with pytest.raises(WarehouseError, match=name):
        warehouse.stream(f"select * from {warehouse.quote(name)}")
    assert warehouse.query("select 1") == [(1,)]
