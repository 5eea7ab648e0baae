"""A model's rows of work: counted in the warehouse, spooled to a temporary file, read back in
key order.

A census counts the model's rows first, in the warehouse (those the last sync left as they
are); only when some rows need work does a second pass stream them, with their state. On
DuckDB, whose joins hold the model's id map rows in the process's memory, a large model is
read in parts (:mod:`dbt_rdcrm.sync.work_sql`).

The work query returns its rows unordered: an ``order by`` makes the warehouse hold every row
of the result at once (on DuckDB, most of a large plan's memory). The spool writes them as
sorted runs of ``RUN_ROWS`` rows and merges the runs when read, so memory holds one run while
spooling and one batch per run while reading. The order is Python's: code points, which is
the byte order of UTF-8 text (DuckDB's own), with rows without a key last; rows with equal
keys keep the order the warehouse sent them in.

Spooling first also leaves the connection free for state writes while the rows are processed
(a second query on a connection that is still streaming can silently end the stream), and lets
the rows be read more than once (the mass-change guard reads them before they are sent).
"""

from __future__ import annotations

import heapq
import pickle
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO, TYPE_CHECKING

from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.sync.records import IdMapRow, WorkRow
from dbt_rdcrm.sync.work_sql import WORK_STATE_COLUMNS, Part

if TYPE_CHECKING:
    from dbt_rdcrm.sync.state_sql import StateSql

RUN_ROWS = 20_000  # rows sorted in memory at a time
BATCH_ROWS = 500  # rows per pickled batch: what each run holds in memory while merged
# Id map rows per part where a model is read in parts: the census holds a key and a hash per
# row, the work query a whole state row.
CENSUS_PART_ROWS = 1_000_000
WORK_PART_ROWS = 250_000


class WorkSpool:
    """Rows needing a decision, in key order: iterate (more than once), then close.

    ``count`` rows need work; ``unchanged`` more were read and left as the last sync left them.
    ``doubts`` are the CRM ids these rows hold or link to that cannot be used as they are:
    (model, key, why), ``why`` being ``edited`` or ``unsigned`` (:meth:`WorkSql.id_check`).
    """

    def __init__(
        self,
        spec: SyncSpec,
        unchanged: int = 0,
        names: list[str] | None = None,
        file: IO[bytes] | None = None,
        runs: list[tuple[int, int]] | None = None,
        count: int = 0,
        doubts: list[tuple[str, str, str]] | None = None,
    ):
        self.spec = spec
        self.unchanged = unchanged
        self.names = names or []
        self.file = file
        self.runs = runs or []  # (start, end) offsets of each sorted run in the file
        self.count = count
        self.doubts = doubts or []

    def __enter__(self) -> WorkSpool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()

    def __iter__(self) -> Iterator[WorkRow]:
        if not self.count:
            return
        spec = self.spec
        position = {name: i for i, name in enumerate(self.names)}
        value_index = [(column, position[f"c{i}"]) for i, column in enumerate(spec.columns)]
        link_index = [(s.field, position[f"r_link{i}"]) for i, s in enumerate(spec.links)]
        state_index = [(c, position[f"r_{c}"]) for c in WORK_STATE_COLUMNS]
        key_at, count_at, hash_at = position["r_key"], position["r_key_count"], position["r_hash"]
        runs = [self._run(start, end) for start, end in self.runs]
        rows = runs[0] if len(runs) == 1 else heapq.merge(*runs, key=by_key(key_at))
        for number, row in enumerate(rows, start=1):
            key = row[key_at]
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
                key_count=int(row[count_at]),
                row_hash=row[hash_at],
                link_ids={f: row[i] for f, i in link_index},
                state=state,
            )

    def _run(self, start: int, end: int) -> Iterator[tuple]:
        """One sorted run, a batch at a time (runs take turns at the file's position)."""
        file, offset = self.file, start
        while offset < end:
            file.seek(offset)
            batch = pickle.load(file)
            offset = file.tell()
            yield from batch


def by_key(key_at: int) -> Callable[[tuple], tuple[bool, str]]:
    """Sort key of a row: its key (code point order), rows without one last."""

    def key(row: tuple) -> tuple[bool, str]:
        value = row[key_at]
        return (value is None, value or "")

    return key


