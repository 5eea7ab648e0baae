"""The ``dbt-rdcrm`` command line: the main group (``dbt_rdcrm.cli:main``) and its commands.

Each command parses its flags, calls the runner and maps the result to an exit code; they live
in :mod:`dbt_rdcrm.commands`. Exit codes: 0 ok, 1 some model failed, 2 usage/config/auth error
(nothing was sent), 3 the run stopped on an error after writes reached the CRM.
"""

from __future__ import annotations

import gc

import click

from dbt_rdcrm import __version__
from dbt_rdcrm.auth.cli import auth_group
from dbt_rdcrm.commands.audit import audit_command
from dbt_rdcrm.commands.declarations import exposures_command, ls_command, validate_command
from dbt_rdcrm.commands.options import log_options
from dbt_rdcrm.commands.state import state_group
from dbt_rdcrm.commands.sync import plan_command, sync_command
from dbt_rdcrm.emulator.cli import emulator_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dbt-rdcrm")
@log_options
def main(**_flags) -> None:
    """Sync dbt models into RD Station CRM (contacts, deals, organizations)."""


main.add_command(sync_command)
main.add_command(plan_command)
main.add_command(validate_command)
main.add_command(ls_command)
main.add_command(exposures_command)
main.add_command(state_group)
main.add_command(audit_command)
main.add_command(auth_group)
main.add_command(emulator_command)


def entry() -> None:
    """The console script: :func:`main`, then an exit without the interpreter's last garbage
    collection. A process that imported dbt holds a few hundred thousand objects, and the
    collection walks them all (about 0.35 s of every command) only for the process to end;
    files, connections and logs are closed by then (log handlers by ``logging``'s own exit)."""
    try:
        main()
    finally:
        gc.freeze()
