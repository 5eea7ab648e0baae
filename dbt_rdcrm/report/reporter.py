"""Render engine events for people (rich progress + summary table) and machines (JSON)."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from typing import IO

from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

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
from dbt_rdcrm.report.results import ModelResult, Outcome, RunResult
from dbt_rdcrm.report.terminal import shown as visible

FAILURES_SHOWN = 10
SUMMARY_OUTCOMES = (
    Outcome.CREATED,
    Outcome.UPDATED,
    Outcome.RECREATED,
    Outcome.UNCHANGED,
    Outcome.WAITING,
    Outcome.REJECTED,
    Outcome.FAILED,
    Outcome.UNRESOLVED,
    Outcome.SKIPPED,
)
ALWAYS_SHOWN = (Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED)
REFRESH_SECONDS = 0.1  # a terminal's progress is redrawn at most this often
PROGRESS_EVERY = 30.0  # off a terminal, a progress line at least this often
HEARTBEAT_SECONDS = 5.0  # how often the CLI's reporter checks that a line is due


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def eta_text(seconds: float) -> str:
    """An ETA rounded up to whole seconds: ``6s``, ``1m30s``, ``14h00m00s``."""
    whole = math.ceil(round(seconds, 3))
    return _duration(whole) if seconds >= 60 else f"{whole}s"


def eta_line(result: RunResult) -> str:
    """What a plan's requests will take: ``12 requests: about 7s at 120 requests/minute, 1 at a
    time, 0.30s each (assumed)``."""
    requests = result.totals()["planned_requests"]
    if not requests:
        return "0 requests: nothing to send"
    pace = result.pace
    how = f"{pace.concurrency} at a time, {pace.per_request_s:.2f}s each ({pace.source})"
    eta = eta_text(result.eta(requests) or 0.0)
    if result.rate_limit <= 0:
        return f"{plural(requests, 'request')}: about {eta} with no rate limit, {how}"
    return (
        f"{plural(requests, 'request')}: about {eta} at {result.rate_limit} requests/minute, {how}"
    )


def limiter_line(result: RunResult) -> str | None:
    """A sync's use of the rate limit: requests, 429 answers and time held back."""
    stats = result.limiter
    if stats is None or result.dry_run:
        return None
    limit = f"{result.rate_limit}/minute" if result.rate_limit > 0 else "none"
    throttled = f"{stats.throttled or 'none'} answered 429"
    return (
        f"Rate limit ({limit}): {plural(stats.requests, 'request')}, {throttled}, "
        f"{_duration(stats.waited_s)} waited"
    )


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def status_word(m: ModelResult) -> str:
    """``ok``, ``warn`` (done, but some rows failed or were rejected), ``failed`` or ``error``."""
    if m.status == "success":
        return "warn" if m.problems else "ok"
    return m.status


def _cell(n: int) -> str:
    return str(n) if n else ""


NOT_SENT = (
    Outcome.WAITING,
    Outcome.REJECTED,
    Outcome.FAILED,
    Outcome.UNRESOLVED,
    Outcome.SKIPPED,
)


def summary_table(result: RunResult, plain: bool, wide: bool = False) -> Table:
    """Per model: what happened, readable at 80 columns: created, updated, unchanged, rows not
    sent (waiting, rejected, failed, skipped: the lines below say why), time; zeros blank.
    ``wide`` splits every outcome and adds mode, rows read and requests (the JSON has it all)."""
    title = "dbt-rdcrm plan" if result.dry_run else "dbt-rdcrm sync"
    table = Table(
        title=title,
        box=box.ASCII if plain else box.SIMPLE_HEAVY,
        title_justify="left",
        show_footer=len(result.models) > 1,
        collapse_padding=not plain,
        show_edge=not plain,
    )
    totals = result.totals()
    numbers = dict(justify="right", no_wrap=True)
    longest = max((len(m.model) for m in result.models), default=5)
    table.add_column("model", footer="total", overflow="fold", min_width=min(longest, 12))
    if wide:
        table.add_column("mode", no_wrap=True)
    table.add_column("status", no_wrap=True)
    if wide:
        table.add_column("read", footer=_cell(totals["rows_read"]), **numbers)
    shown = SUMMARY_OUTCOMES if wide else ALWAYS_SHOWN
    for outcome in shown:
        table.add_column(outcome.value, footer=_cell(totals[outcome.value]), **numbers)
    if not wide:
        table.add_column(
            "not sent", footer=_cell(sum(totals[o.value] for o in NOT_SENT)), **numbers
        )
    requests_key = "planned_requests" if result.dry_run else "requests"
    if wide:
        table.add_column("requests", footer=_cell(totals[requests_key]), **numbers)
    if result.dry_run:
        table.add_column("eta", footer=eta_text(result.eta(totals[requests_key]) or 0), **numbers)
    else:
        table.add_column("time", footer=_duration(result.elapsed), **numbers)
    for m in result.models:
        cells = [visible(m.model), visible(m.mode)] if wide else [visible(m.model)]
        cells.append(status_word(m))
        if wide:
            cells.append(_cell(m.rows_read))
        cells += [_cell(m.counts.get(o, 0)) for o in shown]
        if not wide:
            cells.append(_cell(sum(m.counts.get(o, 0) for o in NOT_SENT)))
        if wide:
            cells.append(_cell(m.planned_requests if result.dry_run else m.requests))
        if result.dry_run:
            cells.append(eta_text(result.eta(m.planned_requests) or 0))
        else:
            cells.append(_duration(m.duration))
        table.add_row(*cells)
    return table


