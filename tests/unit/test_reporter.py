"""The human reporter on a terminal (live progress) and off one (plain lines), from events."""

import io
from collections import Counter

import pytest
from rich.console import Console

from dbt_rdcrm.crm.limiter import LimiterStats
from dbt_rdcrm.report.events import ModelFinished, ModelStarted, RowDone, RunFinished, RunStarted
from dbt_rdcrm.report.reporter import HumanReporter
from dbt_rdcrm.report.results import ModelResult, Outcome, RowIssue, RunResult
from dbt_rdcrm.report.summary import failure_lines
from dbt_rdcrm.report.summary_table import print_table, summary_table
from dbt_rdcrm.report.wording import status_word


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
    assert "1 of 1 START crm_contacts (contacts): 2 rows to process, 0 unchanged" in text
    assert "1 of 1 WARN crm_contacts: 1 created, 1 rejected (1 request, 1.5s)" in text
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


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _run_with_failures() -> RunResult:
    orgs = ModelResult(
        "crm_organizations",
        "model.p.crm_organizations",
        "organizations",
        counts=Counter({Outcome.CREATED: 3}),
        requests=3,
        duration=2.0,
    )
    contacts = ModelResult(
        "crm_contacts",
        "model.p.crm_contacts",
        "contacts",
        counts=Counter({Outcome.UPDATED: 1, Outcome.FAILED: 3, Outcome.UNCHANGED: 1200}),
        requests=4,
        duration=71.5,
    )
    for key in ("11", "2", "1"):
        contacts.add_issue(
            RowIssue(Outcome.FAILED, "HTTP 422: email is invalid", key, None, 422, "email")
        )
    result = RunResult(
        "run", "sync", None, "2026-01-01T00:00:00+00:00", "http://x", 120, elapsed=75.0
    )
    result.models = [orgs, contacts]
    result.limiter = LimiterStats(requests=8, throttled=1, waited_s=3.25, latency_s=0.3)
    return result


def _final_output(width: int, terminal: bool = False) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=terminal, color_system=None)
    reporter = HumanReporter(console, clock=FakeClock())
    result = _run_with_failures()
    reporter(RunStarted(("crm_organizations", "crm_contacts"), dry_run=False, rate_limit=120))
    for m in result.models:
        reporter(ModelStarted(m.model, m.mode, m.rows_read, 0))
        reporter(ModelFinished(m))
    reporter(RunFinished(result))
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


TAIL = """\
Rate limit (120/minute): 8 requests, 1 answered 429, 3.2s waited

Rows that did not go through:
  crm_contacts key 1: failed [HTTP 422]: email is invalid
  crm_contacts key 2: failed [HTTP 422]: email is invalid
  crm_contacts key 11: failed [HTTP 422]: email is invalid"""


@pytest.mark.parametrize("width", [80, 120])
def test_plain_output_at_80_and_120_columns_is_exact(width):
    assert _final_output(width) == (
        """\
Syncing 2 models to RD Station CRM
1 of 2 START crm_organizations (organizations): 3 rows to process, 0 unchanged
1 of 2 OK crm_organizations: 3 created (3 requests, 2.0s)
2 of 2 START crm_contacts (contacts): 1204 rows to process, 0 unchanged
2 of 2 WARN crm_contacts: 1 updated, 1200 unchanged, 3 failed (4 requests, 1m12s)

dbt-rdcrm sync
 model             | status | created | updated | unchanged | not sent |  time
-------------------+--------+---------+---------+-----------+----------+-------
 crm_organizations | ok     |       3 |         |           |          |  2.0s
 crm_contacts      | warn   |         |       1 |      1200 |        3 | 1m12s
-------------------+--------+---------+---------+-----------+----------+-------
 total             |        |       3 |       1 |      1200 |        3 | 1m15s
"""
        + TAIL
    )


def test_terminal_summary_at_80_and_120_columns_is_exact():
    expected = """\
dbt-rdcrm sync

  model              status  created  updated  unchanged  not sent   time
 ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━
  crm_organizations  ok            3                                 2.0s
  crm_contacts       warn                   1       1200         3  1m12s
 ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━
  total                            3        1       1200         3  1m15s

"""
    for width in (80, 120):
        output = _final_output(width, terminal=True)
        assert output[output.index("dbt-rdcrm sync") :] == expected + TAIL


def test_wide_summary_has_every_column_even_on_a_narrow_console():
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=False, color_system=None)
    print_table(console, summary_table(_run_with_failures(), plain=True, wide=True), True)
    header = next(line for line in out.getvalue().splitlines() if "model" in line)
    names = [cell.strip() for cell in header.split("|")]
    assert names == [
        "model",
        "mode",
        "status",
        "read",
        "created",
        "updated",
        "recreated",
        "unchanged",
        "waiting",
        "rejected",
        "failed",
        "unresolved",
        "skipped",
        "requests",
        "time",
    ]


def test_off_a_terminal_a_progress_line_comes_at_least_every_30_seconds():
    out = io.StringIO()
    clock = FakeClock()
    reporter = HumanReporter(Console(file=out, width=120, force_terminal=False), clock=clock)
    reporter(RunStarted(("crm_contacts",), dry_run=False, rate_limit=120))
    reporter(ModelStarted("crm_contacts", "contacts", 100, 0))
    for _ in range(45):
        clock.now += 1.0
        reporter(RowDone("crm_contacts", Outcome.CREATED))
    lines = [line for line in out.getvalue().splitlines() if line.startswith("...")]
    assert lines == ["... crm_contacts: 30 of 100 rows, 60 rows/min, about 0:01:10 left"]
    clock.now += 40.0  # the engine is busy in one long query: the heartbeat's tick prints
    reporter.tick()
    assert out.getvalue().splitlines()[-1] == (
        "... crm_contacts: 45 of 100 rows, 32 rows/min, about 0:01:44 left"
    )


def test_on_a_terminal_progress_is_redrawn_at_most_ten_times_a_second():
    clock = FakeClock()
    console = Console(file=io.StringIO(), width=120, force_terminal=True, color_system=None)
    reporter = HumanReporter(console, clock=clock)
    reporter(RunStarted(("crm_contacts",), dry_run=True))
    reporter(ModelStarted("crm_contacts", "contacts", 5000, 0))
    reporter(RowDone("crm_contacts", Outcome.CREATED))  # the first row draws at once
    for _ in range(2999):
        reporter(RowDone("crm_contacts", Outcome.CREATED))
    (task,) = reporter.progress.tasks
    assert task.completed == 1
    clock.now += 0.1
    reporter(RowDone("crm_contacts", Outcome.CREATED))
    assert task.completed == 3001
    reporter.progress.stop()


def test_a_partial_success_with_failed_rows_is_not_ok():
    m = _run_with_failures().models[1]
    assert m.status == "success" and status_word(m) == "warn"


def test_json_issues_are_in_natural_key_order_with_the_field_and_no_repeated_status():
    issues = _run_with_failures().to_dict()["models"][1]["issues"]
    assert [(i["key"], i["field"], i["http_status"], i["reason"]) for i in issues] == [
        ("1", "email", 422, "email is invalid"),
        ("2", "email", 422, "email is invalid"),
        ("11", "email", 422, "email is invalid"),
    ]


def test_sync_json_carries_the_limiter_figures():
    document = _run_with_failures().to_dict()
    assert document["limiter"] == {
        "requests": 8,
        "throttled": 1,
        "waited_s": 3.25,
        "latency_s": 0.3,
        "overhead_s": None,
        "remembered": 0,
    }
    assert document["eta"] is None
