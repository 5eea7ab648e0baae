"""What a run's report prints under its summary table: the plan's ETA, the rate limit's use,
notices, skipped rows, the rows that did not go through and ``--show``'s payloads."""

from __future__ import annotations

import json

from rich.console import Console

from dbt_rdcrm.redaction import redact
from dbt_rdcrm.report.results import ModelResult, Outcome, RunResult
from dbt_rdcrm.report.summary_table import print_table, summary_table
from dbt_rdcrm.report.terminal import shown as visible
from dbt_rdcrm.report.wording import duration_text, eta_text, plural

FAILURES_SHOWN = 10


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
        f"{duration_text(stats.waited_s)} waited"
    )


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


def print_summary(console: Console, result: RunResult, plain: bool, wide: bool = False) -> None:
    """The end of a run's report: the summary table, then every line above that applies."""
    console.print()
    print_table(console, summary_table(result, plain, wide), wide)
    if result.dry_run:
        console.print(visible(eta_line(result)))
    limits = limiter_line(result)
    if limits:
        console.print(visible(limits))
    for notice in result.notices:
        console.print(visible(redact(notice)))
    for line in skipped_lines(result):
        console.print(visible(line), soft_wrap=True)
    failures = reason_lines(result) if result.dry_run else failure_lines(result)
    if failures:
        verb = "would not go" if result.dry_run else "did not go"
        console.print(f"\nRows that {verb} through:")
        for line in failures:
            console.print("  " + visible(line), soft_wrap=True)
    samples = sample_lines(result)
    if samples:
        how = "as they are (--unmasked)" if not result.samples_masked else "personal data masked"
        console.print(f"\nPayloads ({how}):")
        for line in samples:
            console.print("  " + visible(line), soft_wrap=True)
