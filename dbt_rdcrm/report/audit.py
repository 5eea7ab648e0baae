"""What an audit found, per model, rendered for people (a summary table and the findings) and
machines (JSON)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rich import box
from rich.table import Table

from dbt_rdcrm import __version__
from dbt_rdcrm.redaction import redact
from dbt_rdcrm.report.results import SCHEMA_VERSION
from dbt_rdcrm.sync.listing import Listing

AUDIT_RESULTS_FILE = "rdcrm_audit_results.json"
FINDINGS_SHOWN = 10
IN_STEP, DRIFTED, MISSING, FOREIGN = "in_step", "drifted", "missing", "foreign"
NOT_COMPARED, UNCHECKED = "not_compared", "unchecked"
COUNTS = (IN_STEP, DRIFTED, MISSING, FOREIGN, NOT_COMPARED, UNCHECKED)
FINDINGS_KEPT = 200


@dataclass(frozen=True)
class Finding:
    """One row (or record) that is not in step, by key and CRM id, never by content."""

    outcome: str
    key: str | None
    crm_id: str | None
    reason: str

    def to_dict(self) -> dict:
        return {
            "outcome": self.outcome,
            "key": self.key,
            "crm_id": self.crm_id,
            "reason": self.reason,
        }


@dataclass
class ModelAudit:
    model: str
    unique_id: str
    mode: str
    counts: Counter = field(default_factory=Counter)
    drifted_fields: Counter = field(default_factory=Counter)  # field -> drifted rows
    unkept_fields: set[str] = field(default_factory=set)  # sent, but the CRM keeps no such field
    findings: list[Finding] = field(default_factory=list)
    findings_total: int = 0
    repaired: int = 0
    incomplete: str | None = None  # why some rows could not be checked

    @property
    def in_step(self) -> bool:
        return not any(self.counts[c] for c in (DRIFTED, MISSING, FOREIGN, UNCHECKED))

    def add(self, finding: Finding) -> None:
        self.counts[finding.outcome] += 1
        self.findings_total += 1
        if len(self.findings) < FINDINGS_KEPT:
            self.findings.append(finding)

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "unique_id": self.unique_id,
            "mode": self.mode,
            "in_step": self.in_step,
            "counts": {c: self.counts.get(c, 0) for c in COUNTS},
            "drifted_fields": dict(self.drifted_fields.most_common()),
            "fields_not_kept_by_the_crm": sorted(self.unkept_fields),
            "repaired": self.repaired,
            "incomplete_because": self.incomplete,
            "findings_total": self.findings_total,
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass
class AuditResult:
    run_id: str
    generated_at: str
    base_url: str
    repair: bool
    models: list[ModelAudit] = field(default_factory=list)
    listings: dict[str, Listing] = field(default_factory=dict)
    requests: int = 0
    elapsed: float = 0.0

    @property
    def success(self) -> bool:
        return all(m.in_step for m in self.models)

    @property
    def exit_code(self) -> int:
        return 0 if self.success else 1

    def totals(self) -> dict:
        total: Counter = Counter()
        for m in self.models:
            total.update(m.counts)
        return {c: total.get(c, 0) for c in COUNTS} | {
            "repaired": sum(m.repaired for m in self.models)
        }


def to_dict(result: AuditResult) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "dbt_rdcrm_version": __version__,
        "command": "audit",
        "run_id": result.run_id,
        "generated_at": result.generated_at,
        "base_url": result.base_url,
        "repair": result.repair,
        "success": result.success,
        "elapsed_s": round(result.elapsed, 3),
        "requests": result.requests,
        "totals": result.totals(),
        "resources": [listing.to_dict() for listing in result.listings.values()],
        "models": [m.to_dict() for m in result.models],
    }


def write_audit_results(result: AuditResult, target_path: Path) -> Path:
    """Write ``target/rdcrm_audit_results.json`` atomically; returns its path."""
    target_path.mkdir(parents=True, exist_ok=True)
    path = target_path / AUDIT_RESULTS_FILE
    temp = path.with_suffix(".json.tmp")
    temp.write_text(json.dumps(to_dict(result), indent=2) + "\n", encoding="utf-8")
    temp.replace(path)
    return path


def summary_table(result: AuditResult, plain: bool) -> Table:
    table = Table(
        title="dbt-rdcrm audit",
        box=box.ASCII if plain else box.SIMPLE_HEAVY,
        title_justify="left",
        show_footer=len(result.models) > 1,
    )
    totals = result.totals()
    table.add_column("model", footer="total")
    table.add_column("mode")
    for count in COUNTS:
        table.add_column(count.replace("_", " "), justify="right", footer=str(totals[count]))
    for m in result.models:
        table.add_row(m.model, m.mode, *(str(m.counts.get(c, 0)) for c in COUNTS))
    return table


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def human_lines(result: AuditResult) -> list[str]:
    """What was read, what is out of step (first findings per model), and what to do next."""
    lines = []
    for listing in result.listings.values():
        how = "complete" if listing.complete else f"incomplete: {listing.why}"
        lines.append(
            f"{listing.resource}: {_plural(listing.listed, 'record')} listed in "
            f"{_plural(listing.requests, 'request')} ({how})"
        )
    for m in result.models:
        if m.unkept_fields:
            lines.append(
                f"{m.model}: the CRM keeps no {', '.join(sorted(m.unkept_fields))} on "
                f"{m.mode} (sent, never compared)"
            )
        for finding in m.findings[:FINDINGS_SHOWN]:
            label = f"key {finding.key}" if finding.key is not None else "a record"
            lines.append(
                f"{m.model} {label} (record {finding.crm_id}): {finding.outcome}: "
                f"{redact(finding.reason)}"
            )
        if m.findings_total > FINDINGS_SHOWN:
            lines.append(
                f"{m.model}: {m.findings_total - FINDINGS_SHOWN:,} more in "
                f"target/{AUDIT_RESULTS_FILE}"
            )
    totals = result.totals()
    fixable = totals[DRIFTED] + totals[MISSING]
    if result.repair and totals["repaired"]:
        lines.append(
            f"marked {_plural(totals['repaired'], 'row')} (drifted: rewritten, missing: created "
            "again) for the next `dbt-rdcrm sync`; `dbt-rdcrm plan` shows them"
        )
    elif fixable:
        lines.append(
            f"{_plural(fixable, 'row')} drifted or missing: `dbt-rdcrm audit --repair` marks "
            "them so the next `dbt-rdcrm sync` rewrites or recreates them"
        )
    if totals["foreign"]:
        lines.append(
            "foreign records stay as they are (the CRM v2 API deletes nothing): remove them "
            "in the CRM, or put their keys back in the model"
        )
    return lines
