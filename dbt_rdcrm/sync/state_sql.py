"""Every SQL statement the state needs, built from a small dialect; pure (golden-tested).

Statements over the state tables are here; those that read a model against its id map are in
:mod:`dbt_rdcrm.sync.work_sql` (:class:`StateSql` has both). Only portable SQL: CTEs,
window-free ``group by``, ``case``, ``||``, ``replace``, an md5 through the warehouse's own
``hash`` macro, binding placeholders, and delete + insert instead of MERGE, so DuckDB and
PostgreSQL are tested and Snowflake or BigQuery are not ruled out.
"""

from __future__ import annotations

from collections.abc import Sequence

from dbt_rdcrm.sync.sql_base import (
    EMPTY_ID_MAP,
    ID_MAP_COLUMNS,
    INTEGER_COLUMNS,
    LEASE_COLUMNS,
    LOG_COLUMNS,
    STATE_COLUMNS,
    TIMESTAMP_COLUMNS,
    Dialect,
    Tables,
)
from dbt_rdcrm.sync.work_sql import WORK_STATE_COLUMNS, WorkSql

__all__ = [
    "EMPTY_ID_MAP",
    "ID_MAP_COLUMNS",
    "INTEGER_COLUMNS",
    "LEASE_COLUMNS",
    "LOG_COLUMNS",
    "STATE_COLUMNS",
    "TIMESTAMP_COLUMNS",
    "WORK_STATE_COLUMNS",
    "Dialect",
    "StateSql",
    "Tables",
]


class StateSql(WorkSql):
    """Statements over the state tables of one CRM scope (and, inherited, over a model's
    rows against them)."""

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

    # --- run meta (:mod:`dbt_rdcrm.sync.run_meta`) -----------------------------------------
    def meta_value(self, relation: str) -> str:
        """The value of one key of one CRM scope in the run meta table ``relation``."""
        return f"select {self.d.quote('meta_value')} from {relation} where {self._meta_row()}"

    def meta_delete(self, relation: str) -> str:
        return f"delete from {relation} where {self._meta_row()}"

    def _meta_row(self) -> str:
        q, b = self.d.quote, self.d.binding
        return f"{q('crm_scope')} = {b} and {q('meta_key')} = {b}"

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

    def state_size(self) -> str:
        """How many id map rows one model has (in one scope)."""
        b = self.d.binding
        return (
            f"select count(*) from {self.tables.id_map} where crm_scope = {b} and model_name = {b}"
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

    def has_ids(self) -> str:
        """A row when one model holds at least one CRM id in this scope (none: empty)."""
        b = self.d.binding
        return (
            f"select 1 from {self.tables.id_map} where crm_scope = {b} and model_name = {b} "
            "and crm_id is not null limit 1"
        )

    def edited_ids(self) -> str:
        """Keys of one model whose CRM id no longer matches the signature the tool recorded."""
        b = self.d.binding
        return (
            f"select row_key from {self.tables.id_map} where crm_scope = {b} and "
            f"model_name = {b} and crm_id is not null and id_sig is not null and "
            f"id_sig <> {self.signature()}"
        )

    def shared_ids(self) -> str:
        """CRM ids that two or more keys of one model hold, one of them without a signature
        (keys whose signatures match were each given their id by the tool)."""
        b, sig = self.d.binding, self.id_sig()
        return (
            f"select crm_id, count(*) from {self.tables.id_map} where crm_scope = {b} and "
            f"model_name = {b} and crm_id in (select crm_id from {self.tables.id_map} where "
            f"crm_scope = {b} and model_name = {b} and crm_id is not null and {sig} is null) "
            "group by crm_id having count(*) > 1"
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
