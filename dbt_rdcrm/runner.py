"""The composition root of ``sync``, ``plan``, ``validate``, ``ls`` and ``exposures``.

Every command starts from :func:`open_project`: parse (if asked), read the manifest once into
its model, refuse a stale one, select with dbt's selector, choose one version per model, and
parse the declared syncs. The rule for a selected model that cannot be read lives here, once.
Commands that need the warehouse then refuse a target the manifest was not built for.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path

import requests
import yaml

from dbt_rdcrm.auth import resolve_token_provider
from dbt_rdcrm.config.catalog import Catalog, build_catalog, sync_order
from dbt_rdcrm.config.settings import ProjectPaths, Settings, read_project_file, resolve_settings
from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.crm.client import CrmClient
from dbt_rdcrm.crm.limiter import RateLimiter
from dbt_rdcrm.dbt.columns import resolve_columns
from dbt_rdcrm.dbt.manifest import Manifest, ModelNode
from dbt_rdcrm.dbt.manifest_reader import load_manifest, manifest_from_dict
from dbt_rdcrm.dbt.selection import Selection, select_models
from dbt_rdcrm.dbt.staleness import newer_project_files
from dbt_rdcrm.errors import ConfigError, RdcrmError, SelectionError, UsageError
from dbt_rdcrm.report.events import Emit, Event, RateLimitWait, RunFinished
from dbt_rdcrm.report.masking import masking_emit
from dbt_rdcrm.report.results import Pace, RunResult, previous_pace, write_results
from dbt_rdcrm.report.tracker import RunTracker
from dbt_rdcrm.sync.engine import SyncOptions, run_sync
from dbt_rdcrm.sync.lease import Lease, holder_description
from dbt_rdcrm.sync.listing import cost_notice
from dbt_rdcrm.sync.run_meta import LimiterMemory, PlanPace
from dbt_rdcrm.sync.state import StateConfig, StateStore

__all__ = ["CrmOverrides", "DbtFlags", "Invocation", "Selection", "open_project", "sync"]


@dataclass(frozen=True)
class CrmOverrides:
    base_url: str | None = None
    rate_limit: int | None = None
    max_attempts: int | None = None
    timeouts: Mapping[str, float | None] = field(default_factory=dict)  # vars key -> flag


@dataclass(frozen=True)
class DbtFlags:
    """dbt's flags that change how the project reads: ``--vars``, ``--profile``, ``--parse``."""

    vars: str | None = None
    profile: str | None = None
    parse: bool = False


@dataclass
class Invocation:
    """Everything one command needs, resolved from flags and environment."""

    paths: ProjectPaths
    selection: Selection = Selection()
    overrides: CrmOverrides = CrmOverrides()
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    dbt: DbtFlags = DbtFlags()


class StaleManifest(UsageError):
    """The manifest does not describe the project as it is on disk."""


class TargetMismatch(UsageError):
    """The manifest was built for another target than the one requested."""


@dataclass(frozen=True)
class Project:
    """A project as every command sees it: the manifest, the syncs, and what is selected."""

    paths: ProjectPaths
    manifest: Manifest
    catalog: Catalog
    selected: list[SyncSpec]  # in sync order (parents first)
    unreadable_selected: dict[str, str]  # selected models that cannot be read -> why
    notices: list[str]

    @property
    def manifest_path(self) -> Path:
        return self.paths.target_path / "manifest.json"


# --- from flags to a project ------------------------------------------------------------------


def parse_first(invocation: Invocation) -> None:
    """``--parse``: run dbt's parser in this process so the manifest matches the project."""
    from dbt_rdcrm.dbt import project as dbt_project

    paths = invocation.paths
    args = dbt_project.dbt_args(
        paths.project_dir, paths.profiles_dir, paths.target, invocation.dbt.vars,
        invocation.dbt.profile,
    )  # fmt: skip
    args += ["--target-path", str(paths.target_path)]
    try:
        dbt_project.parse_project(args)
    except RuntimeError as exc:
        raise UsageError(f"dbt parse failed: {exc}") from None


