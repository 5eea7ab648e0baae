"""The client's side of the CRM's per-account rate limit, and the ETA that follows from it.

The CRM counts a request when it *arrives* (a sliding 60 s window per account). The client sees
only when it sent a request and when the answer came back; the arrival lies in between. So a
request occupies the client's window from the moment it is sent (in flight: counted, never
expires) until ``WINDOW + margin`` seconds after its answer arrived. Whatever the jitter, the
client's window then holds every request the server's can, and no request is answered 429
because the two disagree.

Three more rules keep a run from spending a window the account already spent (another process,
a previous run, another integration):

- **pace**: at most one request every ``WINDOW / limit`` seconds, never a burst;
- **probe**: the first request of a run, and the first after a 429, goes alone: no other
  request leaves until its answer is back, so a full account costs one 429, not one per thread;
- **the server is right**: a 429 pauses everyone until its ``Retry-After`` has passed, and the
  window is then taken to be full (the requests we cannot see are spread over the past minute).

``snapshot()``/``restore()`` carry the last minute's requests (as wall-clock times) from one run
to the next. ``simulate_eta`` runs this same limiter on a virtual clock to tell how long a number
of requests takes at a given concurrency and latency. Time is injected everywhere.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

WINDOW = 60.0
MARGIN = 0.1  # seconds added to the window: clock granularity and drift between the two sides
LONG_WAIT = 1.0  # waits at least this long are reported through ``on_wait``
SAMPLES = 1000  # latency and overhead: measured over the last this many requests
WORK_GAP = 10.0  # longer gaps between an answer and the next request are not per-request work
SNAPSHOT_VERSION = 1


@dataclass(frozen=True)
class LimiterStats:
    """What the limiter saw: for the summary, the JSON results and the next run's ETA."""

    requests: int = 0  # requests let through (retries included)
    throttled: int = 0  # answers 429 from the CRM
    waited_s: float = 0.0  # wall seconds during which a request was ready but held back
    latency_s: float | None = None  # mean seconds from send to answer (429s excluded)
    # median seconds from an answer to the same thread's next ask: the engine's work per request
    # (a median: a busy moment of the machine is not the engine's pace)
    overhead_s: float | None = None

    def to_dict(self) -> dict:
        return {
            "requests": self.requests,
            "throttled": self.throttled,
            "waited_s": round(self.waited_s, 3),
            "latency_s": _rounded(self.latency_s),
            "overhead_s": _rounded(self.overhead_s),
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


class Slot:
    """One request let through by :meth:`RateLimiter.acquire`; call :meth:`done` on its answer.

    Usable as a context manager: leaving the block without ``done`` counts as answered then
    (an exception while sending: the request may have reached the server).
    """

    __slots__ = ("_limiter", "id", "sent_at", "finished")

    def __init__(self, limiter: RateLimiter, slot_id: int, sent_at: float):
        self._limiter = limiter
        self.id = slot_id
        self.sent_at = sent_at
        self.finished = False

    def done(self, status: int = 200, retry_after: float | None = None) -> None:
        """The answer arrived (``status`` 0: no answer). A 429 hands ``retry_after`` over."""
        if not self.finished:
            self.finished = True
            self._limiter._finished(self, status, retry_after)

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc) -> None:
        self.done(0)


