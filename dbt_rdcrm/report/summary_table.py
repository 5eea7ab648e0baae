"""The summary table of a run or a plan: one row per model, the totals in the footer."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dbt_rdcrm.report.results import Outcome, RunResult
from dbt_rdcrm.report.terminal import shown as visible
from dbt_rdcrm.report.wording import duration_text, eta_text, status_word

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
        table.add_column("time", footer=duration_text(result.elapsed), **numbers)
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
            cells.append(duration_text(m.duration))
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
