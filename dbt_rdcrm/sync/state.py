"""Sync state in the warehouse: the id map, the sync log, and the query that finds work.

Two tables in the state schema (created on first use, documented in the README):

- ``rdcrm_id_map``: one row per (CRM scope, model, row key): the CRM id, the hash of the last
  payload the CRM accepted, a pending create intent, and the last refusal.
- ``rdcrm_sync_log``: one row per row outcome that changed something or needs attention.

The join of a model against its state runs in the warehouse: only rows that need work (new,
changed, pending, refused, invalid keys) travel to Python, so a no-change run reads no rows.
Only portable SQL is used: CTEs, window ``count(*)``, ``case``, ``||``, ``md5`` through the
warehouse's dialect helper, binding placeholders, delete + insert instead of MERGE.
"""

from __future__ import annotations

import datetime as dt
import pickle
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields

from dbt_rdcrm.config.specs import SyncSpec

KEY_SEPARATOR = "|"
WRITE_BATCH = 200


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@dataclass(frozen=True)
class StateConfig:
    database: str | None
    schema: str
    id_map: str = "rdcrm_id_map"
    sync_log: str = "rdcrm_sync_log"


@dataclass
class IdMapRow:
    model_name: str
    row_key: str
    object_type: str
    crm_id: str | None = None
    synced_hash: str | None = None
    synced_at: dt.datetime | None = None
    pending_hash: str | None = None
    pending_since: dt.datetime | None = None
    refused_hash: str | None = None
    refused_reason: str | None = None
    updated_at: dt.datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class LogEntry:
    run_id: str
    invocation_id: str | None
    model_name: str
    row_key: str | None
    operation: str
    outcome: str
    http_status: int | None
    reason: str | None
    crm_id: str | None
    logged_at: dt.datetime


@dataclass
class WorkRow:
    """One model row that needs a decision, with what the state knows about its key."""

    number: int  # 1-based position in this run's work, for rows without a usable key
    values: dict[str, object]
    key: str | None
    key_count: int
    row_hash: str
    link_ids: dict[str, str | None]
    state: IdMapRow | None


ID_MAP_COLUMNS = [f.name for f in fields(IdMapRow)]
LOG_COLUMNS = [f.name for f in fields(LogEntry)]
TIMESTAMP_COLUMNS = frozenset({"synced_at", "pending_since", "updated_at", "logged_at"})


class WorkSpool:
    """The work query's rows, spooled to a temporary file; iterate once, then close."""

    def __init__(self, spec: SyncSpec, names: list[str], file, count: int):
        self.spec = spec
        self.names = names
        self.file = file
        self.count = count

    def __enter__(self) -> WorkSpool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.file.close()

    def __iter__(self) -> Iterator[WorkRow]:
        if not self.count:
            return
        spec = self.spec
        position = {name: i for i, name in enumerate(self.names)}
        value_index = [(column, position[f"c{i}"]) for i, column in enumerate(spec.columns)]
        link_index = [(s.field, position[f"r_link{i}"]) for i, s in enumerate(spec.links)]
        state_index = [(c, position[f"r_{c}"]) for c in ID_MAP_COLUMNS[2:]]
        number = 0
        while True:
            try:
                rows = pickle.load(self.file)
            except EOFError:
                return
            for row in rows:
                number += 1
                key = row[position["r_key"]]
                known = {c: row[i] for c, i in state_index}
                state = (
                    IdMapRow(spec.model, key, **known)
                    if key is not None and known["object_type"] is not None
                    else None
                )
                yield WorkRow(
                    number=number,
                    values={column: row[i] for column, i in value_index},
                    key=key,
                    key_count=int(row[position["r_key_count"]]),
                    row_hash=row[position["r_hash"]],
                    link_ids={f: row[i] for f, i in link_index},
                    state=state,
                )


