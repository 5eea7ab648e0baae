"""The SQL that reads a model against its id map: row keys, row hashes, and the rows that need
work; pure (golden-tested through :class:`dbt_rdcrm.sync.state_sql.StateSql`).

A run reads a model in (at most) two passes that hash every row in the warehouse, after a scan
of its keys alone (whether a key repeats: then rows that share a key are counted as such):

- the census counts the model's rows and those unchanged since the last sync; a run with
  nothing to do ends there;
- the work query streams only the rows that need a decision, each with its state row (one
  join of the id map), in no particular order (the spool sorts them by key).

The join holds the model's id map rows in memory. Where that memory is the client's (DuckDB
runs in the process), a large model is read in parts: each statement takes the rows whose key
falls in one slice (``Part``), so one part's id map rows are held at a time.

Only portable SQL: CTEs, ``group by``, ``case``, ``||``, ``replace``, ``count(distinct)``,
an md5 through the warehouse's own ``hash`` macro and binding placeholders; what one warehouse
does better comes from its :class:`Dialect` (DuckDB's parts use its ``hash()``; ``concat``).
"""

from __future__ import annotations

from collections.abc import Sequence

from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.sync.keys import CONTENT_PREFIX, ESCAPE, SEPARATOR
from dbt_rdcrm.sync.sql_base import EMPTY_ID_MAP, ID_MAP_COLUMNS, STATE_COLUMNS, Dialect, Tables

Part = tuple[int, int]  # (this slice, of how many)
EDITED, UNSIGNED = "edited", "unsigned"  # why a row of work's CRM id is in doubt

# The state a row of work carries: all but the id signature, which every write recomputes
# (and which the check before any write reads from the id map itself).
WORK_STATE_COLUMNS = [c for c in STATE_COLUMNS if c != "id_sig"]


