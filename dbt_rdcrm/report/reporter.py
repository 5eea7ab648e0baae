"""Render engine events for people (rich progress + summary table) and machines (JSON)."""

from __future__ import annotations

import json
import math
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
from dbt_rdcrm.report.results import ModelResult, Outcome, RunResult, eta_seconds
from dbt_rdcrm.report.terminal import shown

FAILURES_SHOWN = 10
SUMMARY_OUTCOMES = (
    Outcome.CREATED,
    Outcome.UPDATED,
    Outcome.UNCHANGED,
    Outcome.WAITING,
    Outcome.REJECTED,
    Outcome.FAILED,
    Outcome.SKIPPED,
)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def eta_text(seconds: float) -> str:
    """An ETA rounded up to whole seconds: ``6s``, ``1m30s``, ``14h00m00s``."""
    return _duration(math.ceil(seconds)) if seconds >= 60 else f"{math.ceil(seconds)}s"


def eta_line(result: RunResult) -> str:
    """``12 requests: about 6s at 120 requests/minute``: what a plan's requests will take."""
    requests = result.totals()["planned_requests"]
    noun = "request" if requests == 1 else "requests"
    if not requests:
        return "0 requests: nothing to send"
    if result.rate_limit <= 0:
        return f"{requests} {noun}: no rate limit configured"
    eta = eta_text(eta_seconds(requests, result.rate_limit))
    return f"{requests} {noun}: about {eta} at {result.rate_limit} requests/minute"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def summary_table(result: RunResult, plain: bool) -> Table:
    title = "dbt-rdcrm plan" if result.dry_run else "dbt-rdcrm sync"
    table = Table(
        title=title,
        box=box.ASCII if plain else box.SIMPLE_HEAVY,
        title_justify="left",
        show_footer=len(result.models) > 1,
    )
    totals = result.totals()
    table.add_column("model", footer="total")
    table.add_column("mode")
    table.add_column("status")
    table.add_column("read", justify="right", footer=str(totals["rows_read"]))
    for outcome in SUMMARY_OUTCOMES:
        table.add_column(outcome.value, justify="right", footer=str(totals[outcome.value]))
    requests_key = "planned_requests" if result.dry_run else "requests"
    table.add_column("requests", justify="right", footer=str(totals[requests_key]))
    if result.dry_run:
        total_eta = eta_seconds(totals["planned_requests"], result.rate_limit)
        table.add_column("eta", justify="right", footer=eta_text(total_eta))
    else:
        table.add_column("time", justify="right", footer=_duration(result.elapsed))
    for m in result.models:
        table.add_row(
            shown(m.model),
            shown(m.mode),
            m.status,
            str(m.rows_read),
            *(str(m.counts.get(o, 0)) for o in SUMMARY_OUTCOMES),
            str(m.planned_requests if result.dry_run else m.requests),
            eta_text(eta_seconds(m.planned_requests, result.rate_limit))
            if result.dry_run
            else _duration(m.duration),
        )
    return table


