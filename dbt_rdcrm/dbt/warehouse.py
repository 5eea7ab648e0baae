"""The warehouse, reached through dbt's own adapter for the project's profile and target.

This module, :mod:`dbt_rdcrm.dbt.statements` (how statements reach the driver) and
:mod:`dbt_rdcrm.dbt.project` are the only ones that import dbt; they import it lazily, so
importing them is cheap. Everything else sees :class:`Warehouse`.

Connections and transactions belong to threads, as in dbt: each thread that calls a method
gets its own connection (opened on first use) and its own transaction. On one thread's
connection, a stream must be consumed (or abandoned) before anything else runs there: on
DuckDB the connection has a single cursor, so another query would silently end the stream.
A stream resumed after that raises ``RuntimeError`` instead of losing rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from dbt_rdcrm.dbt.statements import Chunk, Statements, is_driver_error, one_line
from dbt_rdcrm.errors import RdcrmError

if TYPE_CHECKING:
    from dbt.adapters.base import BaseAdapter
    from dbt.adapters.base.relation import BaseRelation
    from dbt.adapters.contracts.connection import Connection
    from dbt.config.runtime import RuntimeConfig

_CONNECTION_NAME = "dbt_rdcrm"


class WarehouseError(RdcrmError):
    """A problem the user must fix (bad profile, unreachable database, failing SQL).

    ``str()`` is one line naming the target (or the path) concerned.
    """


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    data_type: str  # as the warehouse reports it, e.g. "VARCHAR", "integer", "DATE"


class Warehouse:
    """One dbt target of one dbt project. Create with :meth:`connect`; close when done."""

    adapter_type: str
    target_name: str
    profile_name: str
    database: str | None
    schema: str
    project_vars: dict[str, Any]
    target_path: Path
    binding_char: str
    string_type: str
    timestamp_type: str
    integer_type: str
    invocation_id: str | None

    def __init__(self, config: RuntimeConfig, adapter: BaseAdapter, project_dir: Path) -> None:
        """Use :meth:`connect`."""
        from dbt_common.invocation import get_invocation_id

        from dbt_rdcrm.dbt.project import dbt_sql_logged, project_vars

        self._config = config
        self._adapter = adapter
        self._statements = Statements(adapter, config.credentials.type, dbt_sql_logged)
        self.adapter_type = config.credentials.type
        self.target_name = config.target_name
        self.profile_name = config.profile_name
        self.database = config.credentials.database
        self.schema = config.credentials.schema
        self.target_path = project_dir / config.target_path
        column = adapter.Column
        self.string_type = column.translate_type("string")
        self.timestamp_type = column.translate_type("timestamp")
        self.integer_type = column.translate_type("integer")
        self.invocation_id = get_invocation_id()
        with self._errors("reading the project's vars"):
            self.project_vars = project_vars(config)
        try:
            with self._errors("connecting"):
                connection = self._use()
                connection.handle  # noqa: B018 - the handle opens the connection
        except WarehouseError as exc:
            if "could not set lock" not in str(exc).lower():
                raise
            raise WarehouseError(
                f"{self._where}: the DuckDB file is in use by another process (another "
                f"dbt-rdcrm sync or a dbt run); wait for it to finish: {exc}"
            ) from exc
        self.binding_char = self._macro("get_binding_char")  # needs an open connection on DuckDB
        self._statements.prepare(connection, getattr(config.credentials, "settings", None))

    @classmethod
    def connect(
        cls,
        project_dir: Path,
        profiles_dir: Path | None = None,
        target: str | None = None,
        threads_hint: int | None = None,
        *,
        dbt_vars: str | None = None,
        profile: str | None = None,
    ) -> Warehouse:
        """Load the project's profile and target like dbt, register the adapter and open a
        connection (so bad credentials and unreachable databases fail here).

        Closes the connections of any ``Warehouse`` connected before in this process.
        """
        from click import ClickException
        from dbt.cli.exceptions import DbtUsageException
        from dbt_common.exceptions import DbtBaseException

        from dbt_rdcrm.dbt import project as dbt_project

        project_dir = Path(project_dir).expanduser().resolve()
        if not (project_dir / "dbt_project.yml").is_file():
            raise WarehouseError(f"no dbt_project.yml in {project_dir}")
        profiles_dir = dbt_project.find_profiles_dir(project_dir, profiles_dir)
        if not (profiles_dir / "profiles.yml").is_file():
            raise WarehouseError(
                f"no profiles.yml in {profiles_dir} (set --profiles-dir or DBT_PROFILES_DIR)"
            )
        try:
            config = dbt_project.load_runtime_config(
                project_dir, profiles_dir, target, threads_hint, dbt_vars, profile
            )
            adapter = dbt_project.register_adapter(config)
        except (DbtBaseException, DbtUsageException, ClickException, UnicodeDecodeError) as exc:
            what = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else one_line(exc)
            raise WarehouseError(
                f"cannot load the dbt profile from {profiles_dir / 'profiles.yml'}"
                f" for {project_dir}: {what}"
            ) from exc
        return cls(config, adapter, project_dir)

    def relation_names(self, manifest_path: Path, unique_ids: Sequence[str]) -> dict[str, str]:
        """unique_id -> the relation the model gets when parsed for this target (database,
        schema and alias from dbt's generate_*_name macros), to compare with the manifest's."""
        from dbt_rdcrm.dbt import project as dbt_project

        with self._errors("resolving relations for this target"):
            try:
                return dbt_project.relation_names(self._config, manifest_path, unique_ids)
            except (ValueError, LookupError, TypeError) as exc:  # a manifest dbt cannot load
                raise WarehouseError(
                    f"dbt cannot read {manifest_path} to compare its relations with target "
                    f"'{self.target_name}' ({one_line(exc)}): run `dbt parse`"
                ) from None

    def quote(self, identifier: str) -> str:
        return self._adapter.quote(identifier)

    def relation(self, database: str | None, schema: str, identifier: str) -> str:
        """The relation as SQL, quoted as the project's quoting config says."""
        return str(self._relation(database, schema, identifier))

    def get_columns(
        self, database: str | None, schema: str, identifier: str
    ) -> list[ColumnInfo] | None:
        """Columns of a table or view, in order; None if it does not exist.

        ``database`` None means the target's database.
        """
        with self._reading(f"reading the columns of {schema}.{identifier}"):
            found = self._adapter.get_relation(database or self.database, schema, identifier)
            columns = [] if found is None else self._adapter.get_columns_in_relation(found)
        return None if found is None else [ColumnInfo(c.name, c.dtype) for c in columns]

    def stream(
        self, sql: str, bindings: Sequence[Any] | None = None, chunk_size: int = 10_000
    ) -> Iterator[Chunk]:
        """Run a query now and return its rows in chunks of up to ``chunk_size``, fetched as
        they are consumed, so memory does not grow with the result.

        Nothing else may run on this thread's connection until the stream is exhausted or
        abandoned; a stream resumed after that raises ``RuntimeError``.
        """
        connection = self._use()
        current = self._statements.still_current()
        with self._errors("starting a query"):
            cursor, finish = self._statements.stream(connection, sql, bindings)
        return self._statements.chunks(cursor, chunk_size, current, self._errors, finish)

    def query(self, sql: str, bindings: Sequence[Any] | None = None) -> list[tuple]:
        """All rows of a small result."""
        with self._reading("running a query") as connection:
            cursor = self._statements.run(connection, sql, bindings)
            with self._adapter.connections.exception_handler(sql):
                rows = cursor.fetchall()
        return rows

    def execute(self, sql: str, bindings: Sequence[Any] | None = None) -> None:
        """Run a statement inside this thread's transaction (begun if needed), uncommitted.

        With bindings on Postgres, a literal ``%`` in the SQL must be written ``%%``.
        """
        connection = self._use()
        with self._errors("running a statement"):
            self._statements.begin(connection)
            self._statements.run(connection, sql, bindings)

    def commit(self) -> None:
        """Commit this thread's transaction, if one is open."""
        connection = self._use()
        with self._errors("committing"):
            self._statements.commit(connection)

    def rollback(self) -> None:
        """Discard this thread's uncommitted work."""
        connection = self._use()
        with self._errors("rolling back"):
            self._statements.rollback(connection)

    def create_schema(self, database: str | None, schema: str) -> None:
        """Create the schema if it does not exist (``database`` None: the target's).

        Like dbt's, this commits this thread's transaction.
        """
        connection = self._use()
        relation = self._relation(database or self.database, schema, None)
        with self._errors(f"creating schema {relation}"):
            self._adapter.execute_macro("create_schema", kwargs={"relation": relation})
            self._statements.commit(connection)

    def exclusive(self, database: str | None) -> bool:
        """Whether no other process can write ``database`` (None: the target's) while this
        warehouse is connected (see :meth:`Statements.exclusive`)."""
        with self._reading("reading the attached databases") as connection:
            return self._statements.exclusive(
                connection, database or self.database or "", self._config.credentials
            )

    def hash_expr(self, text_expr: str) -> str:
        """SQL for the lowercase hex md5 of a string expression (dbt's ``hash`` macro)."""
        return self._macro("hash", field=text_expr)

    def cast_text(self, expr: str) -> str:
        return f"cast({expr} as {self.string_type})"

    def close(self) -> None:
        """Close every thread's connection, rolling back uncommitted work (and free a DuckDB
        file for other processes)."""
        with self._errors("closing connections"):
            self._statements.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Warehouse {self._where}>"

    @property
    def _where(self) -> str:
        return f"target '{self.target_name}' of profile '{self.profile_name}' ({self.adapter_type})"

    def _use(self) -> Connection:
        """This thread's connection, for a new operation (which ends any open stream on it)."""
        return self._statements.use(_CONNECTION_NAME)

    def _relation(self, database: str | None, schema: str, identifier: str | None) -> BaseRelation:
        return self._adapter.Relation.create(
            database=database,
            schema=schema,
            identifier=identifier,
            quote_policy=self._config.quoting,
        )

    def _macro(self, name: str, **kwargs: Any) -> str:
        with self._errors(f"rendering the {name} macro"):
            return str(self._adapter.execute_macro(name, kwargs=kwargs)).strip()

    @contextmanager
    def _reading(self, action: str) -> Iterator[Connection]:
        """This thread's connection for reads: a transaction they begin is ended after them,
        so no connection sits idle in a transaction holding a snapshot."""
        connection = self._use()
        began = not connection.transaction_open
        with self._errors(action):
            yield connection
            if began:
                self._statements.commit(connection)

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn dbt's exceptions (which wrap the database driver's), and the driver's own that
        some adapters let through (DuckDB's lock error), into WarehouseError."""
        from dbt_common.exceptions import DbtBaseException

        try:
            yield
        except Exception as exc:
            if not isinstance(exc, DbtBaseException) and not is_driver_error(exc):
                raise
            self._statements.end_aborted_transaction()
            raise WarehouseError(f"{self._where}: {action} failed: {one_line(exc)}") from exc