class RateLimiter:
    """At most ``per_minute`` requests in any window of the server's, paced; ``0`` = unlimited.

    Thread-safe: ``acquire()`` may be called from several threads at once and the global rate
    holds. Each acquisition returns a :class:`Slot`; call ``slot.done(status)`` when the answer
    arrives (the window is stamped then) or use it as a context manager around the request.
    """

    WINDOW = WINDOW

    def __init__(
        self,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        on_wait: Callable[[float], None] | None = None,
        *,
        wall: Callable[[], float] = time.time,
        margin: float = MARGIN,
    ):
        self.per_minute = per_minute
        self.margin = margin
        self.on_wait = on_wait
        self._clock = clock
        self._sleep = sleep
        self._wall = wall
        self._interval = WINDOW / per_minute if per_minute > 0 else 0.0
        self._cond = threading.Condition()
        self._stamps: list[float] = []  # answered requests (and the ones a 429 revealed), sorted
        self._in_flight: dict[int, float] = {}  # slot id -> send time
        self._ids = itertools.count(1)
        self._next_at = float("-inf")  # the pace: no request before this
        self._paused_until = float("-inf")
        self._need_probe = per_minute > 0
        self._probe: int | None = None
        self._requests = 0
        self._throttled = 0
        self._latencies: deque[float] = deque(maxlen=SAMPLES)
        self._overheads: deque[float] = deque(maxlen=SAMPLES)
        self._thread = threading.local()
        self._waiting = 0
        self._wait_started = 0.0
        self._waited = 0.0

    # --- the rule --------------------------------------------------------------------------
    def _delay(self, now: float) -> float | None:
        """Seconds until a request may leave; ``None`` when an answer must come back first."""
        delay = max(0.0, self._paused_until - now)
        if self.per_minute <= 0:
            return delay
        if self._probe is not None:
            return None
        if self._need_probe and self._in_flight:
            return None
        delay = max(delay, self._next_at - now)
        cutoff = now - WINDOW - self.margin
        del self._stamps[: bisect.bisect_right(self._stamps, cutoff)]
        used = len(self._stamps) + len(self._in_flight)
        if used >= self.per_minute:
            expiring = used - self.per_minute + 1  # requests that must leave the window first
            if expiring > len(self._stamps):
                return None
            delay = max(delay, self._stamps[expiring - 1] + WINDOW + self.margin - now)
        return delay

    def _take(self, now: float) -> Slot:
        slot = Slot(self, next(self._ids), now)
        self._requests += 1
        if self.per_minute > 0:
            self._in_flight[slot.id] = now
            # a send a little late (an oversleep) keeps the schedule; a long pause restarts it
            late = now - self._next_at
            self._next_at = (self._next_at if late <= self._interval / 2 else now) + self._interval
            if self._need_probe:
                self._need_probe = False
                self._probe = slot.id
        return slot

    def _answered(self, slot: Slot, now: float, status: int, retry_after: float | None) -> None:
        self._in_flight.pop(slot.id, None)
        if self._probe == slot.id:
            self._probe = None
        if status == 429:
            self._throttled += 1
            self._server_is_full(now, retry_after if retry_after is not None else 1.0)
            return
        if status:
            self._latencies.append(now - slot.sent_at)
        if self.per_minute > 0:
            bisect.insort(self._stamps, now)

    def _server_is_full(self, now: float, retry_after: float) -> None:
        """A 429: the server's window holds ``per_minute`` requests and its oldest leaves in
        ``retry_after`` seconds. Fill ours up to match and probe before sending again."""
        self._paused_until = max(self._paused_until, now + retry_after)
        if self.per_minute <= 0:
            return
        self._need_probe = True
        oldest = now + retry_after - WINDOW
        known = sum(1 for s in self._stamps if s > oldest) + len(self._in_flight)
        unseen = self.per_minute - known
        if unseen > 0:
            step = max(0.0, now - oldest) / unseen
            for i in range(unseen):
                bisect.insort(self._stamps, oldest + i * step)

    # --- the blocking API ------------------------------------------------------------------
    def acquire(self) -> Slot:
        """Block until a request may be sent; the returned slot must be ``done()`` on answer."""
        last_answer = getattr(self._thread, "last_answer", None)
        if last_answer is not None:
            with self._cond:
                gap = self._clock() - last_answer
                if 0 <= gap < WORK_GAP:
                    self._overheads.append(gap)
        while True:
            with self._cond:
                now = self._clock()
                delay = self._delay(now)
                if delay is not None and delay <= 0:
                    return self._take(now)
                self._start_waiting(now)
                if delay is None:
                    self._cond.wait(timeout=LONG_WAIT)
                    self._stop_waiting()
                    continue
            if self.on_wait is not None and delay >= LONG_WAIT:
                self.on_wait(delay)
            try:
                self._sleep(delay)
            finally:
                with self._cond:
                    self._stop_waiting()

    def _start_waiting(self, now: float) -> None:
        if self._waiting == 0:
            self._wait_started = now
        self._waiting += 1

    def _stop_waiting(self) -> None:
        self._waiting -= 1
        if self._waiting == 0:
            self._waited += max(0.0, self._clock() - self._wait_started)

    def _finished(self, slot: Slot, status: int, retry_after: float | None) -> None:
        with self._cond:
            now = self._clock()
            self._answered(slot, now, status, retry_after)
            self._cond.notify_all()
        self._thread.last_answer = now

    def next_send_in(self) -> float | None:
        """Seconds until a request may leave (0: now); ``None`` while an answer must come back
        first (a probe, or a window full of requests in flight)."""
        with self._cond:
            return self._delay(self._clock())

    def pause(self, seconds: float) -> None:
        """Nobody acquires before ``seconds`` have passed (a ``Retry-After`` without a slot)."""
        with self._cond:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def stats(self) -> LimiterStats:
        with self._cond:
            waited = self._waited
            if self._waiting:
                waited += max(0.0, self._clock() - self._wait_started)
            return LimiterStats(
                self._requests,
                self._throttled,
                waited,
                statistics.fmean(self._latencies) if self._latencies else None,
                statistics.median(self._overheads) if self._overheads else None,
            )

    # --- memory across runs ----------------------------------------------------------------
    def snapshot(self) -> dict:
        """The last minute's requests as wall-clock times (JSON-ready), for the next run."""
        with self._cond:
            now = self._clock()
            offset = self._wall() - now
            cutoff = now - WINDOW - self.margin
            stamps = [s for s in self._stamps if s > cutoff] + [now] * len(self._in_flight)
            paused = self._paused_until if self._paused_until > now else None
            return {
                "version": SNAPSHOT_VERSION,
                "per_minute": self.per_minute,
                "stamps": [round(s + offset, 3) for s in sorted(stamps)],
                "paused_until": None if paused is None else round(paused + offset, 3),
            }

    def restore(self, snapshot: Mapping | None) -> None:
        """Take a previous run's :meth:`snapshot` into account; anything unreadable is ignored
        (the worst it costs is one 429)."""
        if not isinstance(snapshot, Mapping) or snapshot.get("version") != SNAPSHOT_VERSION:
            return
        stamps = snapshot.get("stamps")
        paused = snapshot.get("paused_until")
        with self._cond:
            now = self._clock()
            offset = self._wall() - now
            cutoff = now - WINDOW - self.margin
            if isinstance(stamps, list):
                for stamp in stamps:
                    if isinstance(stamp, (int, float)) and cutoff < stamp - offset <= now:
                        bisect.insort(self._stamps, stamp - offset)
                if self._stamps:
                    self._next_at = max(self._next_at, self._stamps[-1] + self._interval)
            if isinstance(paused, (int, float)):
                self._paused_until = max(self._paused_until, paused - offset)


