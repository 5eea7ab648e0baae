"""Render an audit for people (a summary table and the findings) and machines (JSON)."""

from __future__ import annotations

import json
from pathlib import Path

from rich import box
from rich.table import Table

from dbt_rdcrm import __version__
from dbt_rdcrm.redaction import redact
from dbt_rdcrm.report.results import SCHEMA_VERSION
from dbt_rdcrm.sync.audit import COUNTS, DRIFTED, MISSING, AuditResult

AUDIT_RESULTS_FILE = "rdcrm_audit_results.json"
FINDINGS_SHOWN = 10


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
