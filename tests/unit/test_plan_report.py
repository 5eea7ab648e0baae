"""The human rendering of plans and syncs from results built by hand: ETA, reasons, budgets."""

import io

import pytest
from rich.console import Console

from dbt_rdcrm.report.results import ModelResult, Outcome, Pace, RowIssue, RunResult
from dbt_rdcrm.report.summary import eta_line, reason_lines, skipped_lines
from dbt_rdcrm.report.summary_table import summary_table
from dbt_rdcrm.report.wording import eta_text


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
    ("planned", "rate_limit", "pace", "line"),
    [
        pytest.param(
            12,
            120,
            Pace(),
            "12 requests: about 6s at 120 requests/minute, 1 at a time, 0.30s each (assumed)",
            id="sample",
        ),
        pytest.param(
            1,
            120,
            Pace(1, 0.8, source="measured by the last sync"),
            "1 request: about 1s at 120 requests/minute, 1 at a time, 0.80s each "
            "(measured by the last sync)",
            id="one",
        ),
        pytest.param(
            300,
            120,
            Pace(1, 0.8, source="measured by the last sync"),
            "300 requests: about 4m00s at 120 requests/minute, 1 at a time, 0.80s each "
            "(measured by the last sync)",
            id="latency-bound",
        ),
        pytest.param(
            100_000,
            120,
            Pace(4, 0.3),
            "100000 requests: about 13h58m41s at 120 requests/minute, 4 at a time, 0.30s each "
            "(assumed)",
            id="a-big-model",
        ),
        pytest.param(
            5,
            0,
            Pace(),
            "5 requests: about 2s with no rate limit, 1 at a time, 0.30s each (assumed)",
            id="unlimited",
        ),
        pytest.param(0, 120, Pace(), "0 requests: nothing to send", id="nothing"),
    ],
)
def test_eta_line(planned, rate_limit, pace, line):
    result = run(True, rate_limit, model("m", planned=planned))
    result.pace = pace
    assert eta_line(result) == line


def render(table, width: int = 200) -> str:
    console = Console(file=io.StringIO(), width=width, force_terminal=False, color_system=None)
    console.print(table)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines())


def test_sync_table_blanks_zeros_and_sums_rows_not_sent():
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
 model | status | created | updated | unchanged | not sent |  time
-------+--------+---------+---------+-----------+----------+-------
 crm_a | ok     |       3 |         |           |          |  1.2s
 crm_b | ok     |         |       2 |           |        7 | 1m01s
-------+--------+---------+---------+-----------+----------+-------
 total |        |       3 |       2 |           |        7 | 1m15s"""
    )


def test_plan_table_shows_the_eta_of_each_model():
    result = run(True, 60, model("crm_a", planned=90, created=90), model("crm_b", unchanged=4))
    result.pace = Pace(1, 0.0)
    assert (
        render(summary_table(result, plain=True))
        == """\
dbt-rdcrm plan
 model | status | created | updated | unchanged | not sent |   eta
-------+--------+---------+---------+-----------+----------+-------
 crm_a | ok     |      90 |         |           |          | 1m30s
 crm_b | ok     |         |         |         4 |          |    0s
-------+--------+---------+---------+-----------+----------+-------
 total |        |      90 |         |         4 |          | 1m30s"""
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
        f"5 rows skipped (crm_a 1, crm_b 4): {reason}"
    ]
