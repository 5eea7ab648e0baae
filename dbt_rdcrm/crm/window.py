"""The rule of the client's rate limiter, on any clock: which request may leave when.

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

:class:`Window` is that rule and nothing else: no threads, no sleeping, times passed in. The
blocking, thread-safe :class:`~dbt_rdcrm.crm.limiter.RateLimiter` wraps one; :func:`simulate_eta`
drives one on a virtual clock to tell how long a number of requests takes.
"""

from __future__ import annotations

import bisect
import heapq
import itertools

WINDOW = 60.0
MARGIN = 0.1  # seconds added to the window: clock granularity and drift between the two sides


class Window:
    """Requests in the last window (answered, in flight) and the pace; ``0`` = unlimited."""

    def __init__(self, per_minute: int, margin: float = MARGIN):
        self.per_minute = per_minute
        self.margin = margin
        self.interval = WINDOW / per_minute if per_minute > 0 else 0.0
        self.stamps: list[float] = []  # answered requests (and the ones a 429 revealed), sorted
        self.in_flight: dict[int, float] = {}  # request id -> send time
        self.next_at = float("-inf")  # the pace: no request before this
        self.paused_until = float("-inf")
        self.need_probe = per_minute > 0
        self.probe: int | None = None
        self.requests = 0  # requests let through (retries included)
        self.throttled = 0  # answers 429
        self._ids = itertools.count(1)

    def delay(self, now: float) -> float | None:
        """Seconds until a request may leave; ``None`` when an answer must come back first."""
        delay = max(0.0, self.paused_until - now)
        if self.per_minute <= 0:
            return delay
        if self.probe is not None:
            return None
        if self.need_probe and self.in_flight:
            return None
        delay = max(delay, self.next_at - now)
        cutoff = now - WINDOW - self.margin
        del self.stamps[: bisect.bisect_right(self.stamps, cutoff)]
        used = len(self.stamps) + len(self.in_flight)
        if used >= self.per_minute:
            expiring = used - self.per_minute + 1  # requests that must leave the window first
            if expiring > len(self.stamps):
                return None
            delay = max(delay, self.stamps[expiring - 1] + WINDOW + self.margin - now)
        return delay

    def take(self, now: float) -> int:
        """Let a request leave now (``delay`` said 0); its id, for :meth:`answered`."""
        request_id = next(self._ids)
        self.requests += 1
        if self.per_minute > 0:
            self.in_flight[request_id] = now
            # a send a little late (an oversleep) keeps the schedule; a long pause restarts it
            late = now - self.next_at
            self.next_at = (self.next_at if late <= self.interval / 2 else now) + self.interval
            if self.need_probe:
                self.need_probe = False
                self.probe = request_id
        return request_id

    def answered(
        self, request_id: int, now: float, status: int, retry_after: float | None = None
    ) -> None:
        """The answer to a request came back (``status`` 0: none came)."""
        self.in_flight.pop(request_id, None)
        if self.probe == request_id:
            self.probe = None
        if status == 429:
            self.throttled += 1
            self.server_is_full(now, retry_after if retry_after is not None else 1.0)
            return
        if self.per_minute > 0:
            bisect.insort(self.stamps, now)

    def server_is_full(self, now: float, retry_after: float) -> None:
        """A 429: the server's window holds ``per_minute`` requests and its oldest leaves in
        ``retry_after`` seconds. Fill ours up to match and probe before sending again."""
        self.paused_until = max(self.paused_until, now + retry_after)
        if self.per_minute <= 0:
            return
        self.need_probe = True
        oldest = now + retry_after - WINDOW
        known = sum(1 for s in self.stamps if s > oldest) + len(self.in_flight)
        unseen = self.per_minute - known
        if unseen > 0:
            step = max(0.0, now - oldest) / unseen
            for i in range(unseen):
                bisect.insort(self.stamps, oldest + i * step)

    def recent(self, now: float) -> list[float]:
        """Times of the requests still in the window (in flight ones: now), sorted."""
        cutoff = now - WINDOW - self.margin
        return sorted([s for s in self.stamps if s > cutoff] + [now] * len(self.in_flight))

    def remember(self, stamps: list[float], paused_until: float | None, now: float) -> None:
        """Add requests another run made (times on this clock): ones past the window are
        ignored, ones after ``now`` (rounding, another machine's clock) are taken as now."""
        cutoff = now - WINDOW - self.margin
        for stamp in stamps:
            if cutoff < stamp:
                bisect.insort(self.stamps, min(stamp, now))
        if self.stamps:
            self.next_at = max(self.next_at, self.stamps[-1] + self.interval)
        if paused_until is not None:
            self.paused_until = max(self.paused_until, paused_until)


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
    """Seconds ``requests`` take through a fresh limiter at ``rate`` per minute with
    ``concurrency`` workers, each request answered ``latency`` seconds after it leaves and
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
    window = Window(rate, margin)
    free = [0.0] * concurrency  # times at which idle workers want to send
    answers: list[tuple[float, int]] = []
    sends: list[float] = []
    last_answer = 0.0
    while len(sends) < simulated or answers:
        next_free = free[0] if free and len(sends) < simulated else float("inf")
        next_answer = answers[0][0] if answers else float("inf")
        if next_answer <= next_free:
            now, request_id = heapq.heappop(answers)
            window.answered(request_id, now, 200)
            heapq.heappush(free, now + overhead)
            last_answer = now
            continue
        now = heapq.heappop(free)
        delay = window.delay(now)
        if delay is None:
            heapq.heappush(free, next_answer)
        elif delay > 0:
            heapq.heappush(free, now + delay)
        else:
            sends.append(now)
            heapq.heappush(answers, (now + latency, window.take(now)))
    if simulated == requests:
        return last_answer
    tail = sends[len(sends) // 2 :]
    per_request = (tail[-1] - tail[0]) / max(1, len(tail) - 1)
    return last_answer + (requests - simulated) * per_request
