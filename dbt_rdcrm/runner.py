"""The composition root of ``sync``, ``plan``, ``validate``, ``ls`` and ``exposures``.

Every command starts from :func:`dbt_rdcrm.loading.open_project`; commands that need the
warehouse and the CRM then open a session (:func:`dbt_rdcrm.session.open_session`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path

import requests

from dbt_rdcrm.auth import resolve_token_provider
from dbt_rdcrm.config.settings import ProjectPaths, read_project_file
from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.crm.client import CrmClient
from dbt_rdcrm.crm.limiter import RateLimiter
from dbt_rdcrm.errors import ConfigError, RdcrmError, SelectionError, UsageError
from dbt_rdcrm.invocation import Invocation
from dbt_rdcrm.loading import TargetMismatch, open_project, ordered, read_manifest, require_readable
from dbt_rdcrm.report.events import Emit, Event, RunFinished
from dbt_rdcrm.report.masking import masking_emit
from dbt_rdcrm.report.results import Pace, RunResult, previous_pace, write_results
from dbt_rdcrm.report.tracker import RunTracker
from dbt_rdcrm.session import check_target, connect, open_session, settings_for, state_store
from dbt_rdcrm.sync.engine import SyncOptions, run_sync
from dbt_rdcrm.sync.listing import cost_notice
from dbt_rdcrm.sync.run_meta import PlanPace


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
