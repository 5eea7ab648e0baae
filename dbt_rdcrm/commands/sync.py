"""``dbt-rdcrm sync`` and ``dbt-rdcrm plan``: their flags, the reporters, the JSON error."""

from __future__ import annotations

import json
import sys

import click

from dbt_rdcrm import __version__, runner
from dbt_rdcrm.commands.console import guarded, make_console
from dbt_rdcrm.commands.options import (
    build_invocation,
    crm_options,
    log_flags,
    output_option,
    project_options,
)
from dbt_rdcrm.errors import RdcrmError, UsageError
from dbt_rdcrm.redaction import redact
from dbt_rdcrm.report.reporter import HEARTBEAT_SECONDS, HumanReporter, JsonReporter, fan_out
from dbt_rdcrm.report.results import SCHEMA_VERSION
from dbt_rdcrm.sync.engine import SyncOptions


def _run(kw, dry_run: bool, command: str) -> int:
    if not dry_run and (kw["show"] or kw["unmasked"]):
        raise UsageError("--show and --unmasked need a plan: use --dry-run or `dbt-rdcrm plan`")
    json_output = kw["output"] == "json"
    console = make_console(stderr=json_output)
    human = HumanReporter(console, wide=kw.pop("wide"), heartbeat=HEARTBEAT_SECONDS)
    reporters = [] if log_flags(kw).quiet else [human]
    json_reporter = JsonReporter(sys.stdout)
    if json_output:
        reporters.append(json_reporter)
    options = SyncOptions(
        dry_run=dry_run,
        full_refresh=kw["full_refresh"],
        retry_failed=kw["retry_failed"],
        max_requests=kw["max_requests"],
        show=kw["show"],
        allow_mass_change=kw["allow_mass_change"],
        concurrency=kw["concurrency"],
    )
    try:
        result = runner.sync(
            build_invocation(kw),
            options,
            fan_out(*reporters),
            command=command,
            unmasked=kw["unmasked"],
        )
    except RdcrmError as exc:
        if json_output and not json_reporter.printed:
            _print_json_error(command, exc)
        raise
    finally:
        human.close()
    return result.exit_code


def _print_json_error(command: str, exc: RdcrmError) -> None:
    """With --output json, a run that could not start still prints one JSON document."""
    problems = [{"path": p.path, "message": p.message} for p in getattr(exc, "problems", [])]
    document = {
        "schema_version": SCHEMA_VERSION,
        "dbt_rdcrm_version": __version__,
        "command": command,
        "success": False,
        "error": {"type": type(exc).__name__, "message": redact(str(exc)), "problems": problems},
    }
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def timeout_options(f):
    seconds = click.FloatRange(min=0, min_open=True, max=86400)
    for flag, variable, what in (
        ("--connect-timeout", "RDCRM_CONNECT_TIMEOUT", "to connect, per attempt (default 10)"),
        ("--read-timeout", "RDCRM_READ_TIMEOUT", "to wait for an answer, per attempt (default 30)"),
        (
            "--request-timeout",
            "RDCRM_REQUEST_TIMEOUT",
            "in all for one request, every attempt and backoff included (default 120)",
        ),
        (
            "--settle-timeout",
            "RDCRM_SETTLE_TIMEOUT",
            "a create left unanswered may still land in the CRM: it is looked up (before "
            "anything is sent again) only once it is this old (default 60)",
        ),
    ):
        f = click.option(
            flag, type=seconds, metavar="SECONDS", help=f"Seconds {what}; or ${variable}."
        )(f)
    return click.option(
        "--max-attempts",
        type=click.IntRange(min=1),
        help="Tries per request (default: $RDCRM_MAX_ATTEMPTS, vars.rdcrm.max_attempts, 5).",
    )(f)


def sync_flags(f):
    f = timeout_options(f)
    f = click.option(
        "--unmasked",
        is_flag=True,
        help="With --show: print payloads as they are, personal data included.",
    )(f)
    f = click.option(
        "--show",
        type=click.IntRange(min=0),
        default=0,
        metavar="N",
        help="Plan only: show the first N payloads per operation per model, personal data masked.",
    )(f)
    f = click.option(
        "--wide",
        is_flag=True,
        help="Summary with every column (mode, rows read, each outcome, 429s, time waited).",
    )(f)
    f = output_option("json", what="the run results")(f)
    f = click.option(
        "--max-requests",
        type=click.IntRange(min=0),
        help="Stop cleanly once this many CRM requests are spent; the next run continues.",
    )(f)
    f = click.option(
        "--concurrency",
        type=click.IntRange(min=1, max=16),
        help="CRM writes in flight at once (default: $RDCRM_CONCURRENCY, vars.rdcrm."
        "concurrency, 4); the rate limit still applies to all of them together.",
    )(f)
    f = click.option(
        "--allow-mass-change",
        is_flag=True,
        help="Let a run rewrite more than the mass-change guard allows (meta.rdcrm.mass_change).",
    )(f)
    f = click.option(
        "--retry-failed",
        is_flag=True,
        help="Resend rows the CRM refused before even if they did not change.",
    )(f)
    f = click.option(
        "--full-refresh",
        is_flag=True,
        help="Resend every row (updates for rows already in the CRM).",
    )(f)
    return crm_options(project_options(f))


@click.command(name="sync")
@sync_flags
@click.option("--dry-run", is_flag=True, help="Plan only: read rows and state, send nothing.")
@guarded
def sync_command(**kw) -> int:
    """Sync the declared models to RD Station CRM (after `dbt build`)."""
    dry_run = kw.pop("dry_run")
    return _run(kw, dry_run, "plan" if dry_run else "sync")


@click.command(name="plan")
@sync_flags
@guarded
def plan_command(**kw) -> int:
    """What `sync` would do: counts, requests and ETA, without touching the CRM."""
    return _run(kw, True, "plan")
