"""Writes in flight: a small pool of threads sends the requests; everything else (state,
outcomes, follow-ups) happens on the engine's thread, which owns the warehouse connection.

The rate limiter is shared by the threads, so the pool only hides the CRM's latency: at
120 requests a minute and 1.5 s a request, one thread reaches 40 a minute, four reach the limit.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from dbt_rdcrm.sync.planner import Create, Update
from dbt_rdcrm.sync.records import WorkRow

DEFAULT_CONCURRENCY = 4


@dataclass(frozen=True)
class Job:
    row: WorkRow
    decision: Create | Update


@dataclass(frozen=True)
class Sent:
    """A finished job: the CRM's answer, or the error the request raised, and the requests
    it took (attempts included)."""

    job: Job
    answer: object = None
    error: BaseException | None = None
    requests: int = 0


class Sender:
    """Runs sends on ``workers`` threads; ``finished`` hands results back in completion order."""

    def __init__(self, workers: int, sent_here: Callable[[], int] = lambda: 0):
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rdcrm-send")
        self._running: dict[Future, Job] = {}
        self._sent_here = sent_here  # requests the calling thread sent (the client counts)
        self.requests = 0  # requests of the jobs handed back by ``finished``

    @property
    def busy(self) -> int:
        return len(self._running)

    @property
    def full(self) -> bool:
        return len(self._running) >= self.workers

    def submit(self, job: Job, send: Callable[[], object]) -> None:
        self._running[self._pool.submit(self._counted, send)] = job

    def _counted(self, send: Callable[[], object]) -> tuple[int, object, BaseException | None]:
        """On a pool thread: the send's requests, answer and error."""
        before = self._sent_here()
        try:
            answer, error = send(), None
        except BaseException as exc:  # handed back to the engine's thread with the job
            answer, error = None, exc
        return self._sent_here() - before, answer, error

    def finished(self, *, block: bool = False, everything: bool = False) -> list[Sent]:
        """Jobs done now; ``block`` waits for at least one, ``everything`` for all of them."""
        if not self._running:
            return []
        if everything:
            done = set(wait(list(self._running)).done)
        elif block:
            done = set(wait(list(self._running), return_when=FIRST_COMPLETED).done)
        else:
            done = {f for f in self._running if f.done()}
        results = []
        for future in [f for f in self._running if f in done]:
            job = self._running.pop(future)
            requests, answer, error = future.result()
            self.requests += requests
            results.append(Sent(job, answer, error, requests))
        return results

    def close(self) -> None:
        self._pool.shutdown(wait=True)