class StateStore:
    """State tables of one CRM scope (base URL) in one warehouse."""

    def __init__(self, warehouse, config: StateConfig, scope: str):
        self.wh = warehouse
        self.config = config
        self.scope = scope
        self._pending: list[IdMapRow] = []
        self._log: list[LogEntry] = []
        self.read_only_empty = False  # dry run before the first sync: no tables yet

    # --- naming ----------------------------------------------------------------------------
    EMPTY_ID_MAP = "rdcrm_empty_id_map"

    @property
    def id_map(self) -> str:
        if self.read_only_empty:
            return self.EMPTY_ID_MAP  # a CTE that work_sql defines
        return self.wh.relation(self.config.database, self.config.schema, self.config.id_map)

    def _column_type(self, column: str) -> str:
        """The warehouse type of a state table column."""
        if column in TIMESTAMP_COLUMNS:
            return self.wh.timestamp_type
        return self.wh.integer_type if column == "http_status" else self.wh.string_type

    def _empty_id_map(self) -> str:
        """A CTE shaped like the id map with no rows (for a plan before any sync)."""
        cols = ", ".join(
            f"cast(null as {self._column_type(c)}) as {c}" for c in ["crm_scope", *ID_MAP_COLUMNS]
        )
        return f"{self.EMPTY_ID_MAP} as (select {cols} where 1 = 0),"

    def exists(self) -> bool:
        cfg = self.config
        return (
            self.wh.get_columns(cfg.database, cfg.schema, cfg.id_map) is not None
            and self.wh.get_columns(cfg.database, cfg.schema, cfg.sync_log) is not None
        )

    @property
    def sync_log(self) -> str:
        return self.wh.relation(self.config.database, self.config.schema, self.config.sync_log)

    def _text(self, expr: str) -> str:
        return self.wh.cast_text(expr)

    # --- schema ----------------------------------------------------------------------------
    def ensure(self) -> None:
        """Create the schema and tables if missing (idempotent), then commit."""
        self.wh.create_schema(self.config.database, self.config.schema)
        for relation, columns in (
            (self.id_map, ["crm_scope", *ID_MAP_COLUMNS]),
            (self.sync_log, ["crm_scope", *LOG_COLUMNS]),
        ):
            body = ", ".join(f"{self.wh.quote(c)} {self._column_type(c)}" for c in columns)
            self.wh.execute(f"create table if not exists {relation} ({body})")
        self.wh.commit()

    # --- the work query --------------------------------------------------------------------
    def _key_expr(self, columns: Sequence[str]) -> str:
        """Row key as text; NULL when any key column is NULL."""
        casts = [self._text(c) for c in columns]
        if len(casts) == 1:
            return casts[0]
        nulls = " or ".join(f"{c} is null" for c in columns)
        joined = f" || '{KEY_SEPARATOR}' || ".join(casts)
        return f"case when {nulls} then null else {joined} end"

    def _hash_expr(self, fingerprint: str, parts: Sequence[str]) -> str:
        pieces = [f"'{fingerprint}'"] + [
            f"case when {p} is null then 'N' else 'V' || {self._text(p)} end" for p in parts
        ]
        return self.wh.hash_expr(" || '|' || ".join(pieces))

    def has_duplicate_keys(self, spec: SyncSpec, actual: dict[str, str]) -> bool:
        """Whether two rows share a key: a cheap scan of the key columns alone, so the
        (rare) duplicate handling is only joined into the work query when needed."""
        key = self._key_expr([self.wh.quote(actual[c]) for c in spec.key])
        sql = (
            f"select count(*) from (select {key} as k from {spec.relation.rendered} "
            f"group by {key} having count(*) > 1) d where k is not null"
        )
        return int(self.wh.query(sql)[0][0]) > 0

    def hashed_sql(
        self, spec: SyncSpec, actual: dict[str, str], *, duplicates: bool = True
    ) -> tuple[str, list]:
        """``with ... hashed as (...)``: every model row with its key, key count, linked parent
        ids and row hash, and ``current_state`` (key, id, hash of this model's id map rows).

        Change detection joins these narrow projections so the warehouse keeps little in
        memory; callers add the final ``select``."""
        q = self.wh.quote
        b = self.wh.binding_char
        alias = {column: f"c{i}" for i, column in enumerate(spec.columns)}
        select = ", ".join(f"{q(actual[c])} as {alias[c]}" for c in spec.columns)
        key = self._key_expr([alias[c] for c in spec.key])
        narrow = (
            f"select row_key, crm_id, synced_hash from {self.id_map} "
            f"where crm_scope = {b} and model_name = {b}"
        )
        parents, joins, link_cols, bindings = [], [], [], [self.scope, spec.model]
        for i, source in enumerate(spec.links):
            link_key = self._key_expr([f"counted.{alias[c]}" for c in source.link.columns])
            parents.append(f"p{i} as ({narrow}),")
            joins.append(f"left join p{i} on p{i}.row_key = {link_key}")
            link_cols.append(f", p{i}.crm_id as r_link{i}")
            bindings += [self.scope, source.link.model]
        hashed_parts = [alias[c] for c in spec.columns] + [
            f"r_link{i}" for i in range(len(spec.links))
        ]
        counted = (
            """repeated as (
    select r_key as r_dup_key, count(*) as r_dup_count from keyed
    where r_key is not null group by r_key having count(*) > 1
), counted as (
    select keyed.*, coalesce(r_dup_count, 1) as r_key_count
    from keyed left join repeated on r_dup_key = r_key
)"""
            if duplicates
            else "counted as (select keyed.*, 1 as r_key_count from keyed)"
        )
        sql = f"""
with {self._empty_id_map() if self.read_only_empty else ""}
current_state as ({narrow}),
{" ".join(parents)} src as (
    select {select} from {spec.relation.rendered}
), keyed as (
    select src.*, {key} as r_key from src
), {counted}, linked as (
    select counted.*{"".join(link_cols)} from counted {" ".join(joins)}
), hashed as (
    select linked.*, {self._hash_expr(spec.fingerprint, hashed_parts)} as r_hash from linked
)"""
        return sql, bindings

    def work_sql(
        self,
        spec: SyncSpec,
        actual: dict[str, str],
        *,
        full_refresh: bool,
        only_count: bool,
        duplicates: bool = True,
    ) -> tuple[str, list]:
        """The query that finds work (or, with ``only_count``, counts unchanged rows); the wide
        state columns are joined only for the rows that need work."""
        sql, bindings = self.hashed_sql(spec, actual, duplicates=duplicates)
        unchanged = "r_key_count = 1 and s.crm_id is not null and s.synced_hash = r_hash"
        if only_count:
            return (
                sql + "\nselect count(*) from hashed "
                f"join current_state s on s.row_key = hashed.r_key where {unchanged}"
            ), bindings
        b = self.wh.binding_char
        state_cols = ", ".join(f"f.{c} as r_{c}" for c in ID_MAP_COLUMNS[2:])
        needs_work = "1 = 1" if full_refresh else f"not coalesce({unchanged}, false)"
        return (
            sql
            + f"""
, todo as (
    select hashed.* from hashed left join current_state s on s.row_key = hashed.r_key
    where {needs_work}
)
select todo.*, {state_cols} from todo
left join {self.id_map} f on f.crm_scope = {b} and f.model_name = {b} and f.row_key = todo.r_key
order by todo.r_key""",
            [*bindings, self.scope, spec.model],
        )

    def count_unchanged(
        self,
        spec: SyncSpec,
        actual: dict[str, str],
        *,
        full_refresh: bool = False,
        duplicates: bool = True,
    ) -> int:
        if full_refresh:
            return 0
        sql, bindings = self.work_sql(
            spec, actual, full_refresh=False, only_count=True, duplicates=duplicates
        )
        return int(self.wh.query(sql, bindings)[0][0])

    def work(
        self,
        spec: SyncSpec,
        actual: dict[str, str],
        *,
        full_refresh: bool = False,
        duplicates: bool = True,
    ) -> WorkSpool:
        """Rows needing a decision, ordered by key.

        The result is spooled to a temporary file first, so the warehouse connection is free for
        state writes while rows are processed (a second query on a connection that is still
        streaming can silently end the stream) and memory stays bounded."""
        sql, bindings = self.work_sql(
            spec, actual, full_refresh=full_refresh, only_count=False, duplicates=duplicates
        )
        spool = tempfile.TemporaryFile(prefix="rdcrm-work-")  # noqa: SIM115 - WorkSpool closes it
        names: list[str] = []
        count = 0
        try:
            for chunk in self.wh.stream(sql, bindings):
                names = names or [c.lower() for c in chunk.columns]
                count += len(chunk.rows)
                pickle.dump(chunk.rows, spool, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return WorkSpool(spec, names, spool, count)

    # --- writes ----------------------------------------------------------------------------
    def save(self, row: IdMapRow) -> None:
        """Buffer an id-map row (replacing any earlier one for its key) until the next flush."""
        self._pending.append(row)

    def log(self, entry: LogEntry) -> None:
        self._log.append(entry)

    @property
    def buffered(self) -> int:
        return len(self._pending) + len(self._log)

    def flush(self) -> None:
        """Write buffered rows and commit: a checkpoint a killed run resumes from."""
        latest: dict[tuple[str, str], IdMapRow] = {}
        for row in self._pending:
            latest[(row.model_name, row.row_key)] = row
        rows = list(latest.values())
        b = self.wh.binding_char
        for start in range(0, len(rows), WRITE_BATCH):
            batch = rows[start : start + WRITE_BATCH]
            by_model: dict[str, list[str]] = {}
            for row in batch:
                by_model.setdefault(row.model_name, []).append(row.row_key)
            for model, keys in by_model.items():
                marks = ", ".join([b] * len(keys))
                self.wh.execute(
                    f"delete from {self.id_map} where crm_scope = {b} and "
                    f"model_name = {b} and row_key in ({marks})",
                    [self.scope, model, *keys],
                )
            self._insert(
                self.id_map,
                ["crm_scope", *ID_MAP_COLUMNS],
                [[self.scope, *(getattr(r, c) for c in ID_MAP_COLUMNS)] for r in batch],
            )
        for start in range(0, len(self._log), WRITE_BATCH):
            batch = self._log[start : start + WRITE_BATCH]
            self._insert(
                self.sync_log,
                ["crm_scope", *LOG_COLUMNS],
                [[self.scope, *(getattr(e, c) for c in LOG_COLUMNS)] for e in batch],
            )
        self.wh.commit()
        self._pending.clear()
        self._log.clear()

    def _insert(self, relation: str, columns: list[str], rows: list[list]) -> None:
        if not rows:
            return
        b = self.wh.binding_char
        one = "(" + ", ".join([b] * len(columns)) + ")"
        names = ", ".join(self.wh.quote(c) for c in columns)
        self.wh.execute(
            f"insert into {relation} ({names}) values " + ", ".join([one] * len(rows)),
            [value for row in rows for value in row],
        )
