"""dbt projects on real warehouses: a DuckDB file, and the PostgreSQL server on 127.0.0.1:5432.

``duckdb_project`` and ``postgres_project`` each give a project directory whose profiles.yml
(target ``dev``) points at the database. Without a reachable PostgreSQL server the postgres
fixtures skip, unless ``RDCRM_REQUIRE_POSTGRES=1`` (set in CI), which turns the skip into a
failure. Every PostgreSQL test of a session works in schemas named after ``postgres_schema``,
all dropped at the end of the session.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import POSTGRES, drop_postgres_schemas, postgres_sql, require_postgres

from dbt_rdcrm.dbt.warehouse import Warehouse

PROFILE = "rdcrm_test"
# Environment that changes how dbt resolves a project; tests set what they need.
DBT_ENV_VARS = (
    "DBT_PROFILES_DIR",
    "DBT_PROJECT_DIR",
    "DBT_TARGET",
    "DBT_TARGET_PATH",
    "DBT_PROFILE",
)


def write_project(
    project_dir: Path,
    outputs: dict[str, dict[str, Any]],
    *,
    profiles_dir: Path | None = None,
    project_extra: dict[str, Any] | None = None,
) -> Path:
    """Write dbt_project.yml, and profiles.yml (default target: the first output) into
    ``profiles_dir`` (default: the project directory). Returns the project directory."""
    project_dir.mkdir(parents=True, exist_ok=True)
    project = {"name": "rdcrm_test", "version": "1.0", "profile": PROFILE}
    (project_dir / "dbt_project.yml").write_text(
        yaml.safe_dump({**project, **(project_extra or {})})
    )
    profiles_dir = profiles_dir or project_dir
    profiles_dir.mkdir(parents=True, exist_ok=True)
    profile = {PROFILE: {"target": next(iter(outputs)), "outputs": outputs}}
    (profiles_dir / "profiles.yml").write_text(yaml.safe_dump(profile))
    return project_dir


def duckdb_output(path: Path | str) -> dict[str, Any]:
    return {"type": "duckdb", "path": str(path), "schema": "main", "threads": 1}


def postgres_output(schema: str, **overrides: Any) -> dict[str, Any]:
    return {
        "type": "postgres",
        "host": POSTGRES["host"],
        "port": POSTGRES["port"],
        "user": POSTGRES["user"],
        "password": "",
        "dbname": POSTGRES["dbname"],
        "schema": schema,
        "threads": 1,
        **overrides,
    }


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[str]:
    """A schema unique to this test session; it and every schema whose name starts with it
    are dropped afterwards."""
    require_postgres()
    schema = f"rdcrm_test_{secrets.token_hex(4)}"
    postgres_sql(f'create schema "{schema}"')
    yield schema
    drop_postgres_schemas(schema)


class Projects:
    """The project writers above, for test modules (which cannot import this conftest)."""

    write = staticmethod(write_project)
    duckdb = staticmethod(duckdb_output)
    postgres = staticmethod(postgres_output)


@pytest.fixture(scope="session")
def projects() -> type[Projects]:
    return Projects


@pytest.fixture(autouse=True)
def _no_dbt_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in DBT_ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def duckdb_project(tmp_path: Path) -> Path:
    return write_project(
        tmp_path / "duckdb_project", {"dev": duckdb_output(tmp_path / "warehouse.duckdb")}
    )


@pytest.fixture
def postgres_project(tmp_path: Path, postgres_schema: str) -> Path:
    return write_project(tmp_path / "postgres_project", {"dev": postgres_output(postgres_schema)})


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def warehouse(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, projects
) -> Iterator[Warehouse]:
    """A Warehouse on each warehouse type, shared by the tests of a module."""
    base = tmp_path_factory.mktemp(request.param)
    if request.param == "duckdb":
        output = projects.duckdb(base / "warehouse.duckdb")
    else:
        output = projects.postgres(request.getfixturevalue("postgres_schema"))
    project = projects.write(base / "project", {"dev": output})
    with Warehouse.connect(project, profiles_dir=project, target="dev") as warehouse:
        yield warehouse


@pytest.fixture(params=["duckdb", "postgres"])
def any_project(request: pytest.FixtureRequest) -> Path:
    """The same test on each warehouse."""
    return request.getfixturevalue(f"{request.param}_project")
