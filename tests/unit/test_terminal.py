"""What rows, YAML and the CRM say is shown with its control characters escaped."""

import io
from collections import Counter

from rich.console import Console

from dbt_rdcrm.report.events import Notice, RunFinished, RunStarted
from dbt_rdcrm.report.reporter import HumanReporter
from dbt_rdcrm.report.results import ModelResult, Outcome, RowIssue, RunResult
from dbt_rdcrm.report.terminal import printable, shown

HOSTILE_KEY = "C1\x1b[2K\rerror: all rows deleted\n"
HOSTILE_MESSAGE = "bad\x1b]0;pwned\x07 [red]x[/red] \u202eevil"


def test_printable_writes_controls_as_visible_escapes():
    assert printable("a\nb\x1b[31mc\td\x9b\u202e") == "a\\nb\\x1b[31mc\\td\\x9b\\u202e"
    assert printable("Maria José – ok") == "Maria José – ok"


def test_shown_also_escapes_markup():
    assert shown("[red]x[/red]") == "\\[red]x\\[/red]"


def test_the_reporter_never_prints_a_control_character_from_data():
    model = ModelResult(
        "crm_contacts",
        "model.p.crm_contacts",
        "contacts",
        counts=Counter({Outcome.FAILED: 1}),
        status="success",
    )
    model.add_issue(RowIssue(Outcome.FAILED, HOSTILE_MESSAGE, HOSTILE_KEY, http_status=422))
    result = RunResult("run", "sync", None, "t", "http://x", 120, models=[model])
    console = Console(file=io.StringIO(), width=200, force_terminal=False, color_system=None)
    reporter = HumanReporter(console)
    reporter(RunStarted(("crm_contacts",), dry_run=False))
    reporter(Notice("CRM said \x1b[1mhello\nerror: forged", model="crm_contacts"))
    reporter(RunFinished(result))
    output = console.file.getvalue()
    assert "\x1b" not in output and "\r" not in output and "\u202e" not in output
    assert not any(line.startswith("error:") for line in output.splitlines())
    assert "key C1\\x1b[2K\\rerror: all rows deleted\\n: failed [HTTP 422]" in output
    assert "[red]x[/red]" in output  # markup from data is shown, not applied
