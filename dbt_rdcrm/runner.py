"""The composition root: manifest + warehouse + state + CRM client + reporter, for one command."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field

import requests

from dbt_rdcrm.auth import resolve_token_provider
from dbt_rdcrm.config.settings import ProjectPaths, Settings, resolve_settings
from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.crm.client import CrmClient
from dbt_rdcrm.crm.limiter import RateLimiter
from dbt_rdcrm.dbt.manifest import Catalog, load_manifest, specs_from_manifest, sync_order
from dbt_rdcrm.dbt.selection import select
from dbt_rdcrm.errors import RdcrmError, UsageError
from dbt_rdcrm.report.events import Emit, RateLimitWait
from dbt_rdcrm.report.masking import masking_emit
from dbt_rdcrm.report.results import RunResult, write_results
from dbt_rdcrm.report.tracker import RunTracker
from dbt_rdcrm.sync.engine import SyncOptions, resolve_columns, run_sync
from dbt_rdcrm.sync.state import StateConfig, StateStore


@dataclass(frozen=True)
class Selection:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class CrmOverrides:
    base_url: str | None = None
    rate_limit: int | None = None
    max_attempts: int | None = None
    timeouts: Mapping[str, float | None] = field(default_factory=dict)  # vars key -> flag


@dataclass
class Invocation:
    """Everything one command needs, resolved from flags and environment."""

    paths: ProjectPaths
    selection: Selection = Selection()
    overrides: CrmOverrides = CrmOverrides()
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


def load_catalog(paths: ProjectPaths) -> Catalog:
    return specs_from_manifest(load_manifest(paths.target_path / "manifest.json"))


def selected_specs(catalog: Catalog, selection: Selection) -> list[SyncSpec]:
    """The selected syncs in dependency order; selecting an unreadable model is an error."""
    chosen = select(catalog.specs, selection.include, selection.exclude)
    if selection.include:
        for name, why in sorted(catalog.unreadable.items()):
            if any(name == sel for sel_arg in selection.include for sel in sel_arg.split()):
                raise UsageError(why)
    return sync_order(chosen)


def connect(paths: ProjectPaths):
    from dbt_rdcrm.dbt.warehouse import Warehouse

    return Warehouse.connect(paths.project_dir, paths.profiles_dir, paths.target)


def state_store(warehouse, settings: Settings) -> StateStore:
    config = StateConfig(
        settings.state_database or warehouse.database,
        settings.state_schema,
        settings.id_map_table,
        settings.sync_log_table,
    )
    return StateStore(warehouse, config, scope=settings.base_url)


def sync(
    invocation: Invocation,
    options: SyncOptions,
    emit: Emit,
    *,
    command: str = "sync",
    session: requests.Session | None = None,
    clock: Callable[[], float] = time.monotonic,
    unmasked: bool = False,
) -> RunResult:
    """Run ``dbt-rdcrm sync`` (or its dry run) end to end and write the run results.

    ``clock`` times models and the run; ``unmasked`` keeps personal data in ``--show`` payloads.
    """
    tracker = RunTracker(masking_emit(emit, unmasked=unmasked), command, options.dry_run)
    try:
        result = _sync(invocation, options, tracker, command, session, clock)
        write_results(result, invocation.paths.target_path)
    except (Exception, KeyboardInterrupt) as exc:  # the run's results are written whatever ends it
        with suppress(RdcrmError):
            write_results(tracker.stopped(exc), invocation.paths.target_path)
        error = tracker.error_for(exc)
        if error is exc:
            raise
        raise error from exc
    if result.abort is not None:
        raise tracker.error_for(result.abort)
    return result


def _sync(
    invocation: Invocation,
    options: SyncOptions,
    tracker: RunTracker,
    command: str,
    session: requests.Session | None,
    clock: Callable[[], float],
) -> RunResult:
    emit = tracker
    catalog = load_catalog(invocation.paths)
    specs = selected_specs(catalog, invocation.selection)
    with connect(invocation.paths) as warehouse:
        settings = resolve_settings(
            warehouse.project_vars,
            invocation.env,
            warehouse.schema,
            base_url=invocation.overrides.base_url,
            rate_limit=invocation.overrides.rate_limit,
            max_attempts=invocation.overrides.max_attempts,
            timeouts=invocation.overrides.timeouts,
        )
        tracker.base_url, tracker.rate_limit = settings.base_url, settings.rate_limit
        columns = resolve_columns(specs, warehouse)
        store = state_store(warehouse, settings)
        client = None
        notices = [] if specs else ["nothing selected: no model with meta.rdcrm matched"]
        if options.dry_run:
            store.read_only_empty = not store.exists()
        else:
            session = session or requests.Session()
            tokens = resolve_token_provider(
                settings.base_url,
                invocation.env,
                session,
                warehouse=warehouse,
                state_database=store.config.database,
                state_schema=store.config.schema,
            )
            notices += [f"warning: {w}" for w in getattr(tokens, "warnings", ())]
            store.ensure()
            client = CrmClient(
                settings.base_url,
                tokens,
                RateLimiter(settings.rate_limit, on_wait=lambda s: emit(RateLimitWait(s))),
                session=session,
                max_attempts=settings.max_attempts,
                timeouts=settings.timeouts,
                clock=clock,
            )
            tracker.client = client
        result = run_sync(
            specs,
            columns,
            store,
            client,
            options,
            emit=emit,
            command=command,
            base_url=settings.base_url,
            rate_limit=settings.rate_limit,
            invocation_id=catalog.invocation_id,
            clock=clock,
            notices=notices,
        )
    return result
