"""The client's side of the CRM's per-account rate limit: a blocking, thread-safe gate.

The rule (which request may leave when: the window, the pace, the probe, the 429) is
:class:`~dbt_rdcrm.crm.window.Window`; this module makes it blocking and shared by threads,
measures what passed (latency, the engine's work per request) and carries the last minute's
requests from one run to the next: ``snapshot()``/``restore()`` (wall-clock times, JSON-ready).
``simulate_eta`` (re-exported) runs the same rule on a virtual clock. Time is injected
everywhere.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from dbt_rdcrm.crm.window import MARGIN, WINDOW, Window, simulate_eta

__all__ = ["MARGIN", "WINDOW", "LimiterStats", "RateLimiter", "Slot", "simulate_eta"]

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
    remembered: int = 0  # earlier runs' requests still in the window when this run started

    def to_dict(self) -> dict:
        return {
            "requests": self.requests,
            "throttled": self.throttled,
            "waited_s": round(self.waited_s, 3),
            "latency_s": _rounded(self.latency_s),
            "overhead_s": _rounded(self.overhead_s),
            "remembered": self.remembered,
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
        self._window = Window(per_minute, margin)
        self._cond = threading.Condition()
        self._latencies: deque[float] = deque(maxlen=SAMPLES)
        self._overheads: deque[float] = deque(maxlen=SAMPLES)
        self._thread = threading.local()
        self._waiting = 0
        self._wait_started = 0.0
        self._waited = 0.0
        self._remembered = 0

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
                delay = self._window.delay(now)
                if delay is not None and delay <= 0:
                    return Slot(self, self._window.take(now), now)
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
            self._window.answered(slot.id, now, status, retry_after)
            if status and status != 429:
                self._latencies.append(now - slot.sent_at)
            self._cond.notify_all()
        self._thread.last_answer = now

    def next_send_in(self) -> float | None:
        """Seconds until a request may leave (0: now); ``None`` while an answer must come back
        first (a probe, or a window full of requests in flight)."""
        with self._cond:
            return self._window.delay(self._clock())

    def pause(self, seconds: float) -> None:
        """Nobody acquires before ``seconds`` have passed (a ``Retry-After`` without a slot)."""
        with self._cond:
            window = self._window
            window.paused_until = max(window.paused_until, self._clock() + seconds)

    def stats(self) -> LimiterStats:
        with self._cond:
            waited = self._waited
            if self._waiting:
                waited += max(0.0, self._clock() - self._wait_started)
            return LimiterStats(
                self._window.requests,
                self._window.throttled,
                waited,
                statistics.fmean(self._latencies) if self._latencies else None,
                statistics.median(self._overheads) if self._overheads else None,
                self._remembered,
            )

    # --- memory across runs ----------------------------------------------------------------
    def snapshot(self) -> dict:
        """The last minute's requests as wall-clock times (JSON-ready), for the next run."""
        with self._cond:
            now = self._clock()
            offset = self._wall() - now
            paused = self._window.paused_until
            return {
                "version": SNAPSHOT_VERSION,
                "per_minute": self.per_minute,
                "stamps": [round(s + offset, 3) for s in self._window.recent(now)],
                "paused_until": round(paused + offset, 3) if paused > now else None,
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
            self._window.remember(
                [s - offset for s in stamps if _number(s)] if isinstance(stamps, list) else [],
                paused - offset if _number(paused) else None,
                now,
            )
            self._remembered = len(self._window.recent(now))


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
