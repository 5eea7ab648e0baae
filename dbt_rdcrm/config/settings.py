"""Run settings from flags, environment and ``vars: {rdcrm: ...}`` in dbt_project.yml."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from dbt_rdcrm.auth.urls import DEFAULT_BASE_URL
from dbt_rdcrm.crm.client import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_REQUEST_BUDGET,
    Timeouts,
    check_base_url,
)
from dbt_rdcrm.errors import ConfigError, Problem, UsageError

VAR_KEYS = (
    "base_url",
    "rate_limit",
    "max_attempts",
    "concurrency",
    "state_schema",
    "state_database",
    "id_map_table",
    "sync_log_table",
    "lease_table",
    "connect_timeout",
    "read_timeout",
    "request_timeout",
    "settle_timeout",
    "lease_settle",
)
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,127}$")
SECRET_VAR_KEYS = ("access_token", "refresh_token", "client_secret", "token")
DEFAULT_RATE_LIMIT = 120
DEFAULT_SETTLE_TIMEOUT = 60.0  # an unanswered create may still land this long after it left
# A lease ticket is seen by every other run this long after its time: longer than the state's
# insert and commit take (a warehouse whose commits take longer needs more; see sync.lease).
DEFAULT_LEASE_SETTLE = 0.2
DEFAULT_CONCURRENCY = 4  # writes in flight: enough to reach 120/min at 1.5 s a request
# (vars key, environment variable, default): seconds, each a positive number
TIMEOUT_SETTINGS = (
    ("connect_timeout", "RDCRM_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT),
    ("read_timeout", "RDCRM_READ_TIMEOUT", DEFAULT_READ_TIMEOUT),
    ("request_timeout", "RDCRM_REQUEST_TIMEOUT", DEFAULT_REQUEST_BUDGET),
    ("settle_timeout", "RDCRM_SETTLE_TIMEOUT", DEFAULT_SETTLE_TIMEOUT),
    ("lease_settle", "RDCRM_LEASE_SETTLE", DEFAULT_LEASE_SETTLE),
)


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
    lease_table: str = "rdcrm_lease"
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    concurrency: int = DEFAULT_CONCURRENCY
    timeouts: Timeouts = Timeouts()
    settle_timeout: float = DEFAULT_SETTLE_TIMEOUT  # see DEFAULT_SETTLE_TIMEOUT
    lease_settle: float = DEFAULT_LEASE_SETTLE  # see DEFAULT_LEASE_SETTLE


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
    except UnicodeDecodeError:
        raise UsageError(f"cannot read {path}: not UTF-8 text") from None
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
    concurrency: int | None = None,
    max_attempts: int | None = None,
    timeouts: Mapping[str, float | None] | None = None,
) -> Settings:
    """Flags win over RDCRM_* environment variables, which win over ``vars.rdcrm``.

    ``timeouts`` holds the timeout flags by vars key (``connect_timeout``, ...; None = unset).
    """
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
        (str(max_attempts) if max_attempts is not None else None)
        or env.get("RDCRM_MAX_ATTEMPTS")
        or raw.get("max_attempts", DEFAULT_MAX_ATTEMPTS),
        "max_attempts",
        "a whole number of tries per request, at least 1",
        1,
        problems,
    )
    workers = _whole_number(
        concurrency or env.get("RDCRM_CONCURRENCY") or raw.get("concurrency", DEFAULT_CONCURRENCY),
        "concurrency",
        "a whole number of writes in flight at once, at least 1",
        1,
        problems,
    )
    names = {}
    for key, default in (
        ("state_schema", f"{target_schema}_rdcrm"),
        ("id_map_table", "rdcrm_id_map"),
        ("sync_log_table", "rdcrm_sync_log"),
        ("lease_table", "rdcrm_lease"),
    ):
        value = raw.get(key, default)
        why = check_identifier(value)
        if why is not None:
            problems.append(Problem(f"vars.rdcrm.{key}", why))
            value = default
        names[key] = value
    seconds = {}
    for key, variable, default in TIMEOUT_SETTINGS:
        flag = (timeouts or {}).get(key)
        chosen = flag if flag is not None else env.get(variable) or raw.get(key, default)
        seconds[key] = _seconds(chosen, key, variable, problems) or default
    database = raw.get("state_database")
    if database is not None and check_identifier(database) is not None:
        problems.append(Problem("vars.rdcrm.state_database", check_identifier(database)))
    if problems:
        raise ConfigError(problems)
    return Settings(
        base_url=check_base_url(str(url)),
        rate_limit=limit if limit is not None else DEFAULT_RATE_LIMIT,
        max_attempts=attempts if attempts is not None else DEFAULT_MAX_ATTEMPTS,
        concurrency=workers if workers is not None else DEFAULT_CONCURRENCY,
        timeouts=Timeouts(
            seconds["connect_timeout"], seconds["read_timeout"], seconds["request_timeout"]
        ),
        settle_timeout=seconds["settle_timeout"],
        lease_settle=seconds["lease_settle"],
        state_database=str(database) if database else None,
        state_schema=names["state_schema"],
        id_map_table=names["id_map_table"],
        sync_log_table=names["sync_log_table"],
        lease_table=names["lease_table"],
    )


def check_identifier(name: object) -> str | None:
    """Why ``name`` cannot be a state schema, database or table name, or None.

    These names go into SQL as identifiers: only plain ones are accepted (and they are quoted).
    """
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        return (
            f"got {name!r}, expected a plain identifier (a letter or _, then letters, digits, "
            "_ or $, at most 128 characters)"
        )
    return None


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


def _seconds(value: object, key: str, variable: str, problems: list[Problem]) -> float | None:
    try:
        number = float(str(value))
    except ValueError:
        number = None
    if number is None or not 0 < number <= 86400:
        problems.append(
            Problem(
                f"vars.rdcrm.{key}",
                f"got {value!r} (from --{key.replace('_', '-')}, {variable} or vars), "
                "expected a number of seconds above 0",
            )
        )
        return None
    return number