def simulate_eta(
    requests: int,
    rate: int,
    concurrency: int = 1,
    latency: float = 0.0,
    overhead: float = 0.0,
    *,
    margin: float = MARGIN,
    exact_up_to: int = 2_000,
) -> float:
    """Seconds ``requests`` take through a fresh :class:`RateLimiter` at ``rate`` per minute
    with ``concurrency`` workers, each request answered ``latency`` seconds after it leaves and
    its worker busy ``overhead`` seconds more (recording it) before asking for the next one:
    from the first send to the last answer. Pure: a virtual clock, nothing sleeps.

    Past ``exact_up_to`` requests the steady rate of the simulated part is extrapolated.
    """
    concurrency = max(1, concurrency)
    latency, overhead = max(0.0, latency), max(0.0, overhead)
    if requests <= 0:
        return 0.0
    if rate <= 0:
        return -(-requests // concurrency) * (latency + overhead) - overhead
    simulated = min(requests, max(exact_up_to, 3 * rate))
    now = [0.0]
    limiter = RateLimiter(rate, clock=lambda: now[0], sleep=_no_sleep, margin=margin)
    free = [0.0] * concurrency  # times at which idle workers want to send
    answers: list[tuple[float, int, Slot]] = []
    sends: list[float] = []
    last_answer = 0.0
    while len(sends) < simulated or answers:
        next_free = free[0] if free and len(sends) < simulated else float("inf")
        next_answer = answers[0][0] if answers else float("inf")
        if next_answer <= next_free:
            now[0], _, slot = heapq.heappop(answers)
            limiter._answered(slot, now[0], 200, None)
            heapq.heappush(free, now[0] + overhead)
            last_answer = now[0]
            continue
        now[0] = heapq.heappop(free)
        delay = limiter._delay(now[0])
        if delay is None:
            heapq.heappush(free, next_answer)
        elif delay > 0:
            heapq.heappush(free, now[0] + delay)
        else:
            slot = limiter._take(now[0])
            sends.append(now[0])
            heapq.heappush(answers, (now[0] + latency, slot.id, slot))
    if simulated == requests:
        return last_answer
    tail = sends[len(sends) // 2 :]
    per_request = (tail[-1] - tail[0]) / max(1, len(tail) - 1)
    return last_answer + (requests - simulated) * per_request


def _no_sleep(seconds: float) -> None:
    raise AssertionError("the simulation never sleeps")
