"""Every SQL statement the state needs, built from a small dialect; pure (golden-tested).

Only portable SQL: CTEs, window-free ``group by``, ``case``, ``||``, ``replace``, an md5 through
the warehouse's own ``hash`` macro, binding placeholders, and delete + insert instead of MERGE,
so DuckDB and PostgreSQL are tested and Snowflake or BigQuery are not ruled out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.sync.keys import CONTENT_PREFIX, ESCAPE, SEPARATOR
from dbt_rdcrm.sync.records import IdMapRow, LeaseTicket, LogEntry

ID_MAP_COLUMNS = [f.name for f in fields(IdMapRow)]
LOG_COLUMNS = [f.name for f in fields(LogEntry)]
LEASE_COLUMNS = [f.name for f in fields(LeaseTicket)]
TIMESTAMP_COLUMNS = frozenset(
    {
        "synced_at",
        "pending_since",
        "updated_at",
        "logged_at",
        "ticket_at",
        "expires_at",
        "confirmed_at",
    }
)
INTEGER_COLUMNS = frozenset({"http_status"})
STATE_COLUMNS = ID_MAP_COLUMNS[2:]  # what the work query brings along for each row
EMPTY_ID_MAP = "rdcrm_empty_id_map"


@dataclass(frozen=True)
class Dialect:
    """What differs between warehouses: quoting, placeholders, types and the md5 function."""

    quote_char: str
    binding: str
    string_type: str
    timestamp_type: str
    integer_type: str
    hash_template: str  # SQL with ``{}`` where the text expression goes

    def quote(self, identifier: str) -> str:
        q = self.quote_char
        return q + identifier.replace(q, q + q) + q

    def text(self, expr: str) -> str:
        return f"cast({expr} as {self.string_type})"

    def hash(self, expr: str) -> str:
        return self.hash_template.replace("{}", expr)

    def column_type(self, column: str) -> str:
        if column in TIMESTAMP_COLUMNS:
            return self.timestamp_type
        return self.integer_type if column in INTEGER_COLUMNS else self.string_type


@dataclass(frozen=True)
class Tables:
    """The state relations, already rendered (quoted) by the adapter."""

    id_map: str
    sync_log: str
    lease: str


class StateSql:
    """Statements over the state tables of one CRM scope."""

    def __init__(self, dialect: Dialect, tables: Tables, *, empty_id_map: bool = False):
        self.d = dialect
        self.tables = tables
        self.empty_id_map = empty_id_map  # a plan before the first sync: no tables yet
        self.absent: frozenset[str] = frozenset()  # id map columns an older version lacks

    # --- schema ----------------------------------------------------------------------------
    def create_table(self, relation: str, columns: Sequence[str]) -> str:
        body = ", ".join(f"{self.d.quote(c)} {self.d.column_type(c)}" for c in columns)
        return f"create table if not exists {relation} ({body})"

    def add_column(self, relation: str, column: str) -> str:
        return (
            f"alter table {relation} add column {self.d.quote(column)} {self.d.column_type(column)}"
        )

    def table_columns(self) -> dict[str, list[str]]:
        return {
            self.tables.id_map: ["crm_scope", *ID_MAP_COLUMNS],
            self.tables.sync_log: ["crm_scope", *LOG_COLUMNS],
            self.tables.lease: ["crm_scope", *LEASE_COLUMNS],
        }

    # --- keys and hashes -------------------------------------------------------------------
    def key_expr(self, columns: Sequence[str]) -> str:
        """Row key as text (see :mod:`dbt_rdcrm.sync.keys`); NULL when any column is NULL."""
        casts = [self.d.text(c) for c in columns]
        if len(casts) == 1:
            return casts[0]
        nulls = " or ".join(f"{c} is null" for c in columns)
        escaped = [
            f"replace(replace({c}, '{ESCAPE}', '{ESCAPE}{ESCAPE}'), '{SEPARATOR}', "
            f"'{ESCAPE}{SEPARATOR}')"
            for c in casts
        ]
        joined = f" || '{SEPARATOR}' || ".join(escaped)
        return f"case when {nulls} then null else {joined} end"

    def content_key_expr(self, columns: Sequence[str]) -> str:
        """Key of a row without key columns: a digest of its content (never NULL)."""
        return f"'{CONTENT_PREFIX}' || " + self.hash_expr("content", columns)

    def hash_expr(self, salt: str, parts: Sequence[str]) -> str:
        pieces = [f"'{salt}'"] + [
            f"case when {p} is null then 'N' else 'V' || {self.d.text(p)} end" for p in parts
        ]
        return self.d.hash(" || '|' || ".join(pieces))

    # --- the work query --------------------------------------------------------------------
    @property
    def id_map(self) -> str:
        return EMPTY_ID_MAP if self.empty_id_map else self.tables.id_map

    def _empty_id_map_cte(self) -> str:
        cols = ", ".join(
            f"cast(null as {self.d.column_type(c)}) as {c}" for c in ["crm_scope", *ID_MAP_COLUMNS]
        )
        return f"{EMPTY_ID_MAP} as (select {cols} where 1 = 0),"

    def _row_key(self, spec: SyncSpec, alias: dict[str, str]) -> str:
        if spec.key:
            return self.key_expr([alias[c] for c in spec.key])
        return self.content_key_expr([alias[c] for c in spec.columns])

    def duplicate_keys(self, spec: SyncSpec, actual: dict[str, str]) -> str:
        """Count of keys that two or more rows share (a cheap scan of the key columns)."""
        q = self.d.quote
        columns = spec.key or spec.columns
        alias = {c: q(actual[c]) for c in columns}
        key = self._row_key(spec, alias)
        return (
            f"select count(*) from (select {key} as k from {spec.relation.rendered} "
            f"group by {key} having count(*) > 1) d where k is not null"
        )

    def hashed(
        self, spec: SyncSpec, actual: dict[str, str], scope: str, *, duplicates: bool
    ) -> tuple[str, list]:
        """``with ... hashed as (...)``: every model row with its key, key count, linked parent
        ids and row hash, and ``current_state`` (key, id, hash of this model's id map rows)."""
        q, b = self.d.quote, self.d.binding
        alias = {column: f"c{i}" for i, column in enumerate(spec.columns)}
        select = ", ".join(f"{q(actual[c])} as {alias[c]}" for c in spec.columns)
        key = self._row_key(spec, alias)
        narrow = (
            f"select row_key, crm_id, synced_hash from {self.id_map} "
            f"where crm_scope = {b} and model_name = {b}"
        )
        parents, joins, link_cols, bindings = [], [], [], [scope, spec.model]
        for i, source in enumerate(spec.links):
            link_key = self.key_expr([f"counted.{alias[c]}" for c in source.link.columns])
            parents.append(f"p{i} as ({narrow}),")
            joins.append(f"left join p{i} on p{i}.row_key = {link_key}")
            link_cols.append(f", p{i}.crm_id as r_link{i}")
            bindings += [scope, source.link.model]
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
with {self._empty_id_map_cte() if self.empty_id_map else ""}
current_state as ({narrow}),
{" ".join(parents)} src as (
    select {select} from {spec.relation.rendered}
), keyed as (
    select src.*, {key} as r_key from src
), {counted}, linked as (
    select counted.*{"".join(link_cols)} from counted {" ".join(joins)}
), hashed as (
    select linked.*, {self.hash_expr(spec.fingerprint, hashed_parts)} as r_hash from linked
)"""
        return sql, bindings

    UNCHANGED = "r_key_count = 1 and s.crm_id is not null and s.synced_hash = r_hash"

    def count_unchanged(
        self, spec: SyncSpec, actual: dict[str, str], scope: str, *, duplicates: bool
    ) -> tuple[str, list]:
        sql, bindings = self.hashed(spec, actual, scope, duplicates=duplicates)
        return (
            sql + "\nselect count(*) from hashed "
            f"join current_state s on s.row_key = hashed.r_key where {self.UNCHANGED}"
        ), bindings

    def work(
        self,
        spec: SyncSpec,
        actual: dict[str, str],
        scope: str,
        *,
        full_refresh: bool,
        duplicates: bool,
        limit: int | None = None,
    ) -> tuple[str, list]:
        """Rows needing a decision, with their whole state row, ordered by key (the first
        ``limit`` of them when given)."""
        sql, bindings = self.hashed(spec, actual, scope, duplicates=duplicates)
        b = self.d.binding
        state_cols = ", ".join(
            f"cast(null as {self.d.column_type(c)}) as r_{c}"
            if c in self.absent
            else f"f.{c} as r_{c}"
            for c in STATE_COLUMNS
        )
        needs_work = "1 = 1" if full_refresh else f"not coalesce({self.UNCHANGED}, false)"
        return (
            sql
            + f"""
, todo as (
    select hashed.* from hashed left join current_state s on s.row_key = hashed.r_key
    where {needs_work}
)
select todo.*, {state_cols} from todo
left join {self.id_map} f on f.crm_scope = {b} and f.model_name = {b} and f.row_key = todo.r_key
order by todo.r_key{"" if limit is None else f" limit {int(limit)}"}""",
            [*bindings, scope, spec.model],
        )

    # --- id map reads ----------------------------------------------------------------------
    def state_rows(self, count: int) -> str:
        """The id map rows of some keys of one model (``count`` key placeholders)."""
        b = self.d.binding
        cols = ", ".join(ID_MAP_COLUMNS)
        marks = ", ".join([b] * count)
        return (
            f"select {cols} from {self.tables.id_map} where crm_scope = {b} and "
            f"model_name = {b} and row_key in ({marks})"
        )

    def holders_of(self) -> str:
        """Keys of one model that hold a given CRM id."""
        b = self.d.binding
        return (
            f"select row_key from {self.tables.id_map} where crm_scope = {b} and "
            f"model_name = {b} and crm_id = {b}"
        )

    def model_rows(self) -> str:
        """How many id map rows one model has per CRM scope (a lost or moved state shows)."""
        b = self.d.binding
        return (
            f"select crm_scope, count(*) from {self.tables.id_map} where model_name = {b} "
            "and crm_id is not null group by crm_scope"
        )

    def edited_ids(self) -> str:
        """Keys of one model whose CRM id no longer matches the signature the tool recorded."""
        b = self.d.binding
        text = "crm_scope || '|' || model_name || '|' || row_key || '|' || crm_id"
        return (
            f"select row_key from {self.tables.id_map} where crm_scope = {b} and "
            f"model_name = {b} and crm_id is not null and id_sig is not null and "
            f"id_sig <> {self.d.hash(text)}"
        )

    def shared_ids(self) -> str:
        """CRM ids that two or more keys of one model hold."""
        b = self.d.binding
        return (
            f"select crm_id, count(*) from {self.tables.id_map} where crm_scope = {b} and "
            f"model_name = {b} and crm_id is not null group by crm_id having count(*) > 1"
        )

    def owned_ids(self) -> str:
        """(model, key, CRM id) of every id map row of one object type (an audit's owners)."""
        b = self.d.binding
        return (
            f"select model_name, row_key, crm_id from {self.tables.id_map} where crm_scope = {b} "
            f"and object_type = {b} and crm_id is not null"
        )

    def ids_per_type(self) -> str:
        """How many distinct CRM ids the id map holds per object type (an audit's cost)."""
        b = self.d.binding
        return (
            f"select object_type, count(distinct crm_id) from {self.tables.id_map} "
            f"where crm_scope = {b} and crm_id is not null group by object_type"
        )

    # --- writes ----------------------------------------------------------------------------
    def delete_keys(self, count: int) -> str:
        b = self.d.binding
        marks = ", ".join([b] * count)
        return (
            f"delete from {self.tables.id_map} where crm_scope = {b} and "
            f"model_name = {b} and row_key in ({marks})"
        )

    def insert(self, relation: str, columns: Sequence[str], rows: int) -> str:
        b = self.d.binding
        one = "(" + ", ".join([b] * len(columns)) + ")"
        names = ", ".join(self.d.quote(c) for c in columns)
        return f"insert into {relation} ({names}) values " + ", ".join([one] * rows)

    # --- lease -----------------------------------------------------------------------------
    def lease_tickets(self) -> str:
        b = self.d.binding
        cols = ", ".join(LEASE_COLUMNS)
        return (
            f"select {cols} from {self.tables.lease} where crm_scope = {b} and expires_at > {b} "
            "order by ticket_at, run_id"
        )

    def lease_update(self, assignments: Sequence[str]) -> str:
        b = self.d.binding
        sets = ", ".join(f"{self.d.quote(c)} = {b}" for c in assignments)
        return f"update {self.tables.lease} set {sets} where crm_scope = {b} and run_id = {b}"

    def lease_delete(self, *, expired: bool = False) -> str:
        b = self.d.binding
        if expired:
            return f"delete from {self.tables.lease} where crm_scope = {b} and expires_at <= {b}"
        return f"delete from {self.tables.lease} where crm_scope = {b} and run_id = {b}"
