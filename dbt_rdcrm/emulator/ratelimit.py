"""The account-wide rate limit: a sliding 60-second window over CRM API requests."""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 60.0


class RateLimiter:
    """``limit`` requests per window for the whole account; ``limit=0`` disables it."""

    def __init__(self, limit: int, clock: Callable[[], float], window: float = WINDOW_SECONDS):
        self.limit = limit
        self._clock = clock
        self._window = window
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> int | None:
        """Take a slot; if none is free, the whole seconds until one frees (at least 1)."""
        if self.limit <= 0:
            return None
        with self._lock:
            now = self._clock()
            while self._times and self._times[0] <= now - self._window:
                self._times.popleft()
            if len(self._times) >= self.limit:
                return max(1, math.ceil(self._times[0] + self._window - now))
            self._times.append(now)
            return None

    def reset(self) -> None:
        with self._lock:
            self._times.clear()