def cli_vars(invocation: Invocation) -> dict:
    """``--vars`` as dbt reads it (YAML or JSON); a bad value is a usage error."""
    if not invocation.dbt.vars:
        return {}
    try:
        value = yaml.safe_load(invocation.dbt.vars)
    except yaml.YAMLError as exc:
        raise UsageError(f"--vars is not valid YAML: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError(f"--vars must be a YAML dictionary, got {invocation.dbt.vars!r}")
    return value


def read_manifest(invocation: Invocation) -> Manifest:
    """The manifest model, refused when project files changed after it was written."""
    paths = invocation.paths
    if invocation.dbt.parse:
        parse_first(invocation)
    path = paths.target_path / "manifest.json"
    data = load_manifest(path)
    project_file = read_project_file(paths.project_dir)
    newer = newer_project_files(paths.project_dir, project_file, path)
    if newer:
        more = f" (and {len(newer) - 1} more)" if len(newer) > 1 else ""
        raise StaleManifest(
            f"{path} is older than {newer[0]}{more}: dbt has not parsed the project since it "
            "changed (or the last `dbt parse` failed); run `dbt parse` (or `dbt build`) first, "
            "or pass --parse"
        )
    return manifest_from_dict(data, project_file)


def choose_versions(manifest: Manifest, selected: set[str] | None) -> dict[str, ModelNode]:
    """The one version of each selected model to sync: the latest (as ``ref()`` resolves it)
    when the selection picks it, else the only version it picks. Never two of one model."""
    if selected is None:
        return {}
    chosen: dict[str, ModelNode] = {}
    for name, nodes in manifest.versions().items():
        picked = [n for n in nodes if n.unique_id in selected]
        latest = manifest.latest(name)
        if not picked:
            continue
        if latest in picked:
            chosen[name] = latest
        elif len(picked) == 1:
            chosen[name] = picked[0]
        else:
            versions = ", ".join(f"v{n.version}" for n in picked)
            raise SelectionError(
                f"the selection picks versions {versions} of {name} but not its latest "
                f"(v{latest.version}): one sync per model, name one version "
                f"(e.g. -s {name}.v{picked[-1].version})"
            )
    return chosen


def open_project(invocation: Invocation, manifest: Manifest | None = None) -> Project:
    """Read, select and parse. Config problems are kept in ``catalog.problems`` (the caller
    decides when to raise them); a bad selection or a stale manifest raises UsageError."""
    paths = invocation.paths
    manifest = manifest or read_manifest(invocation)
    selection = invocation.selection
    selected_ids = select_models(
        manifest, paths.target_path / "manifest.json", paths.project_dir, selection,
        cli_vars(invocation),
    )  # fmt: skip
    chosen = choose_versions(manifest, selected_ids)
    catalog = build_catalog(manifest, chosen)
    names = set(catalog.declared) if selected_ids is None else set(chosen) & catalog.declared
    unreadable = {n: why for n, why in catalog.unreadable.items() if n in names}
    # dbt never selects a disabled model: naming it is still a mistake worth a clear reason.
    named = {word.strip("+@") for word in selection.words()}
    unreadable.update({n: why for n, why in catalog.unreadable.items() if n in named})
    if selected_ids is None:
        unreadable = {}  # nothing was asked for by name; ls and validate list them apart
    specs = [spec for spec in catalog.specs if spec.model in names]
    notices = []
    if not specs:
        if selected_ids is None or not selection.given:
            notices.append("nothing selected: no model with meta.rdcrm matched")
        elif selected_ids:
            notices.append(
                f"nothing selected: the selection picks {len(selected_ids)} model(s), "
                "none of which declares meta.rdcrm"
            )
        else:
            notices.append("nothing selected: the selection matches no model (as in dbt ls)")
    return Project(paths, manifest, catalog, specs, unreadable, notices)


def ordered(project: Project) -> list[SyncSpec]:
    """The selected syncs, parents first; a link cycle is a config error."""
    return sync_order(project.selected)


def require_readable(project: Project) -> None:
    """Selecting a model that cannot be read (disabled, ephemeral) is an error."""
    for _, why in sorted(project.unreadable_selected.items()):
        raise SelectionError(why)


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
        lease = Lease(store, run_id, holder_description(command))
        lease.acquire()
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


def plan_pace(paths: ProjectPaths, concurrency: int = 1) -> Pace:
    """What a plan's ETA assumes: what the last sync measured, else a default latency."""
    return previous_pace(paths.target_path, concurrency) or Pace(concurrency)


def with_run_facts(emit: Emit, pace: PlanPace | None, limiters: list[RateLimiter]) -> Emit:
    """``emit``, with the finished run's ETA assumptions (plans) and limiter figures (syncs)
    filled in before any reporter renders it."""

    def wrapped(event: Event) -> None:
        if isinstance(event, RunFinished):
            if pace is not None:
                event.result.pace = pace.pace
            if limiters:
                event.result.limiter = limiters[0].stats()
        emit(event)

    return wrapped


# --- commands ---------------------------------------------------------------------------------


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
    pace = None
    if options.dry_run:  # the state may know a later sync's pace: see _sync
        paths = invocation.paths
        pace = PlanPace(plan_pace(paths, options.concurrency or 4), paths.target_path)
    limiters: list[RateLimiter] = []
    emit = with_run_facts(masking_emit(emit, unmasked=unmasked), pace, limiters)
    tracker = RunTracker(emit, command, options.dry_run)
    try:
        result = _sync(invocation, options, tracker, command, session, clock, limiters, pace)
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
    pace: PlanPace | None = None,
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
        if pace is not None:
            pace.consider(s.store)
        options = replace(
            options,
            concurrency=s.settings.concurrency,
            settle_seconds=s.settings.settle_timeout,
        )
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
            notices=s.notices
            + (cost_notice(s.specs, s.store.ids_per_type()) if options.dry_run else []),
            run_id=s.run_id,
        )