class WorkSql:
    """Statements over one model's rows and the id map of one CRM scope."""

    # A row the last sync left in step: its key is unique, and the CRM holds its hash.
    UNCHANGED = "r_key_count = 1 and s.crm_id is not null and s.synced_hash = r_hash"

    def __init__(self, dialect: Dialect, tables: Tables, *, empty_id_map: bool = False):
        self.d = dialect
        self.tables = tables
        self.empty_id_map = empty_id_map  # a plan before the first sync: no tables yet
        self.absent: frozenset[str] = frozenset()  # id map columns an older version lacks

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
        """md5 of ``salt|`` and each part as ``N`` (NULL) or ``V`` and its text, ``|``-joined."""
        pieces = [f"'{salt}'"]
        for p in parts:
            pieces += ["'|'", f"case when {p} is null then 'N' else 'V' || {self.d.text(p)} end"]
        return self.d.hash(self.d.join(pieces))

    # --- CRM id signatures -----------------------------------------------------------------
    def signature(self, alias: str = "") -> str:
        """What an id map row's ``id_sig`` must be: the md5 the tool records beside each CRM
        id (``records.id_signature``), of the row at ``alias`` (a table alias, or none)."""
        at = f"{alias}." if alias else ""
        parts = [f"{at}{c}" for c in ("crm_scope", "model_name", "row_key", "crm_id")]
        return self.d.hash(" || '|' || ".join(parts))

    def id_sig(self, alias: str = "") -> str:
        """The ``id_sig`` column, or NULL on tables of a version that did not record it."""
        if "id_sig" in self.absent:
            return f"cast(null as {self.d.column_type('id_sig')})"
        return f"{alias}.id_sig" if alias else "id_sig"

    def id_check(self, alias: str) -> str:
        """Whether the CRM id of the id map row at ``alias`` can be used: NULL when it matches
        its signature (or there is no id), ``'edited'`` when it no longer does (changed outside
        the tool), ``'unsigned'`` when it has none (written by hand, or by a version that did
        not sign: used only if no other key holds the same id)."""
        sig = self.id_sig(alias)
        return (
            f"case when {alias}.crm_id is null then null when {sig} is null then '{UNSIGNED}' "
            f"when {sig} <> {self.signature(alias)} then '{EDITED}' end"
        )

    # --- the model's rows ------------------------------------------------------------------
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

    def _state(self, columns: str, part: Part | None = None) -> str:
        """This model's id map rows (one scope, one part); bindings: scope, model."""
        b = self.d.binding
        return (
            f"select {columns} from {self.id_map} where crm_scope = {b} and model_name = {b}"
            + self._in_part("row_key", part, "and")
        )

    def _in_part(self, key: str, part: Part | None, glue: str) -> str:
        if part is None:
            return ""
        slice_of = self.d.part(f"coalesce({key}, '')", part[1])
        return f" {glue} {slice_of} = {part[0]}"

    def hashed(
        self,
        spec: SyncSpec,
        actual: dict[str, str],
        scope: str,
        *,
        duplicates: bool,
        part: Part | None = None,
        id_checks: bool = False,
    ) -> tuple[str, list]:
        """``with ... hashed as (...)``: every model row (of one part) with its key, key count
        (1 unless ``duplicates``: then how many rows share it), linked parent ids and row
        hash. The rows that share a key are in the same part. With ``id_checks``, each linked
        parent id also comes with its parent's key and whether it can be used
        (:meth:`id_check`)."""
        q = self.d.quote
        alias = {column: f"c{i}" for i, column in enumerate(spec.columns)}
        select = ", ".join(f"{q(actual[c])} as {alias[c]}" for c in spec.columns)
        key = self._row_key(spec, alias)
        parents, joins, link_cols, bindings = [], [], [], []
        for i, source in enumerate(spec.links):
            link_key = self.key_expr([f"counted.{alias[c]}" for c in source.link.columns])
            columns = "row_key, crm_id"
            if id_checks:
                columns = f"crm_scope, model_name, row_key, crm_id, {self.id_sig()} as id_sig"
                link_cols.append(
                    f", p{i}.row_key as r_link_key{i}, {self.id_check(f'p{i}')} as r_link_check{i}"
                )
            parents.append(f"p{i} as ({self._state(columns)}),")
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
{" ".join(parents)} src as (
    select {select} from {spec.relation.rendered}
), keyed as (
    select src.*, {key} as r_key from src{self._in_part(key, part, "where")}
), {counted}, linked as (
    select counted.*{"".join(link_cols)} from counted {" ".join(joins)}
), hashed as (
    select linked.*, {self.hash_expr(spec.fingerprint, hashed_parts)} as r_hash from linked
)"""
        return sql, bindings

    def repeated_keys(
        self, spec: SyncSpec, actual: dict[str, str], part: Part | None = None
    ) -> str:
        """How many rows more the model has than distinct keys (more than 0: a key repeats): a
        scan of the key columns alone (``count(distinct)``, which PostgreSQL sorts in one
        process, costs a fraction of a ``group by ... having`` there)."""
        q = self.d.quote
        columns = spec.key or spec.columns
        key = self._row_key(spec, {c: q(actual[c]) for c in columns})
        return (
            f"select count(k) - count(distinct k) from (select {key} as k from "
            f"{spec.relation.rendered}{self._in_part(key, part, 'where')}) keys"
        )

    def census(
        self,
        spec: SyncSpec,
        actual: dict[str, str],
        scope: str,
        *,
        duplicates: bool,
        part: Part | None = None,
    ) -> tuple[str, list]:
        """One row: the model's rows (of one part) and how many of them the last sync left
        unchanged. Rows that need work are the others: a run without any reads no row."""
        sql, bindings = self.hashed(spec, actual, scope, duplicates=duplicates, part=part)
        return (
            sql
            + f"""
select count(*), coalesce(sum(case when {self.UNCHANGED} then 1 else 0 end), 0)
from hashed left join ({self._state("row_key, crm_id, synced_hash", part)}) s
    on s.row_key = hashed.r_key""",
            [*bindings, scope, spec.model],
        )

    def work(
        self,
        spec: SyncSpec,
        actual: dict[str, str],
        scope: str,
        *,
        full_refresh: bool,
        duplicates: bool,
        limit: int | None = None,
        part: Part | None = None,
    ) -> tuple[str, list]:
        """Rows needing a decision (of one part), with their state row: unordered, or the
        first ``limit`` of them by key."""
        sql, bindings = self.hashed(
            spec, actual, scope, duplicates=duplicates, part=part, id_checks=True
        )
        state_cols = ", ".join(
            f"cast(null as {self.d.column_type(c)}) as r_{c}"
            if c in self.absent
            else f"s.{c} as r_{c}"
            for c in WORK_STATE_COLUMNS
        )
        needs_work = "1 = 1" if full_refresh else f"not coalesce({self.UNCHANGED}, false)"
        top = "" if limit is None else f"\norder by hashed.r_key limit {int(limit)}"
        return (
            sql
            + f"""
select hashed.*, {state_cols}, {self.id_check("s")} as r_id_check from hashed
left join ({self._state("*", part)}) s on s.row_key = hashed.r_key
where {needs_work}{top}""",
            [*bindings, scope, spec.model],
        )
