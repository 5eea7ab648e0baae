"""What one command was asked: the project's paths, the selection, the flags that override
settings, the environment and dbt's own flags; and the CRM base URL resolved from them
exactly as ``sync`` resolves it (``auth`` uses it outside a sync)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dbt_rdcrm.config.settings import ProjectPaths, resolve_settings
from dbt_rdcrm.dbt.selection import Selection


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
