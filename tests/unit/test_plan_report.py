"""The human rendering of plans and syncs from results built by hand: ETA, reasons, budgets."""

import io

import pytest
from rich.console import Console

from dbt_rdcrm.report.reporter import (
    eta_line,
    eta_text,
    reason_lines,
    skipped_lines,
    summary_table,
)
from dbt_rdcrm.report.results import ModelResult, Outcome, RowIssue, RunResult


def run(dry_run: bool, rate_limit: int = 120, *models: ModelResult) -> RunResult:
    return RunResult(
        "r",
        "plan" if dry_run else "sync",
        None,
        "now",
        "https://crm/v2",
        rate_limit,
        dry_run=dry_run,
        models=list(models),
        elapsed=75.2,
    )


def model(name: str, planned: int = 0, sent: int = 0, duration: float = 0.0, **counts):
    result = ModelResult(
        name,
        f"model.p.{name}",
        "contacts",
        planned_requests=planned,
        requests=sent,
        duration=duration,
    )
    for outcome, n in counts.items():
        result.count(Outcome(outcome), n)
    return result


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.5, "1s"),
        (6, "6s"),
        (59.2, "60s"),
        (60, "1m00s"),
        (90.5, "1m31s"),
        (50_000, "13h53m20s"),
    ],
)
def test_eta_text_rounds_up_to_whole_seconds(seconds, text):
    assert eta_text(seconds) == text


@pytest.mark.parametrize(
    ("planned", "rate_limit", "line"),
    [
        pytest.param(12, 120, "12 requests: about 6s at 120 requests/minute", id="sample"),
        pytest.param(1, 120, "1 request: about 1s at 120 requests/minute", id="one"),
        pytest.param(
            100_000,
            120,
            "100000 requests: about 13h53m20s at 120 requests/minute",
            id="a-big-model",
        ),
        pytest.param(5, 0, "5 requests: no rate limit configured", id="unlimited"),
        pytest.param(0, 120, "0 requests: nothing to send", id="nothing"),
    ],
)
def test_eta_line(planned, rate_limit, line):
    assert eta_line(run(True, rate_limit, model("m", planned=planned))) == line


def render(table) -> str:
    console = Console(file=io.StringIO(), width=200, force_terminal=False, color_system=None)
    console.print(table)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines())


def test_sync_table_shows_sent_requests_and_durations():
    result = run(
        False,
        120,
        model("crm_a", planned=3, sent=3, duration=1.25, created=3),
        model("crm_b", planned=9, sent=2, duration=61, updated=2, skipped=7),
    )
    assert (
        render(summary_table(result, plain=True))
        == """\
dbt-rdcrm sync
+------------------------------------------------------------------------------------------------------------------------------+
| model | mode     | status  | read | created | updated | unchanged | waiting | rejected | failed | skipped | requests |  time |
|-------+----------+---------+------+---------+---------+-----------+---------+----------+--------+---------+----------+-------|
| crm_a | contacts | success |    3 |       3 |       0 |         0 |       0 |        0 |      0 |       0 |        3 |  1.2s |
| crm_b | contacts | success |    9 |       0 |       2 |         0 |       0 |        0 |      0 |       7 |        2 | 1m01s |
|-------+----------+---------+------+---------+---------+-----------+---------+----------+--------+---------+----------+-------|
| total |          |         |   12 |       3 |       2 |         0 |       0 |        0 |      0 |       7 |        5 | 1m15s |
+------------------------------------------------------------------------------------------------------------------------------+"""
    )


def test_plan_table_shows_planned_requests_and_their_eta():
    result = run(True, 60, model("crm_a", planned=90, created=90), model("crm_b", unchanged=4))
    assert (
        render(summary_table(result, plain=True))
        == """\
dbt-rdcrm plan
+------------------------------------------------------------------------------------------------------------------------------+
| model | mode     | status  | read | created | updated | unchanged | waiting | rejected | failed | skipped | requests |   eta |
|-------+----------+---------+------+---------+---------+-----------+---------+----------+--------+---------+----------+-------|
| crm_a | contacts | success |   90 |      90 |       0 |         0 |       0 |        0 |      0 |       0 |       90 | 1m30s |
| crm_b | contacts | success |    4 |       0 |       0 |         4 |       0 |        0 |      0 |       0 |        0 |    0s |
|-------+----------+---------+------+---------+---------+-----------+---------+----------+--------+---------+----------+-------|
| total |          |         |   94 |      90 |       0 |         4 |       0 |        0 |      0 |       0 |       90 | 1m30s |
+------------------------------------------------------------------------------------------------------------------------------+"""
    )


def test_reasons_are_counted_per_model_most_frequent_first():
    m = model("crm_a")
    for key in ("1", "2", "3"):
        m.add_issue(RowIssue(Outcome.REJECTED, "email is not a valid e-mail address", key))
    m.add_issue(RowIssue(Outcome.WAITING, "waiting for crm_o to sync the linked record", "4"))
    assert reason_lines(run(True, 120, m)) == [
        "crm_a: 3 rejected: email is not a valid e-mail address",
        "crm_a: 1 waiting: waiting for crm_o to sync the linked record",
    ]
    assert m.to_dict()["reasons"][0] == {
        "outcome": "rejected",
        "reason": "email is not a valid e-mail address",
        "rows": 3,
    }


def test_rows_skipped_by_a_spent_budget_are_summed_per_reason():
    reason = "request budget (--max-requests) spent: continues on the next run"
    a, b = model("crm_a", skipped=1), model("crm_b", skipped=4)
    a.stopped = b.stopped = reason
    assert skipped_lines(run(False, 120, a, b, model("crm_c", created=1))) == [
        f"5 row(s) skipped (crm_a 1, crm_b 4): {reason}"
    ]
