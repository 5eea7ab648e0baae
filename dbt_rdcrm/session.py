"""The warehouse and the CRM for a command that reads or writes state: connect, refuse a target
the manifest was not built for, resolve the settings, hold the lease, restore the limiter's
memory and open the CRM client (:func:`open_session`)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

import requests

from dbt_rdcrm.auth import resolve_token_provider
from dbt_rdcrm.config.catalog import Catalog
from dbt_rdcrm.config.settings import Settings, resolve_settings
from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.crm.client import CrmClient
from dbt_rdcrm.crm.limiter import RateLimiter
from dbt_rdcrm.dbt.columns import resolve_columns
from dbt_rdcrm.errors import ConfigError
from dbt_rdcrm.invocation import Invocation
from dbt_rdcrm.loading import Project, TargetMismatch, open_project, ordered, require_readable
from dbt_rdcrm.report.events import Emit, RateLimitWait
from dbt_rdcrm.report.tracker import RunTracker
from dbt_rdcrm.sync.lease import Lease, holder_description
from dbt_rdcrm.sync.run_meta import LimiterMemory
from dbt_rdcrm.sync.state import StateConfig, StateStore

# --- the warehouse ----------------------------------------------------------------------------


def connect(invocation: Invocation):
    from dbt_rdcrm.dbt.warehouse import Warehouse

    paths = invocation.paths
    return Warehouse.connect(
        paths.project_dir,
        paths.profiles_dir,
        paths.target,
        dbt_vars=invocation.dbt.vars,
        profile=invocation.dbt.profile,
    )


def check_target(project: Project, specs: list[SyncSpec], warehouse) -> None:
    """The relations the manifest names must be the ones this target resolves: a manifest
    parsed for another target (other schema or database) is refused, never mixed."""
    if not specs:
        return
    resolved = warehouse.relation_names(project.manifest_path, [s.unique_id for s in specs])
    for spec in specs:
        here = resolved.get(spec.unique_id)
        if here is not None and here != spec.relation.rendered:
            raise TargetMismatch(
                f"{project.manifest_path} was built for another target: {spec.model} is "
                f"{spec.relation.rendered} there, but {here} on target "
                f"'{warehouse.target_name}'; run `dbt parse -t {warehouse.target_name}` "
                "(or pass --parse) first"
            )


def state_store(warehouse, settings: Settings) -> StateStore:
    config = StateConfig(
        settings.state_database or warehouse.database,
        settings.state_schema,
        settings.id_map_table,
        settings.sync_log_table,
        settings.lease_table,
    )
    return StateStore(warehouse, config, scope=settings.base_url)


def settings_for(invocation: Invocation, warehouse, concurrency: int | None = None) -> Settings:
    return resolve_settings(
        warehouse.project_vars,
        invocation.env,
        warehouse.schema,
        base_url=invocation.overrides.base_url,
        rate_limit=invocation.overrides.rate_limit,
        max_attempts=invocation.overrides.max_attempts,
        timeouts=invocation.overrides.timeouts,
        concurrency=concurrency,
    )


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
    """Everything a command that reads rows needs, released in order when it ends. Every config
    problem (of every declared sync, and the selected syncs' columns when the warehouse answers)
    is raised at once, before any request. ``write`` creates the state tables, holds the lease
    and builds the CRM client; otherwise nothing is written."""
    from dbt_rdcrm.dbt.warehouse import WarehouseError

    run_id = run_id or str(uuid.uuid4())
    project = open_project(invocation)
    require_readable(project)
    problems = list(project.catalog.problems)
    specs = ordered(project) if not problems else project.selected
    try:
        warehouse = connect(invocation)
    except WarehouseError:
        if problems:
            raise ConfigError(problems) from None
        raise
    with warehouse:
        check_target(project, specs, warehouse)
        settings = settings_for(invocation, warehouse, concurrency)
        if tracker is not None:
            tracker.base_url, tracker.rate_limit = settings.base_url, settings.rate_limit
        columns: dict[str, dict[str, str]] = {}
        try:
            columns = resolve_columns(specs, warehouse)
        except ConfigError as exc:
            problems += exc.problems
        if problems:
            raise ConfigError(problems)
        store = state_store(warehouse, settings)
        notices = [*project.notices, *_keyless_notices(specs)]
        if not write:
            if not store.exists():
                store.read_only_empty()
            else:
                store.read_only_current()
            yield Session(
                specs, columns, project.catalog, warehouse, settings, store, None, run_id, notices
            )
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
        notices += [f"warning: {w}" for w in getattr(tokens, "warnings", ())]
        store.ensure()
        lease = Lease(store, run_id, holder_description(command), settle=settings.lease_settle)
        lease.acquire(meanwhile=[partial(store.scan_keys, s, columns[s.model]) for s in specs])
        lease.keep()
        store.on_flush = lease.heartbeat
        memory = None
        try:
            limiter = RateLimiter(settings.rate_limit, on_wait=lambda s: emit(RateLimitWait(s)))
            if limiters is not None:
                limiters.append(limiter)
            # the account's last minute of requests and the pace, kept in the state
            memory = LimiterMemory.open(store, limiter, run_id, pace=command == "sync")
            store.on_flush = memory.after(lease.heartbeat)
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
                specs, columns, project.catalog, warehouse, settings, store, client, run_id, notices
            )
        finally:
            if memory is not None:
                memory.close()
            store.on_flush = None
            lease.release()


def _keyless_notices(specs: list[SyncSpec]) -> list[str]:
    return [
        f"{spec.model} declares no key: each distinct row is created once and a changed row "
        "becomes a new record; declare key: to update records instead"
        for spec in specs
        if spec.keyless
    ]
