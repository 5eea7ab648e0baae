"""The ``dbt-rdcrm`` command line: parse flags, call the runner, map results to exit codes.

Exit codes: 0 ok, 1 some model failed, 2 usage/config/auth error (nothing was sent), 3 the run
stopped on an error after writes reached the CRM.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from dataclasses import dataclass

import click
from rich.console import Console

from dbt_rdcrm import __version__, runner
from dbt_rdcrm.config.settings import resolve_paths
from dbt_rdcrm.errors import ConfigError, RdcrmError, UsageError
from dbt_rdcrm.redaction import redact
from dbt_rdcrm.report.reporter import HEARTBEAT_SECONDS, HumanReporter, JsonReporter, fan_out
from dbt_rdcrm.report.results import SCHEMA_VERSION
from dbt_rdcrm.report.terminal import shown, shown_lines
from dbt_rdcrm.sync.engine import SyncOptions

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_FAILED_AFTER_SENDING = 0, 1, 2, 3


PLAIN_WIDTH = 200  # not a terminal (CI logs): wide enough that tables and lines never wrap


def make_console(stderr: bool = False) -> Console:
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal:
        console = Console(stderr=stderr, highlight=False, width=PLAIN_WIDTH)
    return console


def _stderr_console() -> Console:
    return make_console(stderr=True)


def _error_text(exc: RdcrmError) -> str:
    """The error as markup: a config error one problem a line, anything from data escaped."""
    if isinstance(exc, ConfigError):
        header = str(exc).split("\n", 1)[0]
        return "\n".join([shown(header), *(f"  - {shown(str(p))}" for p in exc.problems)])
    return shown(str(exc))


def guarded(command):
    """Turn every expected error into one clear line on stderr and its exit code."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            code = command(*args, **kwargs)
        except RdcrmError as exc:
            _stderr_console().print(f"[red]error:[/red] {_error_text(exc)}", soft_wrap=True)
            code = exc.exit_code
        except KeyboardInterrupt:
            _stderr_console().print("interrupted: state is committed up to the last checkpoint")
            code = 130
        except Exception as exc:  # the outer edge: anything else is a clean message, exit 2
            message = (
                "[red]internal error[/red] (a bug in dbt-rdcrm: please report it; RDCRM_DEBUG=1 "
                f"shows where): {type(exc).__name__}: {shown(str(exc)[:500])}"
            )
            if os.environ.get("RDCRM_DEBUG") or _logging(kwargs).debug:
                message += "\n" + shown_lines(traceback.format_exc())
            _stderr_console().print(message, soft_wrap=True)
            code = EXIT_USAGE
        sys.exit(code or EXIT_OK)

    return wrapper