def list_syncs(invocation: Invocation) -> tuple[list[SyncSpec], dict[str, str]]:
    """``ls``: the selected syncs in sync order, and the declared syncs that cannot run
    (all of them with no selection; a selected one is an error). Reads only the manifest."""
    project = open_project(invocation)
    require_readable(project)
    if project.catalog.problems:
        raise ConfigError(list(project.catalog.problems))
    unreadable = {} if invocation.selection.given else dict(project.catalog.unreadable)
    return ordered(project), unreadable


def validate(
    invocation: Invocation, *, use_warehouse: bool = True, crm: bool = False, clock=time.monotonic
):
    """``validate``: every check of ``sync`` and more, without reading a row; with ``crm``, the
    account too (read-only: custom fields and constant ids the syncs need)."""
    from dbt_rdcrm import validate as checks

    started = clock()
    report = checks.Report()
    manifest = None
    try:
        manifest = read_manifest(invocation)
        project = open_project(invocation, manifest)
    except SelectionError as exc:
        report.error("selection", "--select", str(exc))
        project = None
    except UsageError as exc:
        report.error("manifest", str(invocation.paths.target_path / "manifest.json"), str(exc))
        project = None
    if project is not None:
        checks.check_project(report, project)
    warehouse_needed = use_warehouse and project is not None
    project_vars = None
    if warehouse_needed:
        from dbt_rdcrm.dbt.warehouse import WarehouseError

        try:
            with connect(invocation) as warehouse:
                report.warehouse, report.target = (
                    checks.WarehouseCheck.CHECKED,
                    warehouse.target_name,
                )
                project_vars = warehouse.project_vars
                check_target(project, report.specs, warehouse)
                checks.check_warehouse(report, report.specs, project.catalog.by_name(), warehouse)
                if crm:
                    _check_account(report, invocation, warehouse)
        except TargetMismatch as exc:
            report.error("target", "--target", str(exc))
        except WarehouseError as exc:
            report.warehouse = checks.WarehouseCheck.UNREACHABLE
            report.error(
                "warehouse",
                "profiles.yml",
                f"cannot check against the warehouse (use --no-warehouse to skip it): {exc}",
            )
    if project_vars is None:
        project_vars = checks.vars_from_project_file(invocation.paths.project_dir)
    checks.check_settings(report, project_vars, invocation.env, invocation.overrides)
    report.elapsed = clock() - started
    return report


