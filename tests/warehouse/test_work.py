"""A model read against its id map on real warehouses: what the census counts, what the work
stream returns and in which order, read in one part or in several."""

from __future__ import annotations

import dataclasses
import secrets
import time

import pytest
from fakes import spec as make_spec

from dbt_rdcrm.config.specs import Relation
from dbt_rdcrm.dbt.warehouse import Warehouse
from dbt_rdcrm.sync import work as work_module
from dbt_rdcrm.sync.records import IdMapRow, utcnow
from dbt_rdcrm.sync.state import StateConfig, StateStore

SCOPE = "https://crm.test/crm/v2"
ROWS = 60  # keys k00..k59; k07 twice more, and one row without a key


@pytest.fixture
def store(warehouse: Warehouse) -> StateStore:
    suffix = secrets.token_hex(3)
    config = StateConfig(None, warehouse.schema, f"id_map_{suffix}", f"log_{suffix}", f"l_{suffix}")
    store = StateStore(warehouse, config, SCOPE)
    store.ensure()
    return store


@pytest.fixture
def model(warehouse: Warehouse):
    name = f"m_{secrets.token_hex(4)}"
    relation = warehouse.relation(None, warehouse.schema, name)
    keys = [f"'k{i:02d}'" for i in range(ROWS)] + ["'k07'", "'k07'", "null"]
    values = ", ".join(f"({k}, 'Name ' || {n}, 'n{n}@a.com')" for n, k in enumerate(keys))
    warehouse.execute(f"create table {relation} (id text, name text, email text)")
    warehouse.execute(f"insert into {relation} values {values}")
    warehouse.commit()
    spec = dataclasses.replace(
        make_spec(), relation=Relation(warehouse.database, warehouse.schema, name, relation)
    )
    return spec, {c: c for c in spec.columns}


def synced(store: StateStore, spec, columns, keys: list[str]) -> None:
    """Record ``keys`` as synced with their current hash (the rest of the model is new)."""
    with store.work(spec, columns) as work:
        hashes = {row.key: row.row_hash for row in work}
    for key in keys:
        store.save(
            IdMapRow(spec.model, key, "contact", crm_id=f"{key:0>24}", synced_hash=hashes[key])
        )
    store.flush()


def read(store: StateStore, spec, columns, **kw) -> tuple[list[tuple], int]:
    with store.work(spec, columns, **kw) as work:
        rows = [(r.number, r.key, r.key_count, r.state is not None) for r in work]
        assert len(rows) == work.count
        return rows, work.unchanged


def test_unchanged_rows_are_counted_and_only_the_others_read_in_key_order(store, model):
    spec, columns = model
    synced(store, spec, columns, [f"k{i:02d}" for i in range(0, ROWS, 2)] + ["k07"])
    rows, unchanged = read(store, spec, columns)
    assert unchanged == ROWS // 2  # every synced key but k07, which three rows share
    keys = [key for _, key, _, _ in rows]
    assert keys == sorted(k for k in keys if k) + [None]  # key order, no key last
    assert [n for n, *_ in rows] == list(range(1, len(rows) + 1))
    assert {(key, count) for _, key, count, _ in rows if key == "k07"} == {("k07", 3)}
    assert [has_state for _, key, _, has_state in rows if key == "k07"] == [True] * 3
    assert len(rows) + unchanged == ROWS + 3  # every row read is counted once


def test_a_model_read_in_parts_gives_the_same_rows(store, model, monkeypatch):
    spec, columns = model
    synced(store, spec, columns, [f"k{i:02d}" for i in range(0, ROWS, 3)])
    whole = read(store, spec, columns)
    monkeypatch.setattr(work_module, "CENSUS_PART_ROWS", 7)
    monkeypatch.setattr(work_module, "WORK_PART_ROWS", 5)
    monkeypatch.setattr(work_module, "RUN_ROWS", 4)
    monkeypatch.setattr(work_module, "BATCH_ROWS", 3)
    assert read(store, spec, columns) == whole
    assert read(store, spec, columns, full_refresh=True)[1] == 0


def test_a_model_with_nothing_to_do_reads_no_row(store, model):
    spec, columns = model
    with store.work(spec, columns) as work:
        keys = [row.key for row in work if row.key is not None and row.key != "k07"]
    synced(store, spec, columns, keys)
    rows, unchanged = read(store, spec, columns)
    assert unchanged == ROWS - 1 and [k for _, k, _, _ in rows] == ["k07"] * 3 + [None]


def test_rows_of_work_say_which_crm_ids_were_edited_or_are_unsigned(store, model):
    spec, columns = model
    synced(store, spec, columns, ["k00", "k01", "k02", "k03"])  # signed as the sync signs them
    wh, id_map, b = store.wh, store.sql.tables.id_map, store.wh.binding_char
    for key, other in (("k01", "k03"), ("k02", "k03")):  # ids edited by hand
        wh.execute(f"update {id_map} set crm_id = {b} where row_key = {b}", [f"{other:0>24}", key])
    wh.execute(  # a row inserted by hand, holding the id of k00 (no signature)
        f"insert into {id_map} (crm_scope, model_name, row_key, object_type, crm_id, updated_at) "
        f"values ({b}, {b}, 'k09', 'contact', {b}, current_timestamp)",
        [SCOPE, spec.model, f"{'k00':0>24}"],
    )
    wh.execute(f"update {spec.relation.rendered} set name = 'Renamed' where id = 'k02'")
    wh.commit()
    with store.work(spec, columns) as work:
        doubts = set(work.doubts)
    # k01 is unchanged (its id is not used this run); k02 changed; k09 was never synced
    assert doubts == {(spec.model, "k02", "edited"), (spec.model, "k09", "unsigned")}
    assert store.shared_ids(spec.model) == {f"{'k00':0>24}": 2}


def test_keys_the_sync_signed_may_hold_one_id(store, model):
    """Two rows that name the same record (a mapped ``_id``) were each given it by the sync."""
    spec, columns = model
    for key in ("k00", "k01"):
        store.save(IdMapRow(spec.model, key, "contact", crm_id="e" * 24, synced_hash="h"))
    store.flush()
    with store.work(spec, columns) as work:
        assert work.doubts == []
    assert store.shared_ids(spec.model) == {}
    assert store.has_ids(spec.model) and not store.has_ids("another_model")


@pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)  # DuckDB: no keeper
def test_the_lease_keeper_renews_on_its_own_connection_while_a_model_is_read(store, model):
    """A read longer than the lease's life (here 0.5 s) keeps it; nothing the read does sees
    the keeper's commits, and the rows come out whole."""
    from dbt_rdcrm.sync.lease import Lease

    assert not store.exclusive
    spec, columns = model
    lease = Lease(store, "run-long-read", "sync test", ttl=0.5, settle=0.01)
    lease.acquire()
    lease.keep()
    try:
        first = lease._expires
        rows = 0
        for chunk in store.wh.stream(f"select * from {spec.relation.rendered}", chunk_size=10):
            rows += len(chunk.rows)
            time.sleep(0.1)  # a slow reader: 7 chunks, 0.7 s in all
        lease.heartbeat()  # renewed meanwhile: no LeaseLost
        assert rows == ROWS + 3 and lease._expires > first
        (expires,) = store.wh.query(
            f"select expires_at from {store.sql.tables.lease} where run_id = 'run-long-read'"
        )[0]
        assert expires.replace(tzinfo=None) > utcnow()
    finally:
        lease.release()
