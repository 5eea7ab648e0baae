"""What a run leaves in the state for the next one, beside the id map: table ``rdcrm_run_meta``,
one row per CRM scope and key, its value as JSON.

- ``limiter``: the last minute's requests (:meth:`~dbt_rdcrm.crm.limiter.RateLimiter.snapshot`),
  so a run that starts right after another, even from a fresh checkout (a CI job with an empty
  ``target/``), paces from the account's real usage instead of meeting a 429;
- ``pace``: the latency and per-request work the last sync measured, for ``plan``'s ETA when
  ``target/`` holds no newer results of its own.

Saved at every checkpoint (when requests went out since) and when the session ends, in the
state's own transactions; read when the next session starts. Anything unreadable is ignored:
the worst it costs is one 429 or an assumed latency. Created with the state's portable DDL.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dbt_rdcrm.report.results import RESULTS_FILE, Pace, measured_pace

META_TABLE = "rdcrm_run_meta"
COLUMNS = ["crm_scope", "meta_key", "meta_value", "updated_at"]
LIMITER, PACE = "limiter", "pace"
FROM_STATE = "measured by the last sync, from the state"
SAVE_EVERY = 5.0  # seconds between two saves of the limiter at checkpoints


class RunMeta:
    """The ``rdcrm_run_meta`` rows of one CRM scope."""

    def __init__(self, store):
        self.store = store
        self.wh = store.wh
        config = store.config
        self.relation = self.wh.relation(config.database, config.schema, META_TABLE)

    def exists(self) -> bool:
        config = self.store.config
        return self.wh.get_columns(config.database, config.schema, META_TABLE) is not None

    def ensure(self) -> None:
        """Create the table if it is missing, committed (a race with another run: once more)."""
        self.store.create_committed(self._create)

    def _create(self) -> None:
        self.wh.execute(self.store.sql.create_table(self.relation, COLUMNS))  # if not exists
        self.wh.commit()

    def read(self, key: str) -> dict | None:
        rows = self.wh.query(self.store.sql.meta_value(self.relation), [self.store.scope, key])
        try:
            value = json.loads(rows[0][0]) if rows else None
        except (TypeError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def write(self, key: str, value: dict) -> None:
        """Replace the row of ``key`` (in the caller's transaction: it commits)."""
        self.wh.execute(self.store.sql.meta_delete(self.relation), [self.store.scope, key])
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        self.wh.execute(
            self.store.sql.insert(self.relation, COLUMNS, 1),
            [self.store.scope, key, json.dumps(value, separators=(",", ":")), now],
        )


class LimiterMemory:
    """A session's rate limiter, restored from the state when it starts and saved back to it at
    checkpoints and when it ends (with the pace it measured, for a sync)."""

    def __init__(
        self, meta: RunMeta, limiter, run_id: str, *, pace: bool, clock: Callable = time.monotonic
    ):
        self.meta = meta
        self.limiter = limiter
        self.run_id = run_id
        self.pace = pace
        self._clock = clock
        self._saved = (limiter.stats().requests, clock())

    @classmethod
    def open(
        cls, store, limiter, run_id: str, *, pace: bool, clock: Callable = time.monotonic
    ) -> LimiterMemory:
        meta = RunMeta(store)
        meta.ensure()
        limiter.restore(meta.read(LIMITER))
        return cls(meta, limiter, run_id, pace=pace, clock=clock)

    def after(self, heartbeat: Callable[[], None]) -> Callable[[], None]:
        """The state's ``on_flush``: ``heartbeat``, then :meth:`checkpoint`."""

        def on_flush() -> None:
            heartbeat()
            self.checkpoint()

        return on_flush

    def checkpoint(self) -> None:
        """At a state checkpoint (before its commit): save the limiter if it sent since."""
        requests, when = self._saved
        now = self._clock()
        if self.limiter.stats().requests != requests and now - when >= SAVE_EVERY:
            self._save_limiter(now)

    def close(self) -> None:
        """The session ends: save the limiter (and a sync's pace) and commit; a failure to
        do so is not the run's (the next run merely knows less)."""
        from dbt_rdcrm.dbt.warehouse import WarehouseError

        try:
            self._save_limiter(self._clock())
            stats = self.limiter.stats()
            if self.pace and stats.latency_s is not None:
                self.meta.write(
                    PACE,
                    {
                        "run_id": self.run_id,
                        "saved_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                        "limiter": stats.to_dict(),
                    },
                )
            self.meta.wh.commit()
        except WarehouseError:
            self.meta.wh.rollback()

    def _save_limiter(self, now: float) -> None:
        self.meta.write(LIMITER, self.limiter.snapshot())
        self._saved = (self.limiter.stats().requests, now)


@dataclass
class PlanPace:
    """What a plan's ETA assumes: the latency the last sync measured, from ``target/`` or from
    the state, whichever sync came last; else the assumed one."""

    pace: Pace
    target_path: Path | None = None

    def consider(self, store) -> None:
        """Prefer the state's pace when it is from a later sync than ``target/``'s results."""
        meta = RunMeta(store)
        if not meta.exists():
            return
        saved = meta.read(PACE)
        found = measured_pace(saved, self.pace.concurrency, FROM_STATE)
        if found is None or not _later(saved, self._results()):
            return
        self.pace = found

    def _results(self) -> dict | None:
        if self.target_path is None:
            return None
        try:
            document = json.loads((self.target_path / RESULTS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return document if isinstance(document, dict) else None


def _later(saved: dict, results: dict | None) -> bool:
    """Whether the sync that saved ``saved`` is later than the one that wrote ``results``
    (the same sync: not later; ``target/``'s own results are kept)."""
    if results is None or measured_pace(results, 1, "") is None:
        return True
    if saved.get("run_id") == results.get("run_id"):
        return False
    ended, started = _moment(saved.get("saved_at")), _moment(results.get("generated_at"))
    return ended is None or started is None or started < ended


def _moment(value: object) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.timezone.utc)
