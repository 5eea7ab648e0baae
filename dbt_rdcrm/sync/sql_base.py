"""What every state statement is built from: the warehouse's dialect, the state tables and
their columns (the statements themselves: :mod:`dbt_rdcrm.sync.work_sql` for the model's rows,
:mod:`dbt_rdcrm.sync.state_sql` for the state tables)."""

from __future__ import annotations

from dataclasses import dataclass, fields

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
    # SQL with ``{expr}`` and ``{parts}``: which of ``parts`` slices a text value falls in
    # (None: the warehouse reads a model in one part; see :mod:`dbt_rdcrm.sync.work_sql`)
    part_template: str | None = None
    # Joining many strings with one ``concat(...)`` instead of ``||`` (the same text): DuckDB
    # builds a row's hashed text a third faster so; PostgreSQL is slower with it.
    concat: bool = False

    def quote(self, identifier: str) -> str:
        q = self.quote_char
        return q + identifier.replace(q, q + q) + q

    def text(self, expr: str) -> str:
        return f"cast({expr} as {self.string_type})"

    def hash(self, expr: str) -> str:
        return self.hash_template.replace("{}", expr)

    def join(self, pieces: list[str]) -> str:
        if self.concat and len(pieces) > 1:
            return f"concat({', '.join(pieces)})"
        return " || ".join(pieces)

    def part(self, expr: str, parts: int) -> str:
        assert self.part_template is not None
        return self.part_template.format(expr=expr, parts=parts)

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
