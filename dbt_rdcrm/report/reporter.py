"""The reporters: they turn the engine's events into output as the run goes.

:class:`HumanReporter` shows progress (live bars on a terminal, a line now and then off one),
one line per model, then the summary (:mod:`dbt_rdcrm.report.summary`); :class:`JsonReporter`
prints the run results as one JSON document; :func:`fan_out` hands every event to several.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from dbt_rdcrm.redaction import redact
from dbt_rdcrm.report.events import (
    Event,
    ModelFinished,
    ModelStarted,
    Notice,
    RateLimitWait,
    RowDone,
    RunFinished,
    RunStarted,
)
from dbt_rdcrm.report.results import ModelResult, RunResult
from dbt_rdcrm.report.summary import print_summary
from dbt_rdcrm.report.summary_table import SUMMARY_OUTCOMES
from dbt_rdcrm.report.terminal import shown as visible
from dbt_rdcrm.report.wording import clock_text, duration_text, plural, status_word

REFRESH_SECONDS = 0.1  # a terminal's progress is redrawn at most this often
PROGRESS_EVERY = 30.0  # off a terminal, a progress line at least this often
HEARTBEAT_SECONDS = 5.0  # how often the CLI's reporter checks that a line is due


class HumanReporter:
    """Progress while running, then the summary table and the first failures.

    On a terminal: live bars, redrawn at most every ``REFRESH_SECONDS``. Off one (CI logs): a
    progress line at least every ``PROGRESS_EVERY`` seconds; with ``heartbeat`` a thread checks
    every ``heartbeat`` seconds, so a line comes even while the engine is busy in one query.
    ``clock`` is injectable so tests drive time.
    """

    def __init__(
        self,
        console: Console,
        *,
        wide: bool = False,
        clock: Callable[[], float] = time.monotonic,
        heartbeat: float | None = None,
    ):
        self.console = console
        self.plain = not console.is_terminal or console.no_color
        self.live = not self.plain
        self.wide = wide
        self.clock = clock
        self.heartbeat = heartbeat
        self.progress: Progress | None = None
        self.tasks: dict[str, TaskID] = {}
        self.pending: dict[str, int] = {}
        self.position = 0
        self.total_models = 0
        self.dry_run = False
        self.rate_limit = 0
        self.current: ModelStarted | None = None
        self.current_done = 0
        self.current_since = 0.0
        self.last_refresh = float("-inf")
        self.last_line = 0.0
        self.waiting = 0.0
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._handle(event)

    def _handle(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.total_models = len(event.models)
            self.dry_run = event.dry_run
            self.rate_limit = event.rate_limit
            self.last_line = self.clock()
            verb = "Planning" if event.dry_run else "Syncing"
            self.console.print(f"{verb} {plural(len(event.models), 'model')} to RD Station CRM")
            if self.live:
                self.progress = Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]}"),
                    TimeElapsedColumn(),
                    TextColumn("eta {task.fields[eta]}"),
                    console=self.console,
                    transient=True,
                    get_time=self.clock,
                )
                self.progress.start()
            elif self.heartbeat:
                self._thread = threading.Thread(target=self._beat, daemon=True)
                self._thread.start()
        elif isinstance(event, ModelStarted):
            self.position += 1
            self.current, self.current_done = event, 0
            self.current_since = self.clock()
            line = (
                f"{self.position} of {self.total_models} START {event.model} ({event.mode}): "
                f"{plural(event.to_process, 'row')} to process, {event.unchanged} unchanged"
            )
            self._print(visible(line))
            if self.progress is not None:
                self.tasks[event.model] = self.progress.add_task(
                    event.model, total=event.to_process, rate="", eta=""
                )
                self._update_pace(self.tasks[event.model])
        elif isinstance(event, RowDone):
            self.waiting = 0.0
            if self.current is not None and event.model == self.current.model:
                self.current_done += 1
            if self.progress is not None:
                self.pending[event.model] = self.pending.get(event.model, 0) + 1
                now = self.clock()
                if now - self.last_refresh >= REFRESH_SECONDS:
                    self._refresh(now)
            else:
                self.tick()
        elif isinstance(event, RateLimitWait):
            self.waiting = event.seconds
            if self.progress is not None:
                self._refresh(self.clock())
            else:
                self.tick()
        elif isinstance(event, Notice):
            prefix = f"{event.model}: " if event.model else ""
            self._print("[yellow]warning[/yellow] " + visible(redact(prefix + event.message)))
        elif isinstance(event, ModelFinished):
            self._model_done(event.result)
        elif isinstance(event, RunFinished):
            self._run_done(event.result)

    # --- progress --------------------------------------------------------------------------
    def _refresh(self, now: float) -> None:
        self.last_refresh = now
        for model, rows in self.pending.items():
            if rows and model in self.tasks:
                self.progress.advance(self.tasks[model], rows)
        self.pending.clear()
        for task_id in self.tasks.values():
            self._update_pace(task_id)

    def _eta(self, remaining: int, speed: float | None) -> float | None:
        """The larger of what the pace so far and the rate limit say (about a request a row)."""
        by_pace = remaining / speed if speed else None
        by_limit = (
            remaining * 60 / self.rate_limit if self.rate_limit and not self.dry_run else None
        )
        if self.waiting and by_limit is not None:
            by_limit += self.waiting
        known = [eta for eta in (by_pace, by_limit) if eta is not None]
        return max(known) if known else None

    def _update_pace(self, task_id: TaskID) -> None:
        task = next(t for t in self.progress.tasks if t.id == task_id)
        remaining = max(0, int((task.total or 0) - task.completed))
        speed = task.speed
        eta = self._eta(remaining, speed)
        rate = f"{speed * 60:.0f} rows/min" if speed else ""
        if self.waiting >= 1:
            rate = f"rate limit: next request in {self.waiting:.0f}s"
        self.progress.update(
            task_id, rate=rate, eta=clock_text(eta) if eta is not None else "-:--:--"
        )

    def tick(self) -> None:
        """Off a terminal: print a progress line if none came for ``PROGRESS_EVERY`` seconds."""
        with self._lock:
            now = self.clock()
            if self.progress is not None or now - self.last_line < PROGRESS_EVERY:
                return
            self.last_line = now
            m = self.current
            if m is None:
                self.console.print("... working: reading the warehouse")
                return
            elapsed = now - self.current_since
            speed = self.current_done / elapsed if elapsed > 0 else None
            remaining = max(0, m.to_process - self.current_done)
            eta = self._eta(remaining, speed)
            pace = f", {speed * 60:.0f} rows/min" if speed else ""
            left = f", about {clock_text(eta)} left" if eta is not None else ""
            line = f"... {m.model}: {self.current_done} of {m.to_process} rows{pace}{left}"
            self.console.print(visible(line), soft_wrap=True)

    def close(self) -> None:
        """Stop the heartbeat (a run that ended without ``RunFinished`` still stops it)."""
        self._stop.set()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            self.tick()

    def _print(self, text: str) -> None:
        self.last_line = self.clock()
        console = self.progress.console if self.progress is not None else self.console
        console.print(text, soft_wrap=True)

    def _model_done(self, m: ModelResult) -> None:
        if self.progress is not None and m.model in self.tasks:
            self.progress.remove_task(self.tasks.pop(m.model))
            self.pending.pop(m.model, None)
        self.current = None
        counts = ", ".join(
            f"{m.counts.get(o, 0)} {o.value}" for o in SUMMARY_OUTCOMES if m.counts.get(o, 0)
        )
        word = {"ok": "OK", "warn": "WARN", "failed": "FAIL", "error": "ERROR"}[status_word(m)]
        cost = (
            f"{plural(m.planned_requests, 'request')} planned"
            if self.dry_run
            else f"{plural(m.requests, 'request')}, {duration_text(m.duration)}"
        )
        line = (
            f"{self.position} of {self.total_models} {word} {m.model}: {counts or 'no rows'}"
            f" ({cost})"
        )
        self._print(visible(line))

    def _run_done(self, result: RunResult) -> None:
        self._stop.set()
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        print_summary(self.console, result, self.plain, self.wide)


class JsonReporter:
    """Prints one JSON document (the run results) when the run finishes."""

    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.printed = False

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunFinished):
            self.printed = True
            self.stream.write(json.dumps(event.result.to_dict(), indent=2) + "\n")
            self.stream.flush()


def fan_out(*reporters):
    def emit(event: Event) -> None:
        for reporter in reporters:
            reporter(event)

    return emit
