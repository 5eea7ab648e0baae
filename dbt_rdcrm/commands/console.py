"""The edge of every command: the console it prints to, and :func:`guarded`, which turns each
error into one clear line on stderr and the command's exit code.

Exit codes: 0 ok, 1 some model failed, 2 usage/config/auth error (nothing was sent), 3 the run
stopped on an error after writes reached the CRM.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback

from rich.console import Console

from dbt_rdcrm.commands.options import log_flags
from dbt_rdcrm.errors import ConfigError, RdcrmError
from dbt_rdcrm.report.terminal import shown, shown_lines

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
            if os.environ.get("RDCRM_DEBUG") or log_flags(kwargs).debug:
                message += "\n" + shown_lines(traceback.format_exc())
            _stderr_console().print(message, soft_wrap=True)
            code = EXIT_USAGE
        sys.exit(code or EXIT_OK)

    return wrapper
