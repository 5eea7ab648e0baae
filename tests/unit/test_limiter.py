"""The client's rate limiter on a fake clock: pacing, answer-side window, 429s, threads, memory
across runs, and the ETA simulated from the same rules."""

from __future__ import annotations

import threading

import pytest

from dbt_rdcrm.crm.limiter import RateLimiter, simulate_eta


class FakeTime:
    """A clock that only moves when someone sleeps; safe to share between threads."""

    def __init__(self, now: float = 0.0, wall_offset: float = 1_700_000_000.0):
        self.now = now
        self.wall_offset = wall_offset
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now + self.wall_offset

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.now += seconds


def limiter_on(t: FakeTime, per_minute: int, **kw) -> RateLimiter:
    return RateLimiter(per_minute, clock=t.clock, sleep=t.sleep, wall=t.wall, **kw)


def send(limiter: RateLimiter, t: FakeTime, latency: float = 0.0, status: int = 200, **kw):
    slot = limiter.acquire()
    t.now += latency
    slot.done(status, **kw)
    return slot


def test_a_fresh_limiter_paces_instead_of_bursting():
    t = FakeTime()
    limiter = limiter_on(t, 120)
    for _ in range(5):
        send(limiter, t)
    assert t.slept == [0.5, 0.5, 0.5, 0.5]


def test_a_request_leaves_the_window_a_minute_after_its_answer_not_its_send():
    t = FakeTime()
    limiter = limiter_on(t, 3, margin=0.1)  # one request every 20 s
    for _ in range(3):
        send(limiter, t, latency=5.0)  # sent at 0, 25, 50; answered at 5, 30, 55
    send(limiter, t)
    assert t.now == pytest.approx(65.1)  # the first answer (5 s) + 60 s + margin


def test_requests_in_flight_hold_their_place_in_the_window():
    t = FakeTime()
    limiter = limiter_on(t, 2)
    send(limiter, t)  # the probe
    t.now = 100.0
    first = limiter.acquire()
    t.now = 200.0
    second = limiter.acquire()  # the one before is still unanswered, 100 s later
    assert limiter.next_send_in() is None  # the window is full of requests in flight
    first.done()
    assert limiter.next_send_in() == pytest.approx(60.1)
    second.done()


def test_the_first_request_is_a_probe_nobody_sends_until_its_answer():
    t = FakeTime()
    limiter = limiter_on(t, 120)
    probe = limiter.acquire()
    t.now = 10.0
    assert limiter.next_send_in() is None
    probe.done()
    assert limiter.next_send_in() == 0


def test_a_429_pauses_everyone_for_retry_after_then_probes():
    t = FakeTime()
    limiter = limiter_on(t, 120)
    send(limiter, t)
    t.now = 30.0
    send(limiter, t, status=429, retry_after=7)
    assert limiter.next_send_in() == pytest.approx(7.1)  # Retry-After plus the margin
    probe = limiter.acquire()
    assert t.now == pytest.approx(37.1)
    assert limiter.next_send_in() is None
    probe.done()
    assert limiter.stats().throttled == 1


def test_after_a_429_the_window_is_taken_as_full_and_drains_at_the_limits_pace():
    t = FakeTime()
    limiter = limiter_on(t, 120)
    send(limiter, t, status=429, retry_after=1)  # another process spent this minute
    sends = [send(limiter, t).sent_at for _ in range(20)]
    gaps = [b - a for a, b in zip(sends, sends[1:], strict=False)]
    assert sends[0] == pytest.approx(1.1)  # Retry-After plus the margin
    assert min(gaps) >= 0.49  # no burst once the oldest requests leave


def test_a_429_without_a_slot_still_pauses():
    t = FakeTime()
    limiter = limiter_on(t, 0)
    limiter.pause(7)
    send(limiter, t)
    assert t.slept == [7]


def test_unlimited_never_waits():
    t = FakeTime()
    limiter = limiter_on(t, 0)
    for _ in range(1000):
        send(limiter, t)
    assert t.slept == [] and limiter.stats().requests == 1000


def test_long_waits_are_reported_before_sleeping_short_pacing_is_not():
    t = FakeTime()
    waits: list[float] = []
    limiter = limiter_on(t, 2, on_wait=waits.append)
    send(limiter, t)
    send(limiter, t)  # waits 30 s: reported
    limiter = limiter_on(t, 120, on_wait=waits.append)
    send(limiter, t)
    send(limiter, t)  # waits 0.5 s: pacing, not reported
    assert waits == [30.0]