class SelectorOption(click.Option):
    """A repeatable option that, like dbt's ``--select``, also takes the words that follow it
    up to the next option: ``-s a b --exclude c`` selects a and b."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, multiple=True, **kwargs)

    def add_to_parser(self, parser, ctx):
        super().add_to_parser(parser, ctx)
        for name in self.opts:
            option = parser._long_opt.get(name) or parser._short_opt.get(name)
            if option is None:
                continue
            process = option.process

            def greedy(value, state, process=process):
                words = [value]
                while state.rargs and not state.rargs[0].startswith("-"):
                    words.append(state.rargs.pop(0))
                process(" ".join(words), state)

            option.process = greedy


@dataclass(frozen=True)
class Logging:
    """dbt's log flags: ``--debug``, ``--log-level``, ``-q/--quiet`` (before or after the
    command, as in dbt)."""

    debug: bool = False
    log_level: str | None = None
    quiet: bool = False

    @property
    def dbt_level(self) -> str | None:
        return "debug" if self.debug else self.log_level


def _logging(kw) -> Logging:
    root = click.get_current_context(silent=True)
    outer = (root.find_root().params if root is not None else {}) or {}
    return Logging(
        debug=bool(kw.get("debug") or outer.get("debug")),
        log_level=kw.get("log_level") or outer.get("log_level"),
        quiet=bool(kw.get("quiet") or outer.get("quiet")),
    )


def log_options(f):
    options = [
        click.option(
            "--debug",
            "-d",
            is_flag=True,
            default=None,
            help="Show dbt's debug events (SQL included) on stderr, and tracebacks.",
        ),
        click.option(
            "--log-level",
            type=click.Choice(["debug", "info", "warn", "error", "none"]),
            help="Show dbt's own events from this level on stderr (default: none).",
        ),
        click.option(
            "-q",
            "--quiet",
            is_flag=True,
            default=None,
            help="Print errors only (JSON output and ls listings still print).",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def project_options(f, selection: bool = True):
    options = [
        click.option(
            "--project-dir",
            envvar=None,
            help="dbt project directory (default: $DBT_PROJECT_DIR or the current directory).",
        ),
        click.option(
            "--profiles-dir",
            help="Directory holding profiles.yml (default: "
            "$DBT_PROFILES_DIR, the project directory, then ~/.dbt).",
        ),
        click.option("-t", "--target", help="dbt target from profiles.yml."),
        click.option(
            "--target-path",
            help="dbt artifacts directory (default: $DBT_TARGET_PATH "
            "or the project's target-path, 'target').",
        ),
        click.option(
            "--vars",
            "dbt_vars",
            help="Supply variables to the project, as dbt's --vars (YAML): "
            "--vars '{my_var: value}'.",
        ),
        click.option("--profile", help="The profile of profiles.yml to use (as in dbt)."),
    ]
    if selection:  # a command about one model or the whole state takes no selection
        options += [
            click.option(
                "-s",
                "--select",
                "select",
                cls=SelectorOption,
                help="Models to sync: names, wildcards, tag:, path:, fqn, mode: (several allowed, "
                "as in dbt: -s a b).",
            ),
            click.option(
                "--exclude", cls=SelectorOption, help="Models to leave out (same syntax)."
            ),
            click.option("--selector", help="A selector defined in the project's selectors.yml."),
            click.option(
                "--parse",
                is_flag=True,
                help="Run dbt's parser first (in this process) so the manifest matches the project.",
            ),
        ]
    for option in reversed(options):
        f = option(f)
    return log_options(f)


def crm_options(f):
    f = click.option(
        "--rate-limit",
        type=click.IntRange(min=0),
        help="CRM requests per minute (default: $RDCRM_RATE_LIMIT, vars.rdcrm, 120; 0 = no limit).",
    )(f)
    return click.option(
        "--base-url",
        help="CRM v2 base URL (default: $RDCRM_BASE_URL, "
        "vars.rdcrm.base_url, https://api.rd.services/crm/v2).",
    )(f)


def _invocation(kw) -> runner.Invocation:
    from dbt_rdcrm.dbt.project import set_dbt_log_level

    set_dbt_log_level(_logging(kw).dbt_level)  # for this command only, even in one process
    paths = resolve_paths(kw["project_dir"], kw["profiles_dir"], kw["target"], kw["target_path"])
    return runner.Invocation(
        paths=paths,
        selection=runner.Selection(
            tuple(kw.get("select") or ()), tuple(kw.get("exclude") or ()), kw.get("selector")
        ),
        overrides=runner.CrmOverrides(
            kw.get("base_url"),
            kw.get("rate_limit"),
            kw.get("max_attempts"),
            {key: kw.get(key) for key in ("connect_timeout", "read_timeout", "request_timeout")},
        ),
        dbt=runner.DbtFlags(kw.get("dbt_vars"), kw.get("profile"), bool(kw.get("parse"))),
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dbt-rdcrm")
@log_options
def main(**_flags) -> None:
    """Sync dbt models into RD Station CRM (contacts, deals, organizations)."""


def _run(kw, dry_run: bool, command: str) -> int:
    if not dry_run and (kw["show"] or kw["unmasked"]):
        raise UsageError("--show and --unmasked need a plan: use --dry-run or `dbt-rdcrm plan`")
    json_output = kw["output"] == "json"
    console = make_console(stderr=json_output)
    human = HumanReporter(console, wide=kw.pop("wide"), heartbeat=HEARTBEAT_SECONDS)
    reporters = [] if _logging(kw).quiet else [human]
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
            _invocation(kw),
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


def output_option(*choices: str, what: str, extra: str = ""):
    return click.option(
        "--output",
        type=click.Choice(["text", *choices]),
        default="text",
        help=f"json: print {what} as one JSON document on stdout (human output goes to "
        f"stderr).{extra}",
    )


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


@main.command()
@sync_flags
@click.option("--dry-run", is_flag=True, help="Plan only: read rows and state, send nothing.")
@guarded
def sync(**kw) -> int:
    """Sync the declared models to RD Station CRM (after `dbt build`)."""
    dry_run = kw.pop("dry_run")
    return _run(kw, dry_run, "plan" if dry_run else "sync")


@main.command()
@sync_flags
@guarded
def plan(**kw) -> int:
    """What `sync` would do: counts, requests and ETA, without touching the CRM."""
    return _run(kw, True, "plan")


@main.command()
@project_options
@crm_options
@output_option("json", what="the report")
@click.option(
    "--no-warehouse",
    is_flag=True,
    help="Check the manifest only: do not connect to the warehouse (no column checks).",
)
@click.option(
    "--crm",
    is_flag=True,
    help="Also check the CRM account, read-only: the custom fields the syncs map and the ids "
    "they set as constants (needs credentials and the warehouse).",
)
@guarded
def validate(**kw) -> int:
    """Check the declared syncs without reading rows or calling the CRM (no credentials)."""
    from dbt_rdcrm import validate as checks

    if kw["crm"] and kw["no_warehouse"]:
        raise UsageError(
            "--crm needs the warehouse (the project's vars and CI login): drop --no-warehouse"
        )
    json_output = kw["output"] == "json"
    report = runner.validate(_invocation(kw), use_warehouse=not kw["no_warehouse"], crm=kw["crm"])
    console = make_console(stderr=json_output)
    lines = checks.human_lines(report)
    if _logging(kw).quiet:
        lines = [line for line in lines if line.startswith("error")]
    for line in lines:
        console.print(shown(line), soft_wrap=True)
    if json_output:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    return report.exit_code


@main.command(name="ls")
@project_options
@output_option("json", "name", what="the selected syncs", extra=" name: one model name a line.")
@guarded
def list_syncs(**kw) -> int:
    """List the declared syncs a selection picks; reads only the manifest."""
    from dbt_rdcrm.report import ls as listing

    specs, unreadable = runner.list_syncs(_invocation(kw))
    if kw["output"] == "json":
        sys.stdout.write(json.dumps(listing.to_dict(specs, unreadable), indent=2) + "\n")
    elif kw["output"] == "name":
        sys.stdout.write("".join(spec.model + "\n" for spec in specs))
    else:
        console = make_console()
        for line in listing.human_lines(specs, unreadable):
            console.print(shown(line), soft_wrap=True)
    return EXIT_OK


@main.command()
@project_options
@click.option(
    "--path",
    "exposures_path",
    help="The YAML file to write (default: <first model path>/rdcrm_exposures.yml).",
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 when the file is out of step with the declared syncs (for CI).",
)
@guarded
def exposures(**kw) -> int:
    """Write a dbt exposure per declared sync, so `dbt docs` shows each sync in the DAG."""
    if kw["select"] or kw["exclude"] or kw["selector"]:
        raise UsageError("exposures covers every declared sync: it takes no selection")
    found = runner.exposures(_invocation(kw), kw["exposures_path"], write=not kw["check"])
    console = make_console()
    if kw["check"]:
        if found.changed:
            console.print(
                f"{found.path} is out of step with the declared syncs: run `dbt-rdcrm exposures`"
            )
            return EXIT_FAILED
        console.print(f"{found.path} is up to date ({found.count} exposures)")
        return EXIT_OK
    if not found.changed:
        console.print(f"{found.path} is up to date ({found.count} exposures)")
        return EXIT_OK
    console.print(
        f"wrote {found.count} exposures to {found.path}; run `dbt parse` (or `dbt build`) "
        "so the manifest and `dbt docs` include them"
    )
    return EXIT_OK


def _attach_subcommands() -> None:
    from dbt_rdcrm import audit_cli, state_cli
    from dbt_rdcrm.auth.cli import auth_group
    from dbt_rdcrm.emulator.cli import emulator_command

    main.add_command(emulator_command, "emulator")
    main.add_command(auth_group, "auth")
    state_cli.attach(sys.modules[__name__])
    audit_cli.attach(sys.modules[__name__])


_attach_subcommands()
