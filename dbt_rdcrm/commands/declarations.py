"""The commands over the declared syncs that send nothing to the CRM: ``validate``, ``ls``
and ``exposures``."""

from __future__ import annotations

import json
import sys

import click

from dbt_rdcrm import runner
from dbt_rdcrm.commands.console import EXIT_FAILED, EXIT_OK, guarded, make_console
from dbt_rdcrm.commands.options import (
    build_invocation,
    crm_options,
    log_flags,
    output_option,
    project_options,
)
from dbt_rdcrm.errors import UsageError
from dbt_rdcrm.report.terminal import shown


@click.command(name="validate")
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
def validate_command(**kw) -> int:
    """Check the declared syncs without reading rows or calling the CRM (no credentials)."""
    from dbt_rdcrm import validate as checks

    if kw["crm"] and kw["no_warehouse"]:
        raise UsageError(
            "--crm needs the warehouse (the project's vars and CI login): drop --no-warehouse"
        )
    json_output = kw["output"] == "json"
    report = runner.validate(
        build_invocation(kw), use_warehouse=not kw["no_warehouse"], crm=kw["crm"]
    )
    console = make_console(stderr=json_output)
    lines = checks.human_lines(report)
    if log_flags(kw).quiet:
        lines = [line for line in lines if line.startswith("error")]
    for line in lines:
        console.print(shown(line), soft_wrap=True)
    if json_output:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    return report.exit_code


@click.command(name="ls")
@project_options
@output_option("json", "name", what="the selected syncs", extra=" name: one model name a line.")
@guarded
def ls_command(**kw) -> int:
    """List the declared syncs a selection picks; reads only the manifest."""
    from dbt_rdcrm.report import ls as listing

    specs, unreadable = runner.list_syncs(build_invocation(kw))
    if kw["output"] == "json":
        sys.stdout.write(json.dumps(listing.to_dict(specs, unreadable), indent=2) + "\n")
    elif kw["output"] == "name":
        sys.stdout.write("".join(spec.model + "\n" for spec in specs))
    else:
        console = make_console()
        for line in listing.human_lines(specs, unreadable):
            console.print(shown(line), soft_wrap=True)
    return EXIT_OK


@click.command(name="exposures")
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
def exposures_command(**kw) -> int:
    """Write a dbt exposure per declared sync, so `dbt docs` shows each sync in the DAG."""
    if kw["select"] or kw["exclude"] or kw["selector"]:
        raise UsageError("exposures covers every declared sync: it takes no selection")
    found = runner.exposures(build_invocation(kw), kw["exposures_path"], write=not kw["check"])
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