def spool(spec: SyncSpec, chunks: Iterable, unchanged: int) -> WorkSpool:
    """Write the rows of a stream of chunks to a temporary file as sorted runs."""
    file = tempfile.TemporaryFile(prefix="rdcrm-work-")  # noqa: SIM115 - WorkSpool closes it
    names: list[str] = []
    runs: list[tuple[int, int]] = []
    run: list[tuple] = []
    count = 0
    doubts: dict[tuple[str, str, str], None] = {}  # in the order met, each once
    checked: list[tuple[int, int, str]] = []  # (check, key, model) positions in a row

    def write_run() -> None:
        run.sort(key=by_key(names.index("r_key")))
        start = file.tell()
        for first in range(0, len(run), BATCH_ROWS):
            pickle.dump(run[first : first + BATCH_ROWS], file, protocol=pickle.HIGHEST_PROTOCOL)
        runs.append((start, file.tell()))
        run.clear()

    try:
        for chunk in chunks:
            if not names:
                names = [c.lower() for c in chunk.columns]
                checked = _checked_ids(spec, names)
            count += len(chunk.rows)
            for check_at, key_at, model in checked:
                for row in chunk.rows:
                    if row[check_at] is not None:
                        doubts[(model, row[key_at], row[check_at])] = None
            run.extend(chunk.rows)
            if len(run) >= RUN_ROWS:
                write_run()
        if run:
            write_run()
    except BaseException:
        file.close()
        raise
    return WorkSpool(spec, unchanged, names, file, runs, count, list(doubts))


def _checked_ids(spec: SyncSpec, names: list[str]) -> list[tuple[int, int, str]]:
    """Where a row of work says whether its own CRM id and its parents' can be used."""
    wanted = [("r_id_check", "r_key", spec.model)] + [
        (f"r_link_check{i}", f"r_link_key{i}", s.link.model) for i, s in enumerate(spec.links)
    ]
    return [
        (names.index(check), names.index(key), model)
        for check, key, model in wanted
        if check in names
    ]


def read_work(
    wh,
    sql: StateSql,
    scope: str,
    spec: SyncSpec,
    actual: dict[str, str],
    full_refresh: bool,
    limit: int | None,
    repeats: bool | None = None,
) -> WorkSpool:
    """The census, then (if some rows need work) the rows of work of ``spec``'s model, spooled;
    with ``limit``, the first rows of work by key alone. ``repeats``: whether a key of the
    whole model repeats, when its keys were scanned already (:func:`key_repeats`)."""
    size = _state_size(wh, sql, scope, spec.model)
    census = _parts(size, CENSUS_PART_ROWS)
    if repeats is not None and census == [None]:
        duplicates = repeats
    else:
        duplicates = any(key_repeats(wh, sql, spec, actual, p) for p in census)
    if limit is not None:
        statement = sql.work(
            spec, actual, scope, full_refresh=full_refresh, duplicates=duplicates, limit=limit
        )
        return spool(spec, wh.stream(*statement), 0)
    unchanged = 0
    if not full_refresh:  # else every row is work: the work query alone reads them
        counts = [
            _counts(wh, sql.census(spec, actual, scope, duplicates=duplicates, part=p))
            for p in census
        ]
        rows, unchanged = (sum(c[i] for c in counts) for i in range(2))
        if rows == unchanged:
            return WorkSpool(spec, unchanged)
    statements = (
        sql.work(spec, actual, scope, full_refresh=full_refresh, duplicates=duplicates, part=p)
        for p in _parts(size, WORK_PART_ROWS)
    )  # each part's stream starts once the one before is consumed
    chunks = (chunk for statement in statements for chunk in wh.stream(*statement))
    return spool(spec, chunks, unchanged)


def key_repeats(wh, sql: StateSql, spec: SyncSpec, actual: dict[str, str], part=None) -> bool:
    """Whether two rows of the model (of one part) share a key: a scan of its keys alone."""
    return _counts(wh, (sql.repeated_keys(spec, actual, part), []))[0] > 0


def _state_size(wh, sql: StateSql, scope: str, model: str) -> int:
    """Id map rows of a model, where a large model is read in parts (else 0)."""
    if sql.d.part_template is None or sql.empty_id_map:
        return 0
    return _counts(wh, (sql.state_size(), [scope, model]))[0]


def _parts(size: int, rows_per_part: int) -> list[Part | None]:
    count = -(-size // rows_per_part)
    return [(i, count) for i in range(count)] if count > 1 else [None]


def _counts(wh, statement: tuple[str, list]) -> list[int]:
    return [int(n or 0) for n in wh.query(*statement)[0]]
