"""The flags commands share, and the :class:`~dbt_rdcrm.invocation.Invocation` built
from them: dbt's log flags, the project and selection flags, the CRM flags, ``--output``."""

from __future__ import annotations

from dataclasses import dataclass

import click

from dbt_rdcrm.config.settings import TIMEOUT_SETTINGS, resolve_paths
from dbt_rdcrm.dbt.selection import Selection
from dbt_rdcrm.invocation import CrmOverrides, DbtFlags, Invocation


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


def log_flags(kw) -> Logging:
    """The log flags given to the command (``kw``) or before it, to the main group."""
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


def output_option(*choices: str, what: str, extra: str = ""):
    return click.option(
        "--output",
        type=click.Choice(["text", *choices]),
        default="text",
        help=f"json: print {what} as one JSON document on stdout (human output goes to "
        f"stderr).{extra}",
    )


def build_invocation(kw) -> Invocation:
    """What the runner needs of a command's flags; sets dbt's log level for this command."""
    from dbt_rdcrm.dbt.project import set_dbt_log_level

    set_dbt_log_level(log_flags(kw).dbt_level)  # for this command only, even in one process
    paths = resolve_paths(kw["project_dir"], kw["profiles_dir"], kw["target"], kw["target_path"])
    return Invocation(
        paths=paths,
        selection=Selection(
            tuple(kw.get("select") or ()), tuple(kw.get("exclude") or ()), kw.get("selector")
        ),
        overrides=CrmOverrides(
            kw.get("base_url"),
            kw.get("rate_limit"),
            kw.get("max_attempts"),
            {key: kw.get(key) for key, _, _ in TIMEOUT_SETTINGS},
        ),
        dbt=DbtFlags(kw.get("dbt_vars"), kw.get("profile"), bool(kw.get("parse"))),
    )
