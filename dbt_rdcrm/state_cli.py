"""``dbt-rdcrm state``: rebuild the id map from the CRM, settle one row, break a dead lease."""

from __future__ import annotations

import datetime as dt
import json
import sys

import click
from rich.markup import escape

from dbt_rdcrm import runner
from dbt_rdcrm.errors import UsageError
from dbt_rdcrm.report.events import ignore


@click.group(name="state")
def state_group() -> None:
    """Repair the sync state kept in the warehouse (id map and lease)."""


def _commands():
    from dbt_rdcrm import cli

    return cli


def _rebuild(**kw) -> int:
    from dbt_rdcrm.sync.maintenance import rebuild

    cli = _commands()
    invocation = cli._invocation(kw)
    console = cli.make_console(stderr=kw["output"] == "json")
    results = []
    with runner.open_session(invocation, command="state rebuild", write=True, emit=ignore) as s:
        if not s.specs:
            raise UsageError("nothing selected: no model with meta.rdcrm matched")
        for spec in s.specs:
            result = rebuild(spec, s.columns[spec.model], s.store, s.client)
            results.append(result)
            counts = ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in result.counts.items())
            console.print(
                escape(
                    f"{spec.model}: {counts or 'nothing to rebuild'} ({result.requests} requests)"
                ),
                soft_wrap=True,
            )
            if result.ambiguous:
                console.print(
                    escape(
                        f"  several CRM records fit keys {', '.join(result.ambiguous)}: settle "
                        f"each with `dbt-rdcrm state resolve {spec.model} KEY --crm-id ID`"
                    ),
                    soft_wrap=True,
                )
    if kw["output"] == "json":
        sys.stdout.write(json.dumps([r.to_dict() for r in results], indent=2) + "\n")
    return 1 if any(r.ambiguous for r in results) else 0


def _resolve(**kw) -> int:
    from dbt_rdcrm.sync.maintenance import settle

    cli = _commands()
    if (kw["crm_id"] is None) == (not kw["create"]):
        raise UsageError("give exactly one of --crm-id ID (adopt that record) or --create")
    kw = {**kw, "select": (kw["model"],), "exclude": ()}
    invocation = cli._invocation(kw)
    with runner.open_session(invocation, command="state resolve", write=True, emit=ignore) as s:
        spec = next((x for x in s.specs if x.model == kw["model"]), None)
        if spec is None:
            raise UsageError(f"{kw['model']!r} is not a declared rdcrm sync")
        message = settle(spec, kw["key"], s.store, s.client, crm_id=kw["crm_id"])
    cli.make_console().print(escape(message), soft_wrap=True)
    return 0


def _identity(**kw) -> int:
    from dbt_rdcrm.sync.maintenance import ensure_identity_field

    cli = _commands()
    invocation = cli._invocation(kw)
    messages = []
    with runner.open_session(invocation, command="state identity", write=True, emit=ignore) as s:
        for spec in s.specs:
            if spec.identity is not None:
                messages.append(ensure_identity_field(spec, s.client))
    console = cli.make_console()
    for message in messages or ["no selected model declares identity: nothing to create"]:
        console.print(escape(message), soft_wrap=True)
    return 0


def _unlock(**kw) -> int:
    from dbt_rdcrm.config.settings import resolve_settings

    cli = _commands()
    invocation = cli._invocation({**kw, "select": (), "exclude": ()})
    with runner.connect(invocation) as warehouse:
        settings = resolve_settings(
            warehouse.project_vars,
            invocation.env,
            warehouse.schema,
            base_url=invocation.overrides.base_url,
        )
        store = runner.state_store(warehouse, settings)
        if not store.exists():
            cli.make_console().print("no state tables: nothing to unlock")
            return 0
        store.ensure()
        tickets = store.live_tickets(dt.datetime(1970, 1, 1))
        for ticket in tickets:
            store.drop_ticket(ticket.run_id)
    holders = ", ".join(f"{t.run_id} ({t.holder})" for t in tickets) or "none"
    cli.make_console().print(escape(f"removed {len(tickets)} lease ticket(s): {holders}"))
    return 0


def attach(cli) -> None:
    """Build the commands with the main CLI's shared options and guard."""
    rebuild_cmd = cli.guarded(_rebuild)
    rebuild_cmd = cli.output_option("json", what="the rebuild counts")(rebuild_cmd)
    rebuild_cmd = cli.crm_options(cli.project_options(rebuild_cmd))
    state_group.command(
        name="rebuild",
        help="Rebuild the id map of the selected models from the CRM: each row gets the record "
        "its identity field, match: field or whole content proves is its own.",
    )(rebuild_cmd)

    resolve_cmd = cli.guarded(_resolve)
    resolve_cmd = click.option("--create", is_flag=True, help="Forget the pending create.")(
        resolve_cmd
    )
    resolve_cmd = click.option("--crm-id", help="Give the row this CRM record.")(resolve_cmd)
    resolve_cmd = click.argument("key")(resolve_cmd)
    resolve_cmd = click.argument("model")(resolve_cmd)
    resolve_cmd = cli.crm_options(cli.project_options(resolve_cmd, selection=False))
    state_group.command(
        name="resolve",
        help="Settle one row whose create has an unknown outcome: adopt a record (--crm-id) "
        "or let the next sync create it (--create).",
    )(resolve_cmd)

    identity_cmd = cli.guarded(_identity)
    identity_cmd = cli.crm_options(cli.project_options(identity_cmd))
    state_group.command(
        name="identity",
        help="Create the identity custom field (text, unique) of the selected models in the "
        "CRM account when it does not exist yet.",
    )(identity_cmd)

    unlock_cmd = cli.guarded(_unlock)
    unlock_cmd = click.option("--base-url", help="CRM v2 base URL of the state to unlock.")(
        unlock_cmd
    )
    unlock_cmd = cli.project_options(unlock_cmd, selection=False)
    state_group.command(
        name="unlock",
        help="Remove every lease ticket of this CRM scope (after a run that crashed).",
    )(unlock_cmd)
    cli.main.add_command(state_group, "state")
