"""How the warehouse's statements reach the database: straight on the DB-API connection that
dbt's adapter holds, with transactions and server-side cursors as each driver needs them.

dbt's ``add_query`` fires several events per statement, rendered through protobuf even when no
logger takes them: ~0.4 ms of CPU each, more than DuckDB spends on a small insert; a state
checkpoint is five or six statements. On the adapters whose handle is known here (DuckDB's
cursor wrapper, psycopg2), statements run on the handle inside the adapter's own exception
handler (which wraps the driver's errors and rolls back as dbt does), with the project's
query comment. With dbt's debug logging on (``--debug`` shows the SQL), and on any other
adapter, they go through ``add_query`` like dbt's own.

psycopg2: its default cursor buffers a whole result client-side, so streams use a named
(server-side) cursor. And commits go through the driver: a COMMIT statement is not seen by
psycopg2, after which it never begins another transaction and every statement autocommits
(rollback() would then discard nothing). On a connection in autocommit mode (the profile's
``autocommit: true``) psycopg2 begins nothing itself: transactions are explicit statements.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dbt.adapters.base import BaseAdapter
    from dbt.adapters.contracts.connection import Connection

PSYCOPG2_ADAPTERS = frozenset({"postgres"})
DIRECT_ADAPTERS = frozenset({"duckdb", "postgres"})  # handles whose DB-API use is known here
_cursor_names = (f"dbt_rdcrm_stream_{n}" for n in itertools.count(1))


@dataclass(frozen=True)
class Chunk:
    """Consecutive rows of a stream; never empty."""

    columns: list[str]
    rows: list[tuple]


class Statements:
    """Statements, transactions and streams on one adapter's connections (one per thread)."""

    def __init__(self, adapter: BaseAdapter, adapter_type: str, logged: Callable[[], bool]):
        self._adapter = adapter
        self._connections = adapter.connections
        # Per thread: how many operations have started on its connection; a stream remembers
        # the count it started with and refuses to go on once it changed.
        self._operations: dict[Hashable, int] = {}
        self.psycopg2 = adapter_type in PSYCOPG2_ADAPTERS
        self._direct = adapter_type in DIRECT_ADAPTERS
        self._logged = logged  # whether dbt's debug events are shown (they carry the SQL)
        self.transactions = not getattr(adapter.connections, "disable_transactions", False)

    def use(self, name: str) -> Connection:
        """This thread's connection, for a new operation (which ends any open stream on it)."""
        thread = self._connections.get_thread_identifier()
        self._operations[thread] = self._operations.get(thread, 0) + 1
        return self._adapter.acquire_connection(name)

    def still_current(self) -> Callable[[], bool]:
        """Whether no other operation has started on this thread's connection since now."""
        thread = self._connections.get_thread_identifier()
        started = self._operations.get(thread, 0)
        return lambda: self._operations.get(thread, 0) == started

    def close(self) -> None:
        """Close every thread's connection, rolling back uncommitted work.

        dbt-duckdb keeps the database open in a process-wide environment after its connections
        close; it is closed too, so the file is free for other processes (its lock released).
        """
        self._adapter.cleanup_connections()
        manager = type(self._connections)
        environment = getattr(manager, "_ENV", None)
        if environment is not None and hasattr(environment, "close"):
            environment.close()
        if hasattr(manager, "close_all_connections"):
            manager.close_all_connections()

    @property
    def direct(self) -> bool:
        return self._direct and not self._logged()

    def with_comment(self, sql: str) -> str:
        """The SQL with the project's query comment, as dbt sends its own queries."""
        header = self._connections.query_header
        return sql if header is None else header.add(sql)

    def run(self, connection: Connection, sql: str, bindings: Sequence[Any] | None = None) -> Any:
        """Run one statement (beginning no transaction); the cursor holds its result."""
        sql = self.with_comment(sql)
        if not self.direct:
            _, cursor = self._connections.add_query(sql, auto_begin=False, bindings=bindings)
            return cursor
        cursor = connection.handle.cursor()
        with self._connections.exception_handler(sql):
            cursor.execute(sql, bindings)
        return cursor

    def prepare(self, connection: Connection, settings: dict[str, Any] | None) -> None:
        """Once connected. DuckDB keeps the memory a large query freed for its own next
        queries, where the rest of the process cannot use it: its allocator's background
        threads hand it back to the system (unless the profile's ``settings`` decide)."""
        if (
            self._direct
            and not self.psycopg2
            and "allocator_background_threads" not in (settings or {})
        ):
            with suppress(Exception):  # a DuckDB without the setting (before 1.1)
                connection.handle.cursor().execute("SET allocator_background_threads = true")

    def exclusive(self, connection: Connection, database: str, credentials: Any) -> bool:
        """Whether no other process can write ``database`` while this one is connected: a
        DuckDB database this process opened itself (DuckDB locks its file). False for what it
        cannot tell: a server (dbt-duckdb's ``remote``), MotherDuck, DuckLake, other adapters."""
        if not self._direct or self.psycopg2 or getattr(credentials, "remote", None):
            return False
        cursor = self.run(
            connection,
            "select type, readonly from duckdb_databases() where lower(database_name) = ?",
            [database.lower()],
        )
        with self._connections.exception_handler("duckdb_databases"):
            found = cursor.fetchall()
        return bool(found) and found[0][0] == "duckdb" and not found[0][1]

    def begin(self, connection: Connection) -> None:
        """Open this thread's transaction unless one is open (or the profile disables them)."""
        if connection.transaction_open or not self.transactions:
            return
        if not self.direct:
            self._connections.begin()
            return
        if not self.psycopg2 or connection.handle.autocommit:
            self._plain(connection, "BEGIN")  # psycopg2 otherwise begins before the next one
        connection.transaction_open = True

    def commit(self, connection: Connection) -> None:
        """Commit this thread's transaction (psycopg2: whatever it began itself, too)."""
        if self.psycopg2:
            handle = connection.handle
            if handle.autocommit:
                if connection.transaction_open:
                    self._plain(connection, "COMMIT")
            else:
                with self._connections.exception_handler("COMMIT"):
                    handle.commit()
            connection.transaction_open = False
        elif connection.transaction_open:
            if not self.direct:
                self._connections.commit()
                return
            self._plain(connection, "COMMIT")
            connection.transaction_open = False

    def rollback(self, connection: Connection) -> None:
        if self.psycopg2:
            handle = connection.handle
            with self._connections.exception_handler("ROLLBACK"):
                if handle.autocommit and connection.transaction_open:
                    handle.cursor().execute("ROLLBACK")
                elif not handle.autocommit:
                    handle.rollback()
            connection.transaction_open = False
        else:
            self._connections.rollback_if_open()

    def stream(
        self, connection: Connection, sql: str, bindings: Sequence[Any] | None
    ) -> tuple[Any, Callable[[], None] | None]:
        """Start a query whose rows are fetched as they are consumed: its cursor, and what to
        call once it is done with (None: nothing)."""
        if not self.psycopg2:
            # On DuckDB this is the connection's only cursor: closing it would close the
            # connection.
            return self.run(connection, sql, bindings), None
        began = not connection.transaction_open
        handle = connection.handle
        with self._connections.exception_handler(sql):  # the rows stay on the server until fetched
            # Every row of a stream is read: plan for the whole result. (For a cursor the
            # planner favours the first 10 % by default, and on tables without statistics it
            # then picks a nested loop: quadratic in the model's rows.)
            handle.cursor().execute("SET cursor_tuple_fraction = 1")
            cursor = handle.cursor(name=next(_cursor_names), withhold=handle.autocommit)
            cursor.execute(self.with_comment(sql), bindings)

        def finish() -> None:
            with self._connections.exception_handler(sql):
                cursor.close()
            if began:
                self.commit(connection)

        return cursor, finish

    def chunks(
        self,
        cursor: Any,
        chunk_size: int,
        current: Callable[[], bool],
        errors: Callable[[str], AbstractContextManager],
        finish: Callable[[], None] | None,
    ) -> Iterator[Chunk]:
        """The rows of a started query, fetched ``chunk_size`` at a time. ``current()`` says
        whether nothing else has run on the query's connection since it started (else it
        raises ``RuntimeError`` rather than lose rows); each fetch runs inside ``errors`` and
        the adapter's exception handler."""

        @contextmanager
        def guard(action: str) -> Iterator[None]:
            with errors(action), self._connections.exception_handler(action):
                yield

        columns: list[str] = []
        try:
            while True:
                if not current():
                    raise RuntimeError(
                        "stream resumed after another operation ran on this thread's "
                        "connection; consume a stream before running anything else"
                    )
                with guard("reading rows"):
                    rows = cursor.fetchmany(chunk_size)
                if not rows:
                    return
                if not columns:
                    columns = [description[0] for description in cursor.description]
                yield Chunk(columns, rows)
        finally:
            # Touch the connection only if nothing else has used it since the stream started.
            if finish is not None and current():
                with guard("ending a query"):
                    finish()

    def end_aborted_transaction(self) -> None:
        """After a failed statement, psycopg2 holds an aborted transaction, even one the adapter
        did not know it had begun; roll it back so the connection stays usable."""
        if not self.psycopg2:
            return
        import psycopg2
        from psycopg2.extensions import TRANSACTION_STATUS_INERROR

        connection = self._connections.get_if_exists()
        if connection is None or connection.state != "open":
            return
        handle = connection.handle
        if handle.get_transaction_status() == TRANSACTION_STATUS_INERROR:
            with suppress(psycopg2.Error):
                if handle.autocommit:
                    handle.cursor().execute("ROLLBACK")
                else:
                    handle.rollback()
            connection.transaction_open = False

    def _plain(self, connection: Connection, statement: str) -> None:
        with self._connections.exception_handler(statement):
            connection.handle.cursor().execute(statement)


def one_line(exc: BaseException) -> str:
    message = getattr(exc, "msg", None)
    if not isinstance(message, str):
        message = str(exc)
    return " ".join(message.split())


def is_driver_error(exc: BaseException) -> bool:
    """A DB-API driver error (PEP 249: every driver's errors derive from its ``Error``, and
    database-side ones from ``DatabaseError``)."""
    return any(cls.__name__ == "DatabaseError" for cls in type(exc).__mro__)