def _check_account(report, invocation: Invocation, warehouse) -> None:
    """``validate --crm``: read what the account holds for the selected syncs; never writes."""
    from dbt_rdcrm.crm.client import CrmError
    from dbt_rdcrm.errors import AuthError
    from dbt_rdcrm.sync.account import account_problems

    settings = settings_for(invocation, warehouse)
    store = state_store(warehouse, settings)
    try:
        tokens = resolve_token_provider(
            settings.base_url,
            invocation.env,
            requests.Session(),
            warehouse=warehouse,
            state_database=store.config.database,
            state_schema=store.config.schema,
        )
        client = CrmClient(
            settings.base_url,
            tokens,
            RateLimiter(settings.rate_limit),
            max_attempts=settings.max_attempts,
            timeouts=settings.timeouts,
        )
        for problem in account_problems(report.specs, client):
            report.error(problem.code, problem.path, problem.message)
    except (AuthError, CrmError) as exc:
        report.error("crm", settings.base_url, f"cannot check the CRM account: {exc}")


def project_base_url(
    base_url: str | None,
    project_dir: str | None,
    profiles_dir: str | None,
    target: str | None,
    env: Mapping[str, str] | None = None,
) -> str:
    """``auth``'s base URL: as ``sync`` resolves it for the project in ``project_dir`` (or
    $DBT_PROJECT_DIR, or the working directory when it holds a dbt project)."""
    from dbt_rdcrm.config.settings import resolve_paths

    env = dict(os.environ) if env is None else env
    where = project_dir or env.get("DBT_PROJECT_DIR")
    if where is None and not Path("dbt_project.yml").is_file():
        return resolve_settings({}, env, "", base_url=base_url).base_url
    paths = resolve_paths(where, profiles_dir, target, None, env)
    return resolve_base_url(Invocation(paths, env=env), base_url)


@dataclass(frozen=True)
class ExposuresFile:
    path: Path
    count: int
    changed: bool  # the file on disk differs (or is missing) from what the syncs need


def exposures(invocation: Invocation, path: str | None, *, write: bool) -> ExposuresFile:
    """``exposures``: the exposures YAML of every declared sync that can run, written to
    ``path`` (default: ``<first model path>/rdcrm_exposures.yml``) only when it changed, so
    an unchanged file does not make the manifest look stale."""
    from dbt_rdcrm.report.exposures import exposures_yaml

    project = open_project(invocation)
    if project.catalog.problems:
        raise ConfigError(list(project.catalog.problems))
    project_file = read_project_file(invocation.paths.project_dir)
    folder = (project_file.get("model-paths") or ["models"])[0]
    target = Path(path) if path else Path(folder) / "rdcrm_exposures.yml"
    if not target.is_absolute():
        target = invocation.paths.project_dir / target
    specs = list(project.catalog.specs)
    text = exposures_yaml(specs, dict(project.catalog.nodes), project.manifest.project_name)
    current = target.read_text(encoding="utf-8") if target.is_file() else None
    changed = current != text
    if changed and write:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return ExposuresFile(target, len(specs), changed)


def resolve_base_url(invocation: Invocation, base_url: str | None) -> str:
    """The CRM base URL exactly as ``sync`` resolves it: the flag, RDCRM_BASE_URL, then
    ``vars.rdcrm.base_url`` of the project (rendered by dbt for the target), else the default.
    Outside a dbt project, the project's vars are simply absent."""
    overrides = CrmOverrides(base_url=base_url)
    paths = invocation.paths
    if base_url or invocation.env.get("RDCRM_BASE_URL"):
        project_vars: Mapping = {}
    elif not (paths.project_dir / "dbt_project.yml").is_file():
        project_vars = {}
    else:
        project_vars = _project_vars(invocation)
    return resolve_settings(project_vars, invocation.env, "", base_url=overrides.base_url).base_url


def _project_vars(invocation: Invocation) -> Mapping:
    from dbt_rdcrm.dbt import project as dbt_project
    from dbt_rdcrm.dbt.warehouse import WarehouseError

    paths = invocation.paths
    profiles_dir = dbt_project.find_profiles_dir(paths.project_dir, paths.profiles_dir)
    from click import ClickException
    from dbt.cli.exceptions import DbtUsageException
    from dbt_common.exceptions import DbtBaseException

    try:
        config = dbt_project.load_runtime_config(
            paths.project_dir, profiles_dir, paths.target, None, invocation.dbt.vars,
            invocation.dbt.profile,
        )  # fmt: skip
        return dbt_project.project_vars(config)
    except (DbtBaseException, DbtUsageException, ClickException) as exc:
        raise WarehouseError(
            f"cannot load the dbt project {paths.project_dir} to read vars.rdcrm: "
            f"{' '.join(str(exc).split())}"
        ) from None
