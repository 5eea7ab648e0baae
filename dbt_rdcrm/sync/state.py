"""Sync state in the warehouse: the id map, the sync log and the lease (statements in
:mod:`dbt_rdcrm.sync.state_sql`).

- ``rdcrm_id_map``: one row per (CRM scope, model, row key): the CRM id, the hash of the last
  payload the CRM accepted, a pending create intent (with its payload), and the last refusal.
- ``rdcrm_sync_log``: one row per row outcome that changed something or needs attention.
- ``rdcrm_lease``: the tickets of runs that hold or want the state of a CRM scope.

The join of a model against its state runs in the warehouse: only rows that need work (new,
changed, pending, refused, invalid keys) travel to Python, so a no-change run reads no rows
(:mod:`dbt_rdcrm.sync.work`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.errors import RdcrmError
from dbt_rdcrm.sync.records import IdMapRow, LeaseTicket, LogEntry, id_signature
from dbt_rdcrm.sync.state_sql import (
    ID_MAP_COLUMNS,
    LEASE_COLUMNS,
    LOG_COLUMNS,
    Dialect,
    StateSql,
    Tables,
)
from dbt_rdcrm.sync.work import WorkSpool, key_repeats, read_work

WRITE_BATCH = 200


@dataclass(frozen=True)
class StateConfig:
    database: str | None
    schema: str
    id_map: str = "rdcrm_id_map"
    sync_log: str = "rdcrm_sync_log"
    lease: str = "rdcrm_lease"


def dialect_of(warehouse) -> Dialect:
    duckdb = warehouse.adapter_type == "duckdb"  # its joins run in this process: read in parts
    return Dialect(
        quote_char=warehouse.quote("x")[0],
        binding=warehouse.binding_char,
        string_type=warehouse.string_type,
        timestamp_type=warehouse.timestamp_type,
        integer_type=warehouse.integer_type,
        hash_template=warehouse.hash_expr("{}"),
        part_template="hash({expr}) % {parts}" if duckdb else None,
        concat=duckdb,
    )


class StateStore:
    """State tables of one CRM scope (base URL) in one warehouse."""

    def __init__(self, warehouse, config: StateConfig, scope: str):
        self.wh = warehouse
        self.config = config
        self.scope = scope
        tables = Tables(
            *(warehouse.relation(config.database, config.schema, name) for name in self._names())
        )
        self.sql = StateSql(dialect_of(warehouse), tables)
        self._pending: dict[tuple[str, str], IdMapRow] = {}
        self._log: list[LogEntry] = []
        self.on_flush = None  # called after each commit (the lease's heartbeat)
        self._exclusive: bool | None = None
        self._repeats: dict[str, bool] = {}  # model -> a key repeats (its keys scanned early)

    @property
    def exclusive(self) -> bool:
        """Whether no other process can reach these tables while this one is connected (then
        two runs cannot overlap whatever the lease does)."""
        if self._exclusive is None:
            self._exclusive = self.wh.exclusive(self.config.database)
        return self._exclusive

    def _names(self) -> tuple[str, str, str]:
        return (self.config.id_map, self.config.sync_log, self.config.lease)

    # --- schema ----------------------------------------------------------------------------
    def exists(self) -> bool:
        cfg = self.config
        return all(
            self.wh.get_columns(cfg.database, cfg.schema, name) is not None
            for name in self._names()[:2]
        )

    def read_only_current(self) -> None:
        """A plan on tables an older version created: their new columns read as null."""
        cfg = self.config
        have = {
            c.name.lower() for c in self.wh.get_columns(cfg.database, cfg.schema, cfg.id_map) or []
        }
        self.sql.absent = frozenset(c for c in ID_MAP_COLUMNS if c.lower() not in have)

    def edited_ids(self, model: str) -> list[str]:
        """Keys whose CRM id was changed outside the tool (it no longer matches its signature)."""
        if self.sql.empty_id_map or "id_sig" in self.sql.absent:
            return []
        return [r[0] for r in self.wh.query(self.sql.edited_ids(), [self.scope, model])]

    def read_only_empty(self) -> None:
        """A plan before the first sync: read against an empty id map, create nothing."""
        self.sql.empty_id_map = True

    def ensure(self) -> None:
        """Create the schema and tables if missing and add new columns (idempotent); commit."""
        self.create_committed(self._ensure)

    def create_committed(self, create) -> None:
        """Run ``create`` (idempotent DDL that commits). Two runs starting together may race on
        ``create ... if not exists`` (PostgreSQL refuses the loser's): a failed attempt is
        retried once, after the winner's commit."""
        from dbt_rdcrm.dbt.warehouse import WarehouseError

        try:
            create()
        except WarehouseError:
            self.wh.rollback()
            create()

    def _ensure(self) -> None:
        cfg = self.config
        self.wh.create_schema(cfg.database, cfg.schema)
        for (relation, columns), name in zip(
            self.sql.table_columns().items(), self._names(), strict=True
        ):
            existing = self.wh.get_columns(cfg.database, cfg.schema, name)
            if existing is None:
                self.wh.execute(self.sql.create_table(relation, columns))
                continue
            have = {c.name.lower() for c in existing}
            for column in columns:
                if column.lower() not in have:
                    self.wh.execute(self.sql.add_column(relation, column))
        self.wh.commit()

    # --- the work query --------------------------------------------------------------------
    def work(
        self,
        spec: SyncSpec,
        actual: dict[str, str],
        *,
        full_refresh: bool = False,
        limit: int | None = None,
    ) -> WorkSpool:
        """Rows needing a decision, in key order, and (``unchanged``) how many rows the last
        sync left as they are; with ``limit``, the first rows of work by key (none counted).
        See :mod:`dbt_rdcrm.sync.work`."""
        repeats = self._repeats.get(spec.model)
        return read_work(self.wh, self.sql, self.scope, spec, actual, full_refresh, limit, repeats)

    def scan_keys(self, spec: SyncSpec, actual: dict[str, str]) -> None:
        """Scan the model's keys now (whether one repeats) for its read later in this run: a
        read of the model alone, which needs no lease (see ``Lease.acquire``). An error is
        left to that read, which scans again and reports it."""
        try:
            self._repeats[spec.model] = key_repeats(self.wh, self.sql, spec, actual)
        except RdcrmError:
            self.wh.rollback()

    # --- id map reads ----------------------------------------------------------------------
    def states(self, model: str, keys: Sequence[str]) -> dict[str, IdMapRow]:
        """The stored state of some keys of a model (buffered changes included)."""
        found: dict[str, IdMapRow] = {}
        keys = list(dict.fromkeys(keys))
        for start in range(0, len(keys), WRITE_BATCH):
            batch = keys[start : start + WRITE_BATCH]
            rows = self.wh.query(self.sql.state_rows(len(batch)), [self.scope, model, *batch])
            for row in rows:
                state = IdMapRow(**dict(zip(ID_MAP_COLUMNS, row, strict=True)))
                found[state.row_key] = state
        for key in keys:
            if (model, key) in self._pending:
                found[key] = self._pending[(model, key)]
        return found

    def holders(self, model: str, crm_id: str) -> set[str]:
        """Keys of ``model`` whose id map entry holds ``crm_id`` (buffered changes included)."""
        keys = {r[0] for r in self.wh.query(self.sql.holders_of(), [self.scope, model, crm_id])}
        for (m, key), row in self._pending.items():
            if m == model:
                if row.crm_id == crm_id:
                    keys.add(key)
                else:
                    keys.discard(key)
        return keys

    def synced_rows(self, model: str) -> dict[str, int]:
        """Id map rows with a CRM id per scope, for one model (this scope's and others')."""
        if self.sql.empty_id_map:  # a plan before the first sync
            return {}
        return {scope: int(count) for scope, count in self.wh.query(self.sql.model_rows(), [model])}

    def has_ids(self, model: str) -> bool:
        """Whether some key of ``model`` holds a CRM id in this scope (an empty state: not)."""
        if self.sql.empty_id_map:
            return False
        return bool(self.wh.query(self.sql.has_ids(), [self.scope, model]))

    def shared_ids(self, model: str) -> dict[str, int]:
        """CRM ids that two or more keys of ``model`` hold, one of them unsigned (the state was
        edited: the tool never gives one id to two keys it did not each sign)."""
        if self.sql.empty_id_map:
            return {}
        rows = self.wh.query(self.sql.shared_ids(), [self.scope, model, self.scope, model])
        return {crm_id: int(count) for crm_id, count in rows}

    def owned_ids(self, object_type: str) -> list[tuple[str, str, str]]:
        """(model, key, CRM id) of every id map row of one object type that has a CRM id."""
        rows = self.wh.query(self.sql.owned_ids(), [self.scope, object_type])
        return [(str(m), str(k), str(i)) for m, k, i in rows]

    def ids_per_type(self) -> dict[str, int]:
        """Distinct CRM ids per object type (none before the first sync)."""
        if self.sql.empty_id_map:
            return {}
        return {t: int(n) for t, n in self.wh.query(self.sql.ids_per_type(), [self.scope])}

    # --- writes ----------------------------------------------------------------------------
    def save(self, row: IdMapRow) -> None:
        """Buffer an id-map row (replacing any earlier one for its key) until the next flush."""
        self._pending[(row.model_name, row.row_key)] = row

    def log(self, entry: LogEntry) -> None:
        self._log.append(entry)

    @property
    def buffered(self) -> int:
        return len(self._pending) + len(self._log)

    def flush(self) -> None:
        """Write buffered rows and commit: a checkpoint a killed run resumes from."""
        rows = list(self._pending.values())
        for start in range(0, len(rows), WRITE_BATCH):
            batch = rows[start : start + WRITE_BATCH]
            by_model: dict[str, list[str]] = {}
            for row in batch:
                by_model.setdefault(row.model_name, []).append(row.row_key)
            for model, keys in by_model.items():
                self.wh.execute(self.sql.delete_keys(len(keys)), [self.scope, model, *keys])
            for r in batch:
                r.id_sig = (
                    id_signature(self.scope, r.model_name, r.row_key, r.crm_id)
                    if r.crm_id
                    else None
                )
            self._insert(
                self.sql.tables.id_map,
                ["crm_scope", *ID_MAP_COLUMNS],
                ([self.scope, *(getattr(r, c) for c in ID_MAP_COLUMNS)] for r in batch),
            )
        for start in range(0, len(self._log), WRITE_BATCH):
            self._insert(
                self.sql.tables.sync_log,
                ["crm_scope", *LOG_COLUMNS],
                (
                    [self.scope, *(getattr(e, c) for c in LOG_COLUMNS)]
                    for e in self._log[start : start + WRITE_BATCH]
                ),
            )
        if self.on_flush is not None:
            self.on_flush()
        self.wh.commit()
        self._pending.clear()
        self._log.clear()

    def forget(self, model: str, keys: Sequence[str]) -> None:
        """Delete the id map rows of some keys (``state resolve --create``), committed."""
        self.wh.execute(self.sql.delete_keys(len(keys)), [self.scope, model, *keys])
        self.wh.commit()

    def _insert(self, relation: str, columns: list[str], rows: Iterable[list]) -> None:
        rows = list(rows)
        if not rows:
            return
        self.wh.execute(
            self.sql.insert(relation, columns, len(rows)),
            [value for row in rows for value in row],
        )

    # --- lease tickets ---------------------------------------------------------------------
    def add_ticket(self, ticket: LeaseTicket) -> None:
        self._insert(
            self.sql.tables.lease,
            ["crm_scope", *LEASE_COLUMNS],
            [[self.scope, *(getattr(ticket, c) for c in LEASE_COLUMNS)]],
        )
        self.wh.commit()

    def live_tickets(self, now) -> list[LeaseTicket]:
        rows = self.wh.query(self.sql.lease_tickets(), [self.scope, now])
        return [LeaseTicket(*row) for row in rows]

    def update_ticket(self, run_id: str, commit: bool = True, **values) -> None:
        names = list(values)
        self.wh.execute(
            self.sql.lease_update(names), [*(values[n] for n in names), self.scope, run_id]
        )
        if commit:
            self.wh.commit()

    def drop_ticket(self, run_id: str) -> None:
        self.wh.execute(self.sql.lease_delete(), [self.scope, run_id])
        self.wh.commit()

    def drop_expired_tickets(self, now) -> None:
        self.wh.execute(self.sql.lease_delete(expired=True), [self.scope, now])
        self.wh.commit()
