"""``dbt-rdcrm audit``: compare what the CRM holds with what the selected models would send."""

from __future__ import annotations

import json
import sys

import click
from rich.markup import escape

from dbt_rdcrm import session
from dbt_rdcrm.commands.console import guarded, make_console
from dbt_rdcrm.commands.options import build_invocation, crm_options, output_option, project_options
from dbt_rdcrm.invocation import Invocation
from dbt_rdcrm.report import audit as report
from dbt_rdcrm.report.audit import AuditResult
from dbt_rdcrm.report.events import ignore
from dbt_rdcrm.sync.audit import AuditOptions, run_audit


def audit(invocation: Invocation, options: AuditOptions) -> AuditResult:
    """Run the audit under the lease and write ``target/rdcrm_audit_results.json``."""
    with session.open_session(invocation, command="audit", write=True, emit=ignore) as s:
        result = run_audit(
            s.specs,
            s.columns,
            s.store,
            s.client,
            options,
            base_url=s.settings.base_url,
            run_id=s.run_id,
            invocation_id=s.catalog.invocation_id,
        )
    report.write_audit_results(result, invocation.paths.target_path)
    return result


@click.command(
    name="audit",
    help="Compare the CRM records of the selected models with what the tool would send now: "
    "in step, drifted (edited in the CRM), missing (deleted there) or foreign (key no longer "
    "in the model). Reads 200 records per request; exit 1 when anything is out of step.",
)
@crm_options
@project_options
@click.option(
    "--repair",
    is_flag=True,
    help="Mark drifted rows (rewritten) and missing rows (created again) for the next sync.",
)
@click.option(
    "--max-requests",
    type=click.IntRange(min=0),
    help="Read at most this many pages of CRM records; rows left unread are 'unchecked'.",
)
@output_option("json", what="the audit results")
@guarded
def audit_command(**kw) -> int:
    json_output = kw["output"] == "json"
    options = AuditOptions(repair=kw["repair"], max_requests=kw["max_requests"])
    result = audit(build_invocation(kw), options)
    console = make_console(stderr=json_output)
    console.print(report.summary_table(result, not console.is_terminal or console.no_color))
    for line in report.human_lines(result):
        console.print(escape(line), soft_wrap=True)
    if json_output:
        sys.stdout.write(json.dumps(report.to_dict(result), indent=2) + "\n")
    return result.exit_code
