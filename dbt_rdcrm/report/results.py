"""What a run did: per-row outcomes tallied per model. Partial success is data, not control flow."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from dbt_rdcrm import __version__
from dbt_rdcrm.crm.limiter import RateLimiter
from dbt_rdcrm.errors import UsageError
from dbt_rdcrm.redaction import redact

MAX_ISSUES_KEPT = 200
RESULTS_FILE = "rdcrm_run_results.json"
SCHEMA_VERSION = 1
SAMPLE_OPERATIONS = ("create", "update")
PLANNED_ID = "0" * 24  # in a plan: the id of a parent that the same run would create first


def eta_seconds(requests: int, rate_limit: int) -> float:
    """Least time ``requests`` take at ``rate_limit`` requests per minute (0 = unlimited)."""
    return RateLimiter(rate_limit).eta_seconds(requests)


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

    def to_dict(self) -> dict:
        return {
            "outcome": self.outcome.value,
            "key": self.key,
            "row_number": self.row_number,
            "http_status": self.http_status,
            "field": self.field,
            "reason": redact(self.reason),
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

    def to_dict(self, rate_limit: int | None = None) -> dict:
        """The JSON shape; ``rate_limit`` (plans only) adds the ETA of the planned requests."""
        eta = None if rate_limit is None else eta_seconds(self.planned_requests, rate_limit)
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
            "eta_s": None if eta is None else round(eta, 3),
            "duration_s": round(self.duration, 3),
            "error": redact(self.error) if self.error else None,
            "stopped": self.stopped,
            "issues_total": self.issue_total,
            "issues": [i.to_dict() for i in self.issues],
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
            "notices": [redact(n) for n in self.notices],
            "samples_masked": self.samples_masked,
            "models": [m.to_dict(self.rate_limit if self.dry_run else None) for m in self.models],
            **({"error": self.error} if self.error is not None else {}),
        }

    def _eta(self, requests: int) -> float | None:
        return round(eta_seconds(requests, self.rate_limit), 3) if self.dry_run else None

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
    """Write ``target/rdcrm_run_results.json`` atomically; returns its path."""
    path = target_path / RESULTS_FILE
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
