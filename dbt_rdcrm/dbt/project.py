"""Load a dbt project, its profile and its adapter the way dbt's own commands do.

Used only by :mod:`dbt_rdcrm.dbt.warehouse`; together they are the only modules importing dbt.
dbt keeps process-global state (flags, invocation context, event manager, adapter registry)
and every function here sets or reads it, so one project is loaded per process at a time.
dbt is imported inside the functions: importing this module costs nothing.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dbt.adapters.base import BaseAdapter
    from dbt.config.runtime import RuntimeConfig


def find_profiles_dir(project_dir: Path, profiles_dir: Path | None) -> Path:
    """The directory whose profiles.yml to read.

    First match wins: the explicit argument, ``DBT_PROFILES_DIR``, the project directory, the
    current directory (each of the last two only if it holds a profiles.yml), ``~/.dbt``.
    """
    if profiles_dir is not None:
        return Path(profiles_dir).expanduser().resolve()
    if os.environ.get("DBT_PROFILES_DIR"):
        return Path(os.environ["DBT_PROFILES_DIR"]).expanduser().resolve()
    for candidate in (project_dir, Path.cwd()):
        if (candidate / "profiles.yml").is_file():
            return candidate.resolve()
    return Path.home() / ".dbt"


def dbt_args(
    project_dir: Path,
    profiles_dir: Path | None,
    target: str | None,
    dbt_vars: str | None = None,
    profile: str | None = None,
) -> list[str]:
    """The project flags as a dbt command line would carry them."""
    args = ["--project-dir", str(project_dir)]
    if profiles_dir is not None:
        args += ["--profiles-dir", str(profiles_dir)]
    for flag, value in (("--target", target), ("--vars", dbt_vars), ("--profile", profile)):
        if value is not None:
            args += [flag, value]
    return args


def load_runtime_config(
    project_dir: Path,
    profiles_dir: Path,
    target: str | None,
    threads: int | None,
    dbt_vars: str | None = None,
    profile: str | None = None,
) -> RuntimeConfig:
    """Parse flags like ``dbt run --project-dir ... --profiles-dir ... [--target ...]
    [--vars ...] [--profile ...]`` and load the profile and project, with ``env_var()``
    reading this process's environment.

    Also silences dbt's event logging: no output on stdout and no ``logs/dbt.log``
    (:func:`show_dbt_events` turns it back on, on stderr).
    Raises dbt's exceptions (``DbtBaseException``, click's ``ClickException``) unchanged.
    """
    from dbt.cli.flags import Flags, args_to_context
    from dbt.config.runtime import RuntimeConfig, load_profile, load_project
    from dbt.flags import set_flags
    from dbt_common.context import get_invocation_context, set_invocation_context

    set_invocation_context(dict(os.environ))
    args = ["run", *dbt_args(project_dir, profiles_dir, target, dbt_vars, profile)]
    flags = Flags(args_to_context(args))
    set_flags(flags)
    show_dbt_events()

    profile = load_profile(str(project_dir), flags.VARS, flags.PROFILE, flags.TARGET, threads)
    get_invocation_context().uses_adapter(profile.credentials.type)
    # dbt >= 1.9 validates the project only when asked; 1.8 always does and has no flag.
    extra = {"validate": True} if "validate" in inspect.signature(load_project).parameters else {}
    project = load_project(str(project_dir), flags.VERSION_CHECK, profile, flags.VARS, **extra)
    return RuntimeConfig.from_parts(project, profile, flags)


def register_adapter(config: RuntimeConfig) -> BaseAdapter:
    """Register the target's adapter, replacing any adapter registered before in this process,
    and give it dbt's built-in and adapter macros (``create_schema``, ``hash``, ...).

    The root project's own macros are not loaded: that would require its packages to be
    installed, and nothing here needs them.
    """
    from dbt.adapters.factory import get_adapter, reset_adapters
    from dbt.adapters.factory import register_adapter as dbt_register_adapter
    from dbt.context.providers import generate_runtime_macro_context
    from dbt.mp_context import get_mp_context
    from dbt.parser.manifest import ManifestLoader

    reset_adapters()
    dbt_register_adapter(config, get_mp_context())
    adapter = get_adapter(config)
    macros = built_macros(config) or ManifestLoader.load_macros(
        config, adapter.connections.set_query_header, base_macros_only=True
    )
    adapter.set_macro_resolver(macros)
    adapter.set_macro_context_generator(generate_runtime_macro_context)
    return adapter


def built_macros(config: RuntimeConfig):
    """dbt's and the adapter's macros as ``dbt build``/``parse`` left them in the project's
    ``manifest.json`` (parsing them again costs ~0.7 s of CPU), or None when that manifest is
    missing or was written by another dbt version or adapter."""
    import json

    from dbt.contracts.graph.manifest import MacroManifest
    from dbt.contracts.graph.nodes import Macro
    from dbt.version import __version__ as dbt_version

    path = Path(config.project_root) / config.target_path / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        metadata = manifest["metadata"]
        if (metadata.get("dbt_version"), metadata.get("adapter_type")) != (
            dbt_version,
            config.credentials.type,
        ):
            return None
        packages = set(config.load_dependencies(base_only=True))
        macros = {
            unique_id: Macro.from_dict(macro)
            for unique_id, macro in manifest["macros"].items()
            if macro.get("package_name") in packages
        }
    except (OSError, ValueError, LookupError, TypeError, AttributeError):
        return None
    return MacroManifest(macros) if macros else None


def project_vars(config: RuntimeConfig) -> dict[str, Any]:
    """What ``var(name)`` returns in the root project, for every name in its ``vars:``.

    Global vars overlaid with those scoped to the project's name; top-level strings are rendered
    with ``env_var()`` and ``target`` available, nested values stay raw (as in dbt).
    """
    from dbt.clients.jinja import get_rendered
    from dbt.context.target import TargetContext

    raw: dict[str, Any] = config.vars.to_dict()
    scoped = raw.get(config.project_name)
    merged = {**raw, **scoped} if isinstance(scoped, dict) else dict(raw)
    context = TargetContext(config.to_target_dict(), config.cli_vars).to_dict()
    return {
        name: get_rendered(value, context) if isinstance(value, str) else value
        for name, value in merged.items()
    }


_EVENT_LEVEL: str | None = None


def set_dbt_log_level(level: str | None) -> None:
    """Show dbt's own events at ``level`` (debug, info, warn, error) on stderr from now on,
    as ``dbt --log-level`` would on the console; None or ``none``: keep them silent."""
    global _EVENT_LEVEL
    wanted = None if level in (None, "none") else level
    if wanted != _EVENT_LEVEL:
        _EVENT_LEVEL = wanted
        show_dbt_events()


def dbt_sql_logged() -> bool:
    """Whether dbt's debug events are shown: they carry each statement's SQL."""
    return _EVENT_LEVEL == "debug"


def show_dbt_events() -> None:
    """Attach the stderr logger chosen by :func:`set_dbt_log_level` (never a log file)."""
    import sys

    from dbt_common.events.base_types import EventLevel
    from dbt_common.events.event_manager_client import cleanup_event_logger, get_event_manager
    from dbt_common.events.logger import LineFormat, LoggerConfig

    cleanup_event_logger()
    if _EVENT_LEVEL is None:
        return
    get_event_manager().add_logger(
        LoggerConfig(
            name="dbt_rdcrm_stderr",
            line_format=LineFormat.DebugText if _EVENT_LEVEL == "debug" else LineFormat.PlainText,
            level=EventLevel(_EVENT_LEVEL),
            use_colors=False,
            output_stream=sys.stderr,
        )
    )


_LOADED: dict[tuple, Any] = {}


def load_dbt_manifest(path: Path) -> Any:
    """dbt's own ``Manifest`` object for ``target/manifest.json`` (for its selector and its
    relation naming), loaded once per file version in this process."""
    from dbt.contracts.graph.manifest import Manifest, WritableManifest

    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _LOADED:
        _LOADED.clear()
        writable = WritableManifest.read_and_check_versions(str(path))
        _LOADED[key] = Manifest.from_writable_manifest(writable)
    return _LOADED[key]


def relation_names(config: RuntimeConfig, manifest_path: Path, unique_ids) -> dict[str, str]:
    """The relation each model of ``unique_ids`` gets when the project is parsed for
    ``config``'s target: dbt's ``generate_database_name``/``generate_schema_name``/
    ``generate_alias_name`` (the project's own, if it overrides them) run as at parse time."""
    import copy

    from dbt.adapters.factory import get_adapter
    from dbt.parser.base import RelationUpdate

    manifest = load_dbt_manifest(manifest_path)
    components = ("database", "schema", "alias")
    updaters = {c: RelationUpdate(config, manifest, c) for c in components}
    relation = get_adapter(config).Relation
    names = {}
    for unique_id in unique_ids:
        node = copy.deepcopy(manifest.nodes[unique_id])
        for component in components:
            updaters[component](node, getattr(node.config, component))
        names[unique_id] = str(relation.create_from(config, node))
    return names


def parse_project(args: list[str]) -> None:
    """Run ``dbt parse`` in this process (dbt's own parser and flags), writing
    target/manifest.json; dbt's log file goes to a temporary directory that is removed.
    Raises RuntimeError with dbt's reason when parsing fails."""
    import shutil
    import tempfile

    from dbt.cli.main import dbtRunner

    log_dir = tempfile.mkdtemp(prefix="dbt_rdcrm_parse_")
    try:
        level = _EVENT_LEVEL or "none"
        result = dbtRunner().invoke(
            [
                "parse",
                *args,
                "--log-level",
                level,
                "--log-level-file",
                "none",
                "--log-path",
                log_dir,
            ]
        )
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)
        show_dbt_events()
    if not result.success:
        reason = result.exception
        message = getattr(reason, "msg", None) or str(reason or "see dbt's output")
        raise RuntimeError(" ".join(str(message).split()))