def print_table(console: Console, table: Table, natural: bool = False) -> None:
    """Print ``table`` fitted to the console, or at its natural width (``--wide``: every
    column whole; on a narrow terminal the lines wrap)."""
    if not natural:
        console.print(table)
        return
    options = console.options.update(width=10_000)
    width = max(console.width, table.__rich_measure__(console, options).maximum)
    options = options.update(width=width, max_width=width)
    for line in console.render_lines(table, options, pad=False):
        text = Text.assemble(*((segment.text, segment.style) for segment in line))
        console.print(text, soft_wrap=True, crop=False)


def failure_lines(result: RunResult, limit: int = FAILURES_SHOWN) -> list[str]:
    """The first rows that did not go through (keys in natural order), with their reason."""
    lines = []
    for m in result.models:
        if m.error:
            lines.append(f"{m.model}: {m.error}")
        for issue in m.sorted_issues():
            status = f" [HTTP {issue.http_status}]" if issue.http_status else ""
            lines.append(f"{m.model} {issue.label}: {issue.outcome.value}{status}: {issue.message}")
    shown = [redact(line) for line in lines[:limit]]
    hidden = (
        sum(m.issue_total for m in result.models)
        + sum(1 for m in result.models if m.error)
        - len(shown)
    )
    if hidden > 0:
        shown.append(f"... and {hidden} more (see target/{result.results_file})")
    return shown


def reason_lines(result: RunResult, limit: int = FAILURES_SHOWN) -> list[str]:
    """Per model, how many rows would not go through and why (most frequent reasons first)."""
    lines = [
        f"{m.model}: {entry['rows']} {entry['outcome']}: {entry['reason']}"
        for m in result.models
        for entry in m.reason_counts()
    ]
    hidden = len(lines) - limit
    return lines[:limit] + (
        [f"... and {hidden} more reasons (see --output json)"] if hidden > 0 else []
    )


def skipped_lines(result: RunResult) -> list[str]:
    """Rows left out because models stopped early: how many, where, and why (per reason)."""
    by_reason: dict[str, list[ModelResult]] = {}
    for m in result.models:
        if m.stopped and m.counts.get(Outcome.SKIPPED, 0):
            by_reason.setdefault(m.stopped, []).append(m)
    lines = []
    for reason, models in by_reason.items():
        total = sum(m.counts[Outcome.SKIPPED] for m in models)
        where = ", ".join(f"{m.model} {m.counts[Outcome.SKIPPED]}" for m in models)
        lines.append(f"{plural(total, 'row')} skipped ({where}): {reason}")
    return lines


def sample_lines(result: RunResult) -> list[str]:
    """``plan --show``: each kept payload on one line, keyed by row key and target CRM id."""
    lines = []
    for m in result.models:
        for operation, samples in m.samples.items():
            for sample in samples:
                target = f" -> {sample['crm_id']}" if sample.get("crm_id") else ""
                data = json.dumps(sample["data"], ensure_ascii=False, default=str)
                lines.append(f"{m.model} {operation} key {sample['key']}{target}: {data}")
    return lines


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
        self.progress.update(task_id, rate=rate, eta=_clock(eta) if eta is not None else "-:--:--")

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
            left = f", about {_clock(eta)} left" if eta is not None else ""
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
            else f"{plural(m.requests, 'request')}, {_duration(m.duration)}"
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
        self.console.print()
        print_table(self.console, summary_table(result, self.plain, self.wide), self.wide)
        if result.dry_run:
            self.console.print(visible(eta_line(result)))
        limits = limiter_line(result)
        if limits:
            self.console.print(visible(limits))
        for notice in result.notices:
            self.console.print(visible(redact(notice)))
        for line in skipped_lines(result):
            self.console.print(visible(line), soft_wrap=True)
        failures = reason_lines(result) if result.dry_run else failure_lines(result)
        if failures:
            verb = "would not go" if result.dry_run else "did not go"
            self.console.print(f"\nRows that {verb} through:")
            for line in failures:
                self.console.print("  " + visible(line), soft_wrap=True)
        samples = sample_lines(result)
        if samples:
            how = (
                "as they are (--unmasked)" if not result.samples_masked else "personal data masked"
            )
            self.console.print(f"\nPayloads ({how}):")
            for line in samples:
                self.console.print("  " + visible(line), soft_wrap=True)


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
