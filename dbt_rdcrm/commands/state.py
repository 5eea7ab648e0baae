"""``dbt-rdcrm state``: rebuild the id map from the CRM, settle one row, break a dead lease."""

from __future__ import annotations

import datetime as dt
import json
import sys
from functools import partial

import click
from rich.markup import escape

from dbt_rdcrm import session
from dbt_rdcrm.commands.console import guarded, make_console
from dbt_rdcrm.commands.options import build_invocation, crm_options, output_option, project_options
from dbt_rdcrm.errors import UsageError
from dbt_rdcrm.report.events import ignore


@click.group(name="state")
def state_group() -> None:
    """Repair the sync state kept in the warehouse (id map and lease)."""


@state_group.command(
    name="rebuild",
    help="Rebuild the id map of the selected models from the CRM: each row gets the record "
    "its identity field, match: field or whole content proves is its own.",
)
@crm_options
@project_options
@output_option("json", what="the rebuild counts")
@guarded
def _rebuild(**kw) -> int:
    from dbt_rdcrm.sync.maintenance import rebuild

    invocation = build_invocation(kw)
    console = make_console(stderr=kw["output"] == "json")
    results = []
    with session.open_session(invocation, command="state rebuild", write=True, emit=ignore) as s:
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


@state_group.command(
    name="resolve",
    help="Settle one row whose create has an unknown outcome: adopt a record (--crm-id) "
    "or let the next sync create it (--create).",
)
@crm_options
@partial(project_options, selection=False)
@click.argument("model")
@click.argument("key")
@click.option("--crm-id", help="Give the row this CRM record.")
@click.option("--create", is_flag=True, help="Forget the pending create.")
@guarded
def _resolve(**kw) -> int:
    from dbt_rdcrm.sync.maintenance import settle

    if (kw["crm_id"] is None) == (not kw["create"]):
        raise UsageError("give exactly one of --crm-id ID (adopt that record) or --create")
    kw = {**kw, "select": (kw["model"],), "exclude": ()}
    invocation = build_invocation(kw)
    with session.open_session(invocation, command="state resolve", write=True, emit=ignore) as s:
        spec = next((x for x in s.specs if x.model == kw["model"]), None)
        if spec is None:
            raise UsageError(f"{kw['model']!r} is not a declared rdcrm sync")
        message = settle(spec, kw["key"], s.store, s.client, crm_id=kw["crm_id"])
    make_console().print(escape(message), soft_wrap=True)
    return 0


@state_group.command(
    name="identity",
    help="Create the identity custom field (text, unique) of the selected models in the "
    "CRM account when it does not exist yet.",
)
@crm_options
@project_options
@guarded
def _identity(**kw) -> int:
    from dbt_rdcrm.sync.maintenance import ensure_identity_field

    invocation = build_invocation(kw)
    messages = []
    with session.open_session(invocation, command="state identity", write=True, emit=ignore) as s:
        for spec in s.specs:
            if spec.identity is not None:
                messages.append(ensure_identity_field(spec, s.client))
    console = make_console()
    for message in messages or ["no selected model declares identity: nothing to create"]:
        console.print(escape(message), soft_wrap=True)
    return 0


@state_group.command(
    name="unlock",
    help="Remove every lease ticket of this CRM scope (after a run that crashed).",
)
@partial(project_options, selection=False)
@click.option("--base-url", help="CRM v2 base URL of the state to unlock.")
@guarded
def _unlock(**kw) -> int:
    from dbt_rdcrm.config.settings import resolve_settings

    invocation = build_invocation({**kw, "select": (), "exclude": ()})
    with session.connect(invocation) as warehouse:
        settings = resolve_settings(
            warehouse.project_vars,
            invocation.env,
            warehouse.schema,
            base_url=invocation.overrides.base_url,
        )
        store = session.state_store(warehouse, settings)
        if not store.exists():
            make_console().print("no state tables: nothing to unlock")
            return 0
        store.ensure()
        tickets = store.live_tickets(dt.datetime(1970, 1, 1))
        for ticket in tickets:
            store.drop_ticket(ticket.run_id)
    holders = ", ".join(f"{t.run_id} ({t.holder})" for t in tickets) or "none"
    make_console().print(escape(f"removed {len(tickets)} lease ticket(s): {holders}"))
    return 0
