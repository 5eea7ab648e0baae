"""One sliding-window limiter per run: the CRM's limit is per account, shared by every model."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """At most ``per_minute`` acquisitions in any 60 s window; ``0`` means unlimited.

    ``pause(seconds)`` honours a ``Retry-After``: nobody acquires before it has passed.
    Time is injected (``clock``/``sleep``) so tests drive it without waiting.
    """

    WINDOW = 60.0

    def __init__(
        self,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        on_wait: Callable[[float], None] | None = None,
    ):
        self.per_minute = per_minute
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._paused_until = 0.0
        self._lock = threading.Lock()
        self.waited = 0.0  # total seconds spent waiting, for reports
        self.on_wait = on_wait

    def _delay(self, now: float) -> float:
        delay = max(0.0, self._paused_until - now)
        if self.per_minute > 0:
            while self._sent and self._sent[0] <= now - self.WINDOW:
                self._sent.popleft()
            if len(self._sent) >= self.per_minute:
                delay = max(delay, self._sent[0] + self.WINDOW - now)
        return delay

    def acquire(self) -> None:
        """Block until a request may be sent, then count it."""
        while True:
            with self._lock:
                now = self._clock()
                delay = self._delay(now)
                if delay <= 0:
                    if self.per_minute > 0:
                        self._sent.append(now)
                    return
            self.waited += delay
            if self.on_wait is not None:
                self.on_wait(delay)
            self._sleep(delay)

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def eta_seconds(self, requests: int) -> float:
        """Least time ``requests`` more requests can take at this limit (0 when unlimited)."""
        return 0.0 if self.per_minute <= 0 else requests * self.WINDOW / self.per_minute
