"""What a run did: per-row outcomes tallied per model. Partial success is data, not control flow."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from dbt_rdcrm import __version__
from dbt_rdcrm.crm.limiter import LimiterStats, simulate_eta
from dbt_rdcrm.errors import UsageError
from dbt_rdcrm.redaction import redact

MAX_ISSUES_KEPT = 200
RESULTS_FILE = "rdcrm_run_results.json"  # sync
PLAN_RESULTS_FILE = "rdcrm_plan_results.json"  # plan (and sync --dry-run): never the sync's
SCHEMA_VERSION = 1
SAMPLE_OPERATIONS = ("create", "update")
PLANNED_ID = "0" * 24  # in a plan: the id of a parent that the same run would create first
ASSUMED_LATENCY = 0.3  # seconds per request when no run has measured it yet


def natural_key(text: str | None) -> tuple:
    """Sort key for row keys: ``2`` before ``11``, text pieces as text."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.split(r"(\d+)", text or "")
        if part
    )


@dataclass(frozen=True)
class Pace:
    """What a plan's ETA assumes: workers sending at once and seconds per request."""

    concurrency: int = 1
    latency_s: float = ASSUMED_LATENCY  # from a request's send to its answer
    overhead_s: float = 0.0  # from an answer to the same worker's next request (recording it)
    source: str = "assumed"  # measured by the last sync (, from the state) | assumed

    @property
    def per_request_s(self) -> float:
        return self.latency_s + self.overhead_s

    def eta(self, requests: int, rate_limit: int) -> float:
        return simulate_eta(requests, rate_limit, self.concurrency, self.latency_s, self.overhead_s)

    def to_dict(self) -> dict:
        return {
            "concurrency": self.concurrency,
            "latency_s": round(self.latency_s, 4),
            "overhead_s": round(self.overhead_s, 4),
            "latency_source": self.source,
        }


