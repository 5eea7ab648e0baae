"""The composition root: manifest + warehouse + state + CRM client + reporter, for one command."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace

import requests

from dbt_rdcrm.auth import resolve_token_provider
from dbt_rdcrm.config.settings import ProjectPaths, Settings, resolve_settings
from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.crm.client import CrmClient
from dbt_rdcrm.crm.limiter import RateLimiter
from dbt_rdcrm.dbt.columns import resolve_columns
from dbt_rdcrm.dbt.manifest import Catalog, load_manifest, specs_from_manifest, sync_order
from dbt_rdcrm.dbt.selection import select
from dbt_rdcrm.errors import RdcrmError, UsageError
from dbt_rdcrm.report.events import Emit, Event, RateLimitWait, RunFinished
from dbt_rdcrm.report.masking import masking_emit
from dbt_rdcrm.report.results import Pace, RunResult, previous_pace, write_results
from dbt_rdcrm.report.tracker import RunTracker
from dbt_rdcrm.sync.engine import SyncOptions, run_sync
from dbt_rdcrm.sync.lease import Lease, holder_description
from dbt_rdcrm.sync.listing import cost_notice
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
        settings.lease_table,
    )
    return StateStore(warehouse, config, scope=settings.base_url)


@dataclass
class Session:
    """An open warehouse, the state of one CRM scope and (for writing commands) a CRM client
    and the lease on that state."""

    specs: list[SyncSpec]
    columns: dict[str, dict[str, str]]  # per model: declared column -> the relation's name
    catalog: Catalog
    warehouse: object
    settings: Settings
    store: StateStore
    client: CrmClient | None
    run_id: str
    notices: list[str] = field(default_factory=list)


@contextmanager
def open_session(
    invocation: Invocation,
    *,
    command: str,
    write: bool,
    emit: Emit,
    session: requests.Session | None = None,
    run_id: str | None = None,
    concurrency: int | None = None,
    clock: Callable[[], float] = time.monotonic,
    tracker: RunTracker | None = None,
    limiters: list[RateLimiter] | None = None,
) -> Iterator[Session]:
    """Everything a command needs, released in order when it ends. ``write`` creates the state
    tables, holds the lease and builds the CRM client; otherwise nothing is written."""
    run_id = run_id or str(uuid.uuid4())
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
            concurrency=concurrency,
        )
        if tracker is not None:
            tracker.base_url, tracker.rate_limit = settings.base_url, settings.rate_limit
        columns = resolve_columns(specs, warehouse)
        store = state_store(warehouse, settings)
        if not write:
            if not store.exists():
                store.read_only_empty()
            yield Session(specs, columns, catalog, warehouse, settings, store, None, run_id)
            return
        session = session or requests.Session()
        tokens = resolve_token_provider(
            settings.base_url,
            invocation.env,
            session,
            warehouse=warehouse,
            state_database=store.config.database,
            state_schema=store.config.schema,
        )
        notices = [f"warning: {w}" for w in getattr(tokens, "warnings", ())]
        store.ensure()
        lease = Lease(store, run_id, holder_description(command))
        lease.acquire()
        store.on_flush = lease.heartbeat
        try:
            limiter = RateLimiter(settings.rate_limit, on_wait=lambda s: emit(RateLimitWait(s)))
            if limiters is not None:
                limiters.append(limiter)
            client = CrmClient(
                settings.base_url,
                tokens,
                limiter,
                session=session,
                max_attempts=settings.max_attempts,
                timeouts=settings.timeouts,
                clock=clock,
            )
            if tracker is not None:
                tracker.client = client
            yield Session(
                specs, columns, catalog, warehouse, settings, store, client, run_id, notices
            )
        finally:
            store.on_flush = None
            lease.release()


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
    """Run ``dbt-rdcrm sync`` (or its dry run) end to end and write the run results, whatever
    ends the run.

    ``clock`` times models and the run; ``unmasked`` keeps personal data in ``--show`` payloads.
    """
    pace = plan_pace(invocation.paths, options.concurrency or 4) if options.dry_run else None
    limiters: list[RateLimiter] = []
    emit = with_run_facts(masking_emit(emit, unmasked=unmasked), pace, limiters)
    tracker = RunTracker(emit, command, options.dry_run)
    try:
        result = _sync(invocation, options, tracker, command, session, clock, limiters)
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
    limiters: list[RateLimiter],
) -> RunResult:
    with open_session(
        invocation,
        command=command,
        write=not options.dry_run,
        emit=tracker,
        session=session,
        concurrency=options.concurrency,
        clock=clock,
        tracker=tracker,
        limiters=limiters,
    ) as s:
        options = replace(options, concurrency=s.settings.concurrency)
        return run_sync(
            s.specs,
            s.columns,
            s.store,
            s.client,
            options,
            emit=tracker,
            command=command,
            base_url=s.settings.base_url,
            rate_limit=s.settings.rate_limit,
            invocation_id=s.catalog.invocation_id,
            clock=clock,
            notices=_notices(s.specs)
            + s.notices
            + (cost_notice(s.specs, s.store.ids_per_type()) if options.dry_run else []),
            run_id=s.run_id,
        )


def _notices(specs: list[SyncSpec]) -> list[str]:
    if not specs:
        return ["nothing selected: no model with meta.rdcrm matched"]
    return [
        f"{spec.model} declares no key: each distinct row is created once and a changed row "
        "becomes a new record; declare key: to update records instead"
        for spec in specs
        if spec.keyless
    ]