def failure_lines(result: RunResult, limit: int = FAILURES_SHOWN) -> list[str]:
    """The first rows that did not go through, with their key (or position) and reason."""
    lines = []
    for m in result.models:
        if m.error:
            lines.append(f"{m.model}: {m.error}")
        for issue in m.issues:
            status = f" [HTTP {issue.http_status}]" if issue.http_status else ""
            lines.append(f"{m.model} {issue.label}: {issue.outcome.value}{status}: {issue.reason}")
    kept = [redact(line) for line in lines[:limit]]
    hidden = (
        sum(m.issue_total for m in result.models)
        + sum(1 for m in result.models if m.error)
        - len(kept)
    )
    if hidden > 0:
        kept.append(f"... and {hidden} more (see target/rdcrm_run_results.json)")
    return kept


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
        lines.append(f"{total} row(s) skipped ({where}): {reason}")
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
    """Progress while running (on a terminal), then the summary table and first failures."""

    def __init__(self, console: Console):
        self.console = console
        self.plain = not console.is_terminal or console.no_color
        self.progress: Progress | None = None
        self.tasks: dict[str, TaskID] = {}
        self.position = 0
        self.total_models = 0
        self.dry_run = False
        self.rate_limit = 0

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.total_models = len(event.models)
            self.dry_run = event.dry_run
            self.rate_limit = event.rate_limit
            verb = "Planning" if event.dry_run else "Syncing"
            self.console.print(f"{verb} {len(event.models)} model(s) to RD Station CRM")
            if not self.plain:
                self.progress = Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]}"),
                    TimeElapsedColumn(),
                    TextColumn("eta {task.fields[eta]}"),
                    console=self.console,
                    transient=True,
                )
                self.progress.start()
        elif isinstance(event, ModelStarted):
            self.position += 1
            line = (
                f"{self.position} of {self.total_models} START {event.model} ({event.mode}): "
                f"{event.to_process} row(s) to process, {event.unchanged} unchanged"
            )
            self._print(shown(line))
            if self.progress is not None:
                self.tasks[event.model] = self.progress.add_task(
                    event.model, total=event.to_process, rate="", eta=""
                )
                self._update_pace(self.tasks[event.model])
        elif isinstance(event, RowDone) and self.progress is not None:
            task_id = self.tasks.get(event.model)
            if task_id is not None:
                self.progress.advance(task_id)
                self._update_pace(task_id)
        elif isinstance(event, RateLimitWait) and self.progress is not None:
            for task_id in self.tasks.values():
                self._update_pace(task_id, waiting=event.seconds)
        elif isinstance(event, Notice):
            prefix = f"{event.model}: " if event.model else ""
            self._print("[yellow]warning[/yellow] " + shown(prefix + event.message))
        elif isinstance(event, ModelFinished):
            self._model_done(event.result)
        elif isinstance(event, RunFinished):
            self._run_done(event.result)

    def _update_pace(self, task_id: TaskID, waiting: float = 0.0) -> None:
        """Rows per minute so far, and the time left: from that pace once there is one, else
        from the rate limit (about one request per row), since syncs are limit-bound."""
        task = next(t for t in self.progress.tasks if t.id == task_id)
        remaining = max(0, (task.total or 0) - task.completed)
        speed = task.speed
        if waiting and self.rate_limit:
            eta: float | None = waiting + max(0, remaining - 1) * 60 / self.rate_limit
        elif speed:
            eta = remaining / speed
        elif self.rate_limit and not self.dry_run:
            eta = remaining * 60 / self.rate_limit
        else:
            eta = None
        rate = f"{speed * 60:.0f} rows/min" if speed else ""
        if waiting:
            rate = f"rate limit: next request in {waiting:.0f}s"
        self.progress.update(task_id, rate=rate, eta=_clock(eta) if eta is not None else "-:--:--")

    def _print(self, text: str) -> None:
        (self.progress.console if self.progress is not None else self.console).print(text)

    def _model_done(self, m: ModelResult) -> None:
        if self.progress is not None and m.model in self.tasks:
            self.progress.remove_task(self.tasks.pop(m.model))
        counts = ", ".join(
            f"{m.counts.get(o, 0)} {o.value}" for o in SUMMARY_OUTCOMES if m.counts.get(o, 0)
        )
        word = {"success": "OK", "failed": "FAIL", "error": "ERROR"}[m.status]
        cost = (
            f"{m.planned_requests} requests planned"
            if self.dry_run
            else f"{m.requests} requests, {_duration(m.duration)}"
        )
        line = (
            f"{self.position} of {self.total_models} {word} {m.model}: {counts or 'no rows'}"
            f" ({cost})"
        )
        self._print(shown(line))

    def _run_done(self, result: RunResult) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        self.console.print()
        self.console.print(summary_table(result, self.plain))
        if result.dry_run:
            self.console.print(shown(eta_line(result)))
        for notice in result.notices:
            self.console.print(shown(notice))
        for line in skipped_lines(result):
            self.console.print(shown(line), soft_wrap=True)
        failures = reason_lines(result) if result.dry_run else failure_lines(result)
        if failures:
            verb = "would not go" if result.dry_run else "did not go"
            self.console.print(f"\nRows that {verb} through:")
            for line in failures:
                self.console.print("  " + shown(line), soft_wrap=True)
        samples = sample_lines(result)
        if samples:
            how = (
                "as they are (--unmasked)" if not result.samples_masked else "personal data masked"
            )
            self.console.print(f"\nPayloads ({how}):")
            for line in samples:
                self.console.print("  " + shown(line), soft_wrap=True)


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
