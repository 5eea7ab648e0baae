"""The composition root: manifest + warehouse + state + CRM client + reporter, for one command."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import requests

from dbt_rdcrm.auth import resolve_token_provider
from dbt_rdcrm.config.settings import ProjectPaths, Settings, resolve_settings
from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.crm.client import CrmClient
from dbt_rdcrm.crm.limiter import RateLimiter
from dbt_rdcrm.dbt.manifest import Catalog, load_manifest, specs_from_manifest, sync_order
from dbt_rdcrm.dbt.selection import select
from dbt_rdcrm.errors import UsageError
from dbt_rdcrm.report.events import Emit, Event, RateLimitWait, RunFinished
from dbt_rdcrm.report.masking import masking_emit
from dbt_rdcrm.report.results import Pace, RunResult, previous_pace, write_results
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


def plan_pace(paths: ProjectPaths, concurrency: int = 1) -> Pace:
    """What a plan's ETA assumes: what the last sync measured, else a default latency."""
    return previous_pace(paths.target_path, concurrency) or Pace(concurrency)


def with_run_facts(emit: Emit, pace: Pace | None, limiters: list[RateLimiter]) -> Emit:
    """``emit``, with the finished run's ETA assumptions (plans) and limiter figures (syncs)
    filled in before any reporter renders it."""

    def wrapped(event: Event) -> None:
        if isinstance(event, RunFinished):
            if pace is not None:
                event.result.pace = pace
            if limiters:
                event.result.limiter = limiters[0].stats()
        emit(event)

    return wrapped


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
    emit = masking_emit(emit, unmasked=unmasked)
    pace = plan_pace(invocation.paths) if options.dry_run else None
    limiters: list[RateLimiter] = []
    emit = with_run_facts(emit, pace, limiters)
    catalog = load_catalog(invocation.paths)
    specs = selected_specs(catalog, invocation.selection)
    with connect(invocation.paths) as warehouse:
        settings = resolve_settings(
            warehouse.project_vars,
            invocation.env,
            warehouse.schema,
            base_url=invocation.overrides.base_url,
            rate_limit=invocation.overrides.rate_limit,
        )
        columns = resolve_columns(specs, warehouse)
        store = state_store(warehouse, settings)
        client = None
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
            store.ensure()
            limiter = RateLimiter(settings.rate_limit, on_wait=lambda s: emit(RateLimitWait(s)))
            limiters.append(limiter)
            client = CrmClient(
                settings.base_url,
                tokens,
                limiter,
                session=session,
                max_attempts=settings.max_attempts,
            )
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
            notices=[] if specs else ["nothing selected: no model with meta.rdcrm matched"],
        )
    write_results(result, invocation.paths.target_path)
    if result.abort is not None:
        raise result.abort
    return result