def previous_pace(target_path: Path, concurrency: int = 1) -> Pace | None:
    """The latency and per-request work the last sync measured (its results file), if any."""
    try:
        document = json.loads((target_path / RESULTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return measured_pace(document, concurrency, "measured by the last sync")


def measured_pace(document: object, concurrency: int, source: str) -> Pace | None:
    """The pace in a sync's results (or their copy in the state): ``limiter.latency_s`` and
    ``limiter.overhead_s``; None when they are missing or not numbers."""
    try:
        latency = document["limiter"]["latency_s"]
        overhead = document["limiter"].get("overhead_s") or 0.0
    except (KeyError, TypeError, AttributeError):
        return None
    numbers = all(isinstance(v, (int, float)) and v >= 0 for v in (latency, overhead))
    if latency is None or not numbers:
        return None
    return Pace(concurrency, float(latency), float(overhead), source)


class Outcome(str, Enum):
    CREATED = "created"
    UPDATED = "updated"
    RECREATED = "recreated"  # the record was deleted in the CRM: found again or created again
    UNCHANGED = "unchanged"
    WAITING = "waiting"  # a linked parent has no CRM id yet
    REJECTED = "rejected"  # invalid locally, never sent
    FAILED = "failed"  # refused by the CRM, or network/server trouble
    UNRESOLVED = "unresolved"  # an earlier create may have landed: settle it (never guessed)
    SKIPPED = "skipped"  # not attempted: the model stopped early (failure or request budget)


PROBLEM_OUTCOMES = (Outcome.REJECTED, Outcome.FAILED, Outcome.UNRESOLVED)


@dataclass(frozen=True)
class RowIssue:
    """A row that did not go through, identified by key (or position), never by content."""

    outcome: Outcome
    reason: str
    key: str | None = None
    row_number: int | None = None
    http_status: int | None = None
    field: str | None = None

    @property
    def label(self) -> str:
        return f"key {self.key}" if self.key is not None else f"row {self.row_number}"

    @property
    def message(self) -> str:
        """The reason without an ``HTTP 422:`` prefix that ``http_status`` already says."""
        prefix = f"HTTP {self.http_status}: "
        return self.reason.removeprefix(prefix) if self.http_status else self.reason

    @property
    def sort_key(self) -> tuple:
        return (natural_key(self.key), self.row_number or 0)

    def to_dict(self) -> dict:
        return {
            "outcome": self.outcome.value,
            "key": self.key,
            "row_number": self.row_number,
            "http_status": self.http_status,
            "field": self.field,
            "reason": redact(self.message),
        }


@dataclass
class ModelResult:
    model: str
    unique_id: str
    mode: str
    counts: Counter = field(default_factory=Counter)
    requests: int = 0
    planned_requests: int = 0
    differences: int = 0  # rows written, but the CRM's answer does not hold what was sent
    duration: float = 0.0
    status: str = "success"  # success | failed | error
    error: str | None = None
    stopped: str | None = None  # why rows were skipped, if they were
    issues: list[RowIssue] = field(default_factory=list)
    issue_total: int = 0
    samples: dict[str, list[dict]] = field(default_factory=dict)  # plan --show: op -> payloads
    reasons: Counter = field(default_factory=Counter)  # (outcome, reason) -> rows

    @property
    def rows_read(self) -> int:
        return sum(self.counts.values())

    def count(self, outcome: Outcome, n: int = 1) -> None:
        self.counts[outcome] += n

    def add_issue(self, issue: RowIssue) -> None:
        self.issue_total += 1
        self.reasons[(issue.outcome, issue.reason)] += 1
        if len(self.issues) < MAX_ISSUES_KEPT:
            self.issues.append(issue)

    def add_sample(
        self, operation: str, key: str | None, crm_id: str | None, data: dict | None, limit: int
    ) -> None:
        kept = self.samples.setdefault(operation, [])
        if len(kept) < limit:
            kept.append({"key": key, "crm_id": crm_id, "data": data})

    def reason_counts(self) -> list[dict]:
        """Rows that did not go through, per outcome and reason, most frequent first."""
        ranked = sorted(self.reasons.items(), key=lambda item: (-item[1], item[0][1]))
        return [
            {"outcome": outcome.value, "reason": redact(reason), "rows": rows}
            for (outcome, reason), rows in ranked
        ]

    @property
    def problems(self) -> int:
        """Rows that did not go through because something is wrong with them."""
        return sum(self.counts.get(o, 0) for o in PROBLEM_OUTCOMES)

    def sorted_issues(self) -> list[RowIssue]:
        return sorted(self.issues, key=lambda issue: issue.sort_key)

    def to_dict(self, eta: float | None = None) -> dict:
        """The JSON shape; ``eta`` (plans only) is the ETA of the planned requests."""
        return {
            "model": self.model,
            "unique_id": self.unique_id,
            "mode": self.mode,
            "status": self.status,
            "rows_read": self.rows_read,
            "counts": {o.value: self.counts.get(o, 0) for o in Outcome},
            "requests": self.requests,
            "planned_requests": self.planned_requests,
            "written_with_differences": self.differences,
            "eta_s": eta,
            "duration_s": round(self.duration, 3),
            "error": redact(self.error) if self.error else None,
            "stopped": self.stopped,
            "issues_total": self.issue_total,
            "issues": [i.to_dict() for i in self.sorted_issues()],
            "reasons": self.reason_counts(),
            "samples": {op: self.samples.get(op, []) for op in SAMPLE_OPERATIONS},
        }


@dataclass
class RunResult:
    run_id: str
    command: str
    invocation_id: str | None
    generated_at: str
    base_url: str
    rate_limit: int
    dry_run: bool = False
    models: list[ModelResult] = field(default_factory=list)
    elapsed: float = 0.0
    notices: list[str] = field(default_factory=list)
    samples_masked: bool = True  # plan --show payloads have personal data masked
    abort: Exception | None = None  # the error that ended the run early (credentials refused)
    error: dict | None = None  # {type, message, writes_sent} when an error stopped the run
    pace: Pace = Pace()  # what a plan's ETA assumes
    limiter: LimiterStats | None = None  # a sync's requests, 429s and waits

    @property
    def results_file(self) -> str:
        return PLAN_RESULTS_FILE if self.dry_run else RESULTS_FILE

    def eta(self, requests: int) -> float | None:
        """Plans only: how long ``requests`` take through the limiter at ``pace``."""
        return self.pace.eta(requests, self.rate_limit) if self.dry_run else None

    @property
    def success(self) -> bool:
        return self.error is None and all(m.status == "success" for m in self.models)

    @property
    def exit_code(self) -> int:
        return 0 if self.success else 1

    def to_dict(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "dbt_rdcrm_version": __version__,
            "command": self.command,
            "run_id": self.run_id,
            "invocation_id": self.invocation_id,
            "generated_at": self.generated_at,
            "base_url": self.base_url,
            "rate_limit_per_minute": self.rate_limit,
            "dry_run": self.dry_run,
            "success": self.success,
            "elapsed_s": round(self.elapsed, 3),
            "totals": {**self.totals(), "eta_s": self._eta(self.totals()["planned_requests"])},
            "eta": self.pace.to_dict() if self.dry_run else None,
            "limiter": (self.limiter or LimiterStats()).to_dict() if not self.dry_run else None,
            "notices": [redact(n) for n in self.notices],
            "samples_masked": self.samples_masked,
            "models": [m.to_dict(self._eta(m.planned_requests)) for m in self.models],
            **({"error": self.error} if self.error is not None else {}),
        }

    def _eta(self, requests: int) -> float | None:
        eta = self.eta(requests)
        return None if eta is None else round(eta, 3)

    def totals(self) -> dict:
        total: Counter = Counter()
        for m in self.models:
            total.update(m.counts)
        return {
            "rows_read": sum(total.values()),
            "requests": sum(m.requests for m in self.models),
            "planned_requests": sum(m.planned_requests for m in self.models),
            **{o.value: total.get(o, 0) for o in Outcome},
        }


def write_results(result: RunResult, target_path: Path) -> Path:
    """Write ``target/rdcrm_run_results.json`` (a plan: ``rdcrm_plan_results.json``)
    atomically; returns its path."""
    path = target_path / result.results_file
    temp = path.with_suffix(".json.tmp")
    try:
        target_path.mkdir(parents=True, exist_ok=True)
        temp.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
        temp.replace(path)
    except OSError as exc:
        raise UsageError(
            f"cannot write the run results to {path}: {exc.strerror or type(exc).__name__}"
        ) from None
    return path
