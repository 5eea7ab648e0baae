"""The human reporter on a terminal (live progress) and off one (plain lines), from events."""

import io
from collections import Counter

from rich.console import Console

from dbt_rdcrm.report.events import ModelFinished, ModelStarted, RowDone, RunFinished, RunStarted
from dbt_rdcrm.report.reporter import HumanReporter, failure_lines
from dbt_rdcrm.report.results import ModelResult, Outcome, RowIssue, RunResult


def _result() -> RunResult:
    model = ModelResult(
        "crm_contacts",
        "model.p.crm_contacts",
        "contacts",
        counts=Counter({Outcome.CREATED: 1, Outcome.REJECTED: 1}),
        requests=1,
        duration=1.5,
        status="success",
    )
    model.add_issue(
        RowIssue(Outcome.REJECTED, "email is not a valid e-mail address", "C9", field="email")
    )
    return RunResult(
        "run",
        "sync",
        None,
        "2026-01-01T00:00:00+00:00",
        "http://x",
        120,
        models=[model],
        elapsed=2.0,
    )


def _events(reporter: HumanReporter, models: int = 1) -> None:
    result = _result()
    reporter(RunStarted(("crm_contacts",) * models, dry_run=False))
    for _ in range(models):  # the second model's task gets a new id after the first is removed
        reporter(ModelStarted("crm_contacts", "contacts", 2, 0))
        reporter(RowDone("crm_contacts", Outcome.CREATED))
        reporter(RowDone("crm_contacts", Outcome.REJECTED))
        reporter(ModelFinished(result.models[0]))
    reporter(RunFinished(result))


def test_plain_output_has_start_and_end_lines_and_the_failures():
    out = io.StringIO()
    _events(HumanReporter(Console(file=out, width=200, force_terminal=False)))
    text = out.getvalue()
    assert "1 of 1 START crm_contacts (contacts): 2 row(s) to process, 0 unchanged" in text
    assert "1 of 1 OK crm_contacts: 1 created, 1 rejected (1 requests, 1.5s)" in text
    assert "crm_contacts key C9: rejected: email is not a valid e-mail address" in text


def test_terminal_output_runs_live_progress_and_ends_with_the_table():
    out = io.StringIO()
    reporter = HumanReporter(Console(file=out, width=200, force_terminal=True, color_system=None))
    _events(reporter, models=3)
    text = out.getvalue()
    assert "crm_contacts" in text and "created" in text and "rows/min" not in text.split("\n")[-1]


def test_failure_list_is_capped_and_points_at_the_results_file():
    result = _result()
    for n in range(15):
        result.models[0].add_issue(RowIssue(Outcome.FAILED, "HTTP 422: bad", f"K{n}"))
    lines = failure_lines(result)
    assert len(lines) == 11
    assert lines[-1] == "... and 6 more (see target/rdcrm_run_results.json)"
