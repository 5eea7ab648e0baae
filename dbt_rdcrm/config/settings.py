"""Run settings from flags, environment and ``vars: {rdcrm: ...}`` in dbt_project.yml."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from dbt_rdcrm.auth.urls import DEFAULT_BASE_URL
from dbt_rdcrm.crm.client import check_base_url
from dbt_rdcrm.errors import ConfigError, Problem, UsageError

VAR_KEYS = (
    "base_url",
    "rate_limit",
    "max_attempts",
    "state_schema",
    "state_database",
    "id_map_table",
    "sync_log_table",
)
SECRET_VAR_KEYS = ("access_token", "refresh_token", "client_secret", "token")
DEFAULT_RATE_LIMIT = 120
DEFAULT_MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class ProjectPaths:
    project_dir: Path
    profiles_dir: Path | None
    target: str | None
    target_path: Path  # absolute


@dataclass(frozen=True)
class Settings:
    base_url: str
    rate_limit: int
    state_database: str | None
    state_schema: str
    id_map_table: str
    sync_log_table: str
    max_attempts: int = DEFAULT_MAX_ATTEMPTS


def read_project_file(project_dir: Path) -> dict:
    """dbt_project.yml as written (no rendering)."""
    path = project_dir / "dbt_project.yml"
    if not path.is_file():
        raise UsageError(
            f"no dbt_project.yml in {project_dir}: run from a dbt project or pass --project-dir"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    return data if isinstance(data, dict) else {}


def resolve_paths(
    project_dir: str | None,
    profiles_dir: str | None,
    target: str | None,
    target_path: str | None,
    env: Mapping[str, str] = os.environ,
) -> ProjectPaths:
    """dbt's precedence: flag, then DBT_* environment variable, then dbt_project.yml/default."""
    project = Path(project_dir or env.get("DBT_PROJECT_DIR") or ".").expanduser().resolve()
    project_file = read_project_file(project)
    chosen = target_path or env.get("DBT_TARGET_PATH") or project_file.get("target-path")
    resolved_target = Path(str(chosen or "target")).expanduser()
    if not resolved_target.is_absolute():
        resolved_target = project / resolved_target
    profiles = profiles_dir or env.get("DBT_PROFILES_DIR")
    return ProjectPaths(
        project,
        Path(profiles).expanduser().resolve() if profiles else None,
        target or env.get("DBT_TARGET"),
        resolved_target,
    )


def resolve_settings(
    project_vars: Mapping,
    env: Mapping[str, str],
    target_schema: str,
    *,
    base_url: str | None = None,
    rate_limit: int | None = None,
) -> Settings:
    """Flags win over RDCRM_* environment variables, which win over ``vars.rdcrm``."""
    raw = project_vars.get("rdcrm") if isinstance(project_vars, Mapping) else None
    raw = raw if raw is not None else {}
    problems: list[Problem] = []
    if not isinstance(raw, Mapping):
        raise ConfigError([Problem("vars.rdcrm", f"expected a mapping of {', '.join(VAR_KEYS)}")])
    for key in raw:
        if key in SECRET_VAR_KEYS:
            problems.append(
                Problem(
                    f"vars.rdcrm.{key}",
                    "secrets must not live in "
                    "dbt_project.yml: use the environment (RDCRM_ACCESS_TOKEN, ...) "
                    "or `dbt-rdcrm auth login`",
                )
            )
        elif key not in VAR_KEYS:
            problems.append(
                Problem(f"vars.rdcrm.{key}", f"unknown key, expected one of {', '.join(VAR_KEYS)}")
            )
    url = base_url or env.get("RDCRM_BASE_URL") or raw.get("base_url") or DEFAULT_BASE_URL
    flag = str(rate_limit) if rate_limit is not None else None
    limit = _whole_number(
        flag or env.get("RDCRM_RATE_LIMIT") or raw.get("rate_limit", DEFAULT_RATE_LIMIT),
        "rate_limit",
        "a whole number of requests per minute (0 = no limit)",
        0,
        problems,
    )
    attempts = _whole_number(
        env.get("RDCRM_MAX_ATTEMPTS") or raw.get("max_attempts", DEFAULT_MAX_ATTEMPTS),
        "max_attempts",
        "a whole number of tries per request, at least 1",
        1,
        problems,
    )
    names = {}
    for key, default in (
        ("state_schema", f"{target_schema}_rdcrm"),
        ("id_map_table", "rdcrm_id_map"),
        ("sync_log_table", "rdcrm_sync_log"),
    ):
        value = raw.get(key, default)
        if not isinstance(value, str) or not value.strip():
            problems.append(Problem(f"vars.rdcrm.{key}", f"got {value!r}, expected a name"))
            value = default
        names[key] = value
    database = raw.get("state_database")
    if problems:
        raise ConfigError(problems)
    return Settings(
        base_url=check_base_url(str(url)),
        rate_limit=limit if limit is not None else DEFAULT_RATE_LIMIT,
        max_attempts=attempts if attempts is not None else DEFAULT_MAX_ATTEMPTS,
        state_database=str(database) if database else None,
        state_schema=names["state_schema"],
        id_map_table=names["id_map_table"],
        sync_log_table=names["sync_log_table"],
    )


def _whole_number(
    value: object, key: str, expected: str, least: int, problems: list[Problem]
) -> int | None:
    try:
        number = int(str(value))
    except ValueError:
        number = None
    if number is None or number < least:
        problems.append(Problem(f"vars.rdcrm.{key}", f"got {value!r}, expected {expected}"))
        return None
    return number
