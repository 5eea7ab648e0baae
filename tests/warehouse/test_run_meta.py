"""The limiter's last minute and the measured pace, kept in the state (``rdcrm_run_meta``) on
DuckDB and PostgreSQL: what the next session restores, and what a plan's ETA takes from it."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dbt_rdcrm.crm.limiter import RateLimiter
from dbt_rdcrm.dbt.warehouse import Warehouse
from dbt_rdcrm.report.results import RESULTS_FILE, Pace
from dbt_rdcrm.sync import run_meta
from dbt_rdcrm.sync.run_meta import FROM_STATE, LIMITER, PACE, LimiterMemory, PlanPace, RunMeta
from dbt_rdcrm.sync.state import StateConfig, StateStore

SCOPE = "https://crm.test/crm/v2"


@pytest.fixture(params=["duckdb", "postgres"])
def connect(request, tmp_path, projects):
    """Connections to one warehouse, one after the other (dbt's relation cache does not see
    tables a connection made by SQL: a plan's session is a new one)."""
    if request.param == "duckdb":
        output = projects.duckdb(tmp_path / "warehouse.duckdb")
    else:
        output = projects.postgres(request.getfixturevalue("postgres_schema"))
    project = projects.write(tmp_path / "project", {"dev": output})
    schema = f"meta_{secrets.token_hex(3)}"

    @contextmanager
    def connected() -> Iterator[StateStore]:
        with Warehouse.connect(project, profiles_dir=project, target="dev") as warehouse:
            config = StateConfig(warehouse.database, f"{warehouse.schema}_{schema}")
            state = StateStore(warehouse, config, scope=SCOPE)
            state.ensure()
            yield state
            warehouse.rollback()

    return connected


@pytest.fixture
def store(connect) -> Iterator[StateStore]:
    with connect() as state:
        yield state


class FakeTime:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now + 1_700_000_000.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def limiter_on(t: FakeTime) -> RateLimiter:
    return RateLimiter(120, clock=t.clock, sleep=t.sleep, wall=t.wall)


def send(limiter: RateLimiter, t: FakeTime, count: int, latency: float = 0.2) -> None:
    for _ in range(count):
        slot = limiter.acquire()
        t.now += latency
        slot.done(200)


def test_the_table_is_created_once_and_holds_one_row_per_scope_and_key(store):
    meta = RunMeta(store)
    assert not meta.exists()
    meta.ensure()
    meta.ensure()
    meta.write("k", {"a": 1})
    meta.write("k", {"a": 2})
    other = RunMeta(StateStore(store.wh, store.config, scope="https://other/crm/v2"))
    other.write("k", {"a": 3})
    store.wh.commit()
    assert meta.read("k") == {"a": 2} and other.read("k") == {"a": 3}
    assert meta.read("missing") is None


def test_an_unreadable_value_is_ignored(store):
    meta = RunMeta(store)
    meta.ensure()
    store.wh.execute(
        store.sql.insert(meta.relation, run_meta.COLUMNS, 1),
        [SCOPE, LIMITER, "{not json", dt.datetime(2026, 1, 1)],
    )
    assert meta.read(LIMITER) is None
    limiter = limiter_on(FakeTime())
    LimiterMemory.open(store, limiter, "run", pace=True)  # restores nothing, fails nothing
    assert limiter.next_send_in() == 0


def test_the_next_session_restores_the_last_minute_and_waits_for_it(store):
    t = FakeTime()
    first = limiter_on(t)
    memory = LimiterMemory.open(store, first, "run-1", pace=True, clock=t.clock)
    send(first, t, 120)  # the account's whole minute
    memory.close()

    second = limiter_on(t)  # a fresh process: it knows nothing but what the state says
    assert second.next_send_in() == 0
    LimiterMemory.open(store, second, "run-2", pace=True)
    assert second.snapshot()["stamps"] == first.snapshot()["stamps"]
    assert second.next_send_in() > 0  # the window is full: its oldest request leaves first
    pace = RunMeta(store).read(PACE)
    assert pace["run_id"] == "run-1" and pace["limiter"]["latency_s"] == pytest.approx(0.2)


def test_checkpoints_save_the_limiter_when_it_sent_since_at_most_every_few_seconds(store):
    t = FakeTime()
    limiter = limiter_on(t)
    memory = LimiterMemory.open(store, limiter, "run", pace=True, clock=t.clock)
    flushed = []
    on_flush = memory.after(lambda: flushed.append(True))
    on_flush()
    assert RunMeta(store).read(LIMITER) is None  # nothing sent yet
    send(limiter, t, 20)
    on_flush()
    assert len(RunMeta(store).read(LIMITER)["stamps"]) == 20 and len(flushed) == 2
    send(limiter, t, 1, latency=0.0)
    on_flush()  # less than SAVE_EVERY seconds later: not saved again
    assert len(RunMeta(store).read(LIMITER)["stamps"]) == 20


def test_only_a_sync_leaves_its_pace(store):
    t = FakeTime()
    limiter = limiter_on(t)
    memory = LimiterMemory.open(store, limiter, "audit", pace=False, clock=t.clock)
    send(limiter, t, 3)
    memory.close()
    assert RunMeta(store).read(PACE) is None and RunMeta(store).read(LIMITER) is not None


def results_file(target: Path, run_id: str, started: dt.datetime, latency: float) -> None:
    target.mkdir(parents=True, exist_ok=True)
    document = {
        "run_id": run_id,
        "generated_at": started.isoformat(),
        "limiter": {"latency_s": latency, "overhead_s": 0.01},
    }
    (target / RESULTS_FILE).write_text(json.dumps(document))


def saved_pace(store, run_id: str, latency: float) -> dt.datetime:
    meta = RunMeta(store)
    meta.ensure()
    meta.write(
        PACE,
        {
            "run_id": run_id,
            "saved_at": dt.datetime.now(dt.timezone.utc).isoformat(),
            "limiter": {"latency_s": latency, "overhead_s": 0.02},
        },
    )
    store.wh.commit()
    return dt.datetime.now(dt.timezone.utc)


def planned(connect, target: Path) -> Pace:
    """A plan's pace, in a session of its own."""
    pace = PlanPace(Pace(4), target)
    with connect() as store:
        pace.consider(store)
    return pace.pace


def test_a_plan_with_a_fresh_target_takes_the_pace_from_the_state(connect, tmp_path):
    assert planned(connect, tmp_path / "target") == Pace(4)  # nothing saved: assumed
    with connect() as store:
        saved_pace(store, "ci-run", 0.8)
    assert planned(connect, tmp_path / "target") == Pace(4, 0.8, 0.02, FROM_STATE)


def test_target_results_of_the_same_or_a_later_sync_are_kept(connect, tmp_path):
    with connect() as store:
        ended = saved_pace(store, "run-1", 0.8)
    target = tmp_path / "target"
    results_file(target, "run-1", ended - dt.timedelta(minutes=5), 0.5)  # the same sync
    assert planned(connect, target) == Pace(4)  # kept: as plan_pace read it from target/
    results_file(target, "run-2", ended + dt.timedelta(seconds=1), 0.5)  # a later sync
    assert planned(connect, target) == Pace(4)
    results_file(target, "run-0", ended - dt.timedelta(hours=1), 0.5)  # an earlier one
    assert planned(connect, target).source == FROM_STATE
