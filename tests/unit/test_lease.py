"""The lease protocol on an in-memory ticket table shared by simulated runs."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import replace

import pytest

from dbt_rdcrm.errors import RdcrmError
from dbt_rdcrm.sync.lease import Lease, LeaseHeld, LeaseLost
from dbt_rdcrm.sync.records import LeaseTicket, utcnow

T0 = dt.datetime(2026, 1, 1, 12, 0, 0)


class Tickets:
    """The lease table; ``hooks`` run before a read (to interleave another run's steps)."""

    scope = "https://crm.test/crm/v2"

    def __init__(self):
        self.rows: dict[str, LeaseTicket] = {}
        self.hooks: list = []

    def add_ticket(self, ticket):
        self.rows[ticket.run_id] = ticket

    def live_tickets(self, now):
        if self.hooks:
            self.hooks.pop(0)()
        live = [t for t in self.rows.values() if t.expires_at > now]
        return sorted(live, key=lambda t: (t.ticket_at, t.run_id))

    def update_ticket(self, run_id, commit=True, **values):
        if run_id in self.rows:
            self.rows[run_id] = replace(self.rows[run_id], **values)

    def drop_ticket(self, run_id):
        self.rows.pop(run_id, None)

    def drop_expired_tickets(self, now):
        self.rows = {k: t for k, t in self.rows.items() if t.expires_at > now}


class Clock:
    def __init__(self, start=T0):
        self.now_value = start
        self.mono = 0.0

    def now(self):
        return self.now_value

    def monotonic(self):
        return self.mono

    def sleep(self, seconds):
        self.mono += seconds
        self.now_value += dt.timedelta(seconds=seconds)


def lease(table, run_id, clock=None):
    clock = clock or Clock()
    return Lease(
        table, run_id, f"sync {run_id}", now=clock.now, monotonic=clock.monotonic, sleep=clock.sleep
    )


def test_a_lone_run_holds_the_lease_and_releases_it():
    table = Tickets()
    first = lease(table, "a")
    first.acquire()
    assert first.held and table.rows["a"].confirmed_at is not None
    first.release()
    assert table.rows == {}


def test_a_second_run_exits_naming_the_holder():
    table = Tickets()
    lease(table, "a").acquire()
    with pytest.raises(LeaseHeld, match="run a \\(sync a\\)"):
        lease(table, "b").acquire()
    assert set(table.rows) == {"a"}


def test_an_expired_ticket_of_a_crashed_run_does_not_block():
    table = Tickets()
    lease(table, "a").acquire()  # never released: the run crashed
    later = Clock(T0 + dt.timedelta(seconds=301))
    successor = lease(table, "b", later)
    successor.acquire()
    assert successor.held and set(table.rows) == {"b"}


def test_the_waits_are_filled_with_the_work_handed_over_and_the_rest_is_left():
    table, clock = Tickets(), Clock()
    done: list[str] = []

    def task(name: str, seconds: float):
        def run() -> None:
            done.append(name)
            clock.mono += seconds  # a read that takes this long

        return run

    reads: list[list[str]] = []  # what was done when each ticket read came
    table.hooks = [lambda: reads.append(list(done)) for _ in range(3)]
    holder = lease(table, "a", clock)
    work = [task("scan a", 0.15), task("scan b", 0.3), task("scan c", 0.25), task("scan d", 0.1)]
    holder.acquire(meanwhile=work)
    assert holder.held
    # the first wait holds a and b (a alone is shorter than it), the second c; d is left
    assert reads[1:] == [["scan a", "scan b"], ["scan a", "scan b", "scan c"]]
    assert done == ["scan a", "scan b", "scan c"]
    assert clock.mono == 0.15 + 0.3 + 0.25  # no wait was left to sleep


def test_work_that_outlasts_half_the_ticket_life_is_followed_by_a_fresh_ticket():
    table, clock = Tickets(), Clock()
    tickets: list[dt.datetime] = []
    original = table.add_ticket
    table.add_ticket = lambda t: (tickets.append(t.ticket_at), original(t))

    def long_scan() -> None:
        clock.sleep(200)  # a scan of a very large model, longer than half the ttl of 300 s

    holder = lease(table, "a", clock)
    holder.acquire(meanwhile=[long_scan])
    assert holder.held
    assert tickets == [T0, T0 + dt.timedelta(seconds=200)]  # withdrawn, then taken afresh
    assert table.rows["a"].expires_at == T0 + dt.timedelta(seconds=200 + 300)


def test_a_run_no_other_process_can_reach_runs_no_work_in_its_waits():
    table, clock = Tickets(), Clock()
    table.exclusive = True
    done: list[str] = []
    lease(table, "a", clock).acquire(meanwhile=[lambda: done.append("scan")])
    assert done == [] and clock.mono == 0.0


def test_a_run_no_other_process_can_reach_waits_for_nothing():
    table, clock = Tickets(), Clock()
    table.exclusive = True  # a DuckDB file, locked by this process
    holder = lease(table, "a", clock)
    holder.acquire()
    assert holder.held and clock.mono == 0.0


def test_checkpoints_in_quick_succession_push_the_expiry_once():
    table, clock = Tickets(), Clock()
    holder = lease(table, "a", clock)
    holder.acquire()
    pushed = []
    table.update_ticket = lambda run_id, commit=True, **values: pushed.append(values)
    holder.heartbeat()  # just acquired: the expiry is a full ttl ahead
    clock.now_value += dt.timedelta(seconds=31)
    holder.heartbeat()
    holder.heartbeat()
    assert len(pushed) == 1


def test_a_heartbeat_keeps_a_long_run_alive():
    table, clock = Tickets(), Clock()
    holder = lease(table, "a", clock)
    holder.acquire()
    clock.now_value += dt.timedelta(seconds=250)
    holder.heartbeat()
    with pytest.raises(LeaseHeld):
        lease(table, "b", Clock(T0 + dt.timedelta(seconds=400))).acquire()


def test_two_runs_that_did_not_see_each_other_settle_on_the_earlier_ticket():
    """b's ticket lands after a read its first check, with an earlier time: both confirm,
    and the re-read after the settle time keeps only the earlier one."""
    table = Tickets()
    late = LeaseTicket("b", "sync b", T0 - dt.timedelta(seconds=1), T0 + dt.timedelta(hours=1))
    a = lease(table, "a")
    # b appears (already confirmed) between a's first check and a's confirmation re-read
    table.hooks = [lambda: None, lambda: table.add_ticket(replace(late, confirmed_at=T0))]
    with pytest.raises(LeaseHeld, match="run b"):
        a.acquire()
    assert "a" not in table.rows


def test_the_ticket_of_a_killed_process_on_this_machine_does_not_block():
    table = Tickets()
    lease(table, "a").acquire()  # killed with -9: never released, not expired
    successor = lease(table, "b")
    successor.is_dead = lambda holder: holder == "sync a"
    successor.acquire()
    assert successor.held and set(table.rows) == {"b"}


def test_only_dead_processes_of_this_host_count_as_dead():
    import os
    import socket

    from dbt_rdcrm.sync.lease import dead_on_this_host

    host = socket.gethostname()
    assert not dead_on_this_host(f"sync on {host} pid {os.getpid()}")
    assert not dead_on_this_host("sync on another-host pid 1")
    assert dead_on_this_host(f"sync on {host} pid 999999999")


def test_a_read_longer_than_the_lease_stops_the_run_at_its_next_checkpoint():
    table, clock = Tickets(), Clock()
    holder = lease(table, "a", clock)
    holder.acquire()
    clock.sleep(200)
    holder.heartbeat()  # a checkpoint in time: the expiry moves to 200 s + the ttl
    assert table.rows["a"].expires_at > T0 + dt.timedelta(seconds=450)
    clock.sleep(280)  # a census of a very large model: no checkpoint for 280 s of the 300
    with pytest.raises(LeaseLost, match="ran out at .* while it was reading"):
        holder.heartbeat()


def test_the_keeper_renews_the_ticket_while_the_run_reads_longer_than_the_ttl():
    table = Tickets()
    holder = Lease(table, "a", "sync a", ttl=0.5, settle=0.01)
    holder.acquire()
    holder.keep()
    try:
        time.sleep(0.6)  # one read longer than the ttl, no checkpoint
        holder.heartbeat()  # the keeper renewed the ticket: the run goes on
        assert table.rows["a"].expires_at > utcnow()
    finally:
        holder.release()
    assert table.rows == {} and holder._keeper is None


def test_no_keeper_where_no_other_process_can_reach_the_state():
    table = Tickets()
    table.exclusive = True
    holder = Lease(table, "a", "sync a", ttl=0.3, settle=0.01)
    holder.acquire()
    holder.keep()
    assert holder._keeper is None
    time.sleep(0.35)
    holder.heartbeat()  # nobody can take the state over: no LeaseLost
    holder.release()


def test_a_warehouse_too_slow_for_the_settle_time_is_told_to_raise_it():
    table, clock = Tickets(), Clock()
    original = table.add_ticket
    table.add_ticket = lambda t: (clock.sleep(0.3), original(t))  # each commit takes 0.3 s
    with pytest.raises(RdcrmError, match=r"longer than lease_settle \(0.2 s\) 3 times"):
        lease(table, "a", clock).acquire()
    assert table.rows == {}  # every ticket withdrawn