def test_stats_count_requests_429s_time_held_back_and_latency():
    t = FakeTime()
    limiter = limiter_on(t, 60)
    send(limiter, t, latency=0.25)
    send(limiter, t, latency=0.75)
    send(limiter, t, status=429, retry_after=3)
    stats = limiter.stats()
    assert (stats.requests, stats.throttled) == (3, 1)
    assert stats.waited_s == pytest.approx(0.75 + 0.25)  # pacing: 1 s between sends
    assert stats.latency_s == pytest.approx(0.5)
    assert stats.to_dict() == {
        "requests": 3,
        "throttled": 1,
        "waited_s": 1.0,
        "latency_s": 0.5,
        "overhead_s": 0.0,
        "remembered": 0,
    }


def test_the_work_between_an_answer_and_the_next_request_is_measured_per_thread():
    t = FakeTime()
    limiter = limiter_on(t, 0)
    for work in (0.02, 0.04, 0.03, 30.0):  # the last gap is a pause between models, not work
        send(limiter, t, latency=0.5)
        t.now += work
    send(limiter, t)
    assert limiter.stats().overhead_s == pytest.approx(0.03)


def test_a_late_send_keeps_the_pace_schedule_a_long_pause_restarts_it():
    t = FakeTime()
    limiter = limiter_on(t, 120)
    send(limiter, t)
    t.now += 0.52  # woke 20 ms late
    send(limiter, t)
    assert limiter.next_send_in() == pytest.approx(0.48)
    t.now += 10.0
    send(limiter, t)
    assert limiter.next_send_in() == pytest.approx(0.5)


def test_threads_sharing_one_limiter_keep_the_global_rate():
    t = FakeTime()
    limiter = limiter_on(t, 30)  # one request every 2 s, 30 a minute
    sent: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(15):
            slot = limiter.acquire()
            with lock:
                sent.append(slot.sent_at)
            slot.done()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent.sort()
    assert len(sent) == 90 == limiter.stats().requests
    assert all(b - a >= 2.0 - 1e-9 for a, b in zip(sent, sent[1:], strict=False))
    assert all(sent[i + 30] - sent[i] >= 60 for i in range(len(sent) - 30))


def test_a_snapshot_carries_the_last_minute_to_the_next_run():
    first_run = FakeTime()
    limiter = limiter_on(first_run, 3)
    for _ in range(3):
        send(limiter, first_run)  # at 0, 20, 40
    first_run.now = 45.0
    snapshot = limiter.snapshot()
    assert snapshot == {
        "version": 1,
        "per_minute": 3,
        "stamps": [1_700_000_000.0, 1_700_000_020.0, 1_700_000_040.0],
        "paused_until": None,
    }
    # a new process: its monotonic clock starts elsewhere, the wall clock is the same
    second_run = FakeTime(now=5.0, wall_offset=1_700_000_040.0)
    fresh = limiter_on(second_run, 3)
    fresh.restore(snapshot)
    send(fresh, second_run)
    assert second_run.now == pytest.approx(20.1)  # wall 1_700_000_060.1: the first one left


@pytest.mark.parametrize(
    "snapshot",
    [None, {}, {"version": 99, "stamps": [1.0]}, {"version": 1, "stamps": "x"}, "junk"],
    ids=["none", "empty", "future-version", "bad-stamps", "not-a-dict"],
)
def test_an_unreadable_snapshot_is_ignored(snapshot):
    t = FakeTime()
    limiter = limiter_on(t, 120)
    limiter.restore(snapshot)
    send(limiter, t)
    assert t.slept == []


@pytest.mark.parametrize(
    ("requests", "rate", "concurrency", "latency", "overhead", "low", "high"),
    [
        pytest.param(0, 120, 1, 0.3, 0, 0, 0, id="nothing"),
        pytest.param(1, 120, 1, 0.8, 0, 0.8, 0.8, id="one-request-is-its-latency"),
        pytest.param(10, 0, 2, 1.0, 0, 5.0, 5.0, id="unlimited-is-latency-per-worker"),
        pytest.param(300, 120, 1, 0.0, 0, 149.5, 150.0, id="pace-bound-no-burst"),
        pytest.param(300, 120, 1, 0.8, 0, 240.0, 240.0, id="sequential-latency-bound"),
        pytest.param(300, 120, 1, 0.4, 0.2, 179.8, 179.8, id="sequential-with-work-per-row"),
        pytest.param(300, 120, 4, 0.8, 0, 150.0, 300 * 60 / 120 * 1.03, id="pool-at-800ms"),
        pytest.param(300, 120, 4, 1.5, 0, 150.0, 300 * 60 / 120 * 1.05, id="pool-at-1500ms"),
        pytest.param(1_000_000, 120, 4, 0.3, 0, 500_000, 500_000 * 1.01, id="a-million"),
    ],
)
def test_simulated_eta(requests, rate, concurrency, latency, overhead, low, high):
    eta = simulate_eta(requests, rate, concurrency, latency, overhead)
    assert low - 1e-6 <= eta <= high + 1e-6
