"""Shared fixtures: a real CRM emulator over HTTP and built copies of the sample dbt project."""

from __future__ import annotations

import secrets

import pytest
from support import (
    Project,
    build_jaffle,
    build_sample,
    copy_postgres_project,
    copy_project,
    drop_postgres_schemas,
    require_postgres,
)

from dbt_rdcrm.emulator import Emulator

# The emulator's rate limit is off, so is the client's: tests do not wait for pacing.
EMULATOR_ENV = {
    "RDCRM_ACCESS_TOKEN": "emulator-token",
    "RDCRM_RATE_LIMIT": "0",
    "RDCRM_SETTLE_TIMEOUT": "2",  # an unanswered create is looked up 2 s after it left
    # a ticket on the local server is committed in milliseconds: each claim waits 2 x 0.1 s
    "RDCRM_LEASE_SETTLE": "0.1",
}


@pytest.fixture
def emulator():
    """A fresh emulator on a free loopback port, rate limit off (tests count requests)."""
    with Emulator(rate_limit=0) as emu:
        yield emu


@pytest.fixture(scope="session")
def sample_template(tmp_path_factory) -> Project:
    """The sample project, built once per session; tests get their own copy."""
    return build_sample(tmp_path_factory.mktemp("template") / "sample_project")


@pytest.fixture
def sample(sample_template, tmp_path, emulator) -> Project:
    """A private, built copy of the sample project, pointed at this test's emulator."""
    project = copy_project(sample_template, tmp_path / "sample_project")
    project.env.update(EMULATOR_ENV | {"RDCRM_BASE_URL": emulator.base_url})
    return project


@pytest.fixture(scope="session")
def postgres_prefix():
    """A schema prefix unique to this session; every schema starting with it is dropped after."""
    require_postgres()
    prefix = f"rdcrm_e2e_{secrets.token_hex(3)}"
    yield prefix
    drop_postgres_schemas(prefix)


@pytest.fixture(scope="session")
def postgres_template(tmp_path_factory, postgres_prefix) -> Project:
    """The sample project built once per session into its own PostgreSQL schema."""
    return build_sample(
        tmp_path_factory.mktemp("pg-template") / "sample_project",
        pg_schema=f"{postgres_prefix}_template",
    )


@pytest.fixture(params=["duckdb", "postgres"])
def project(request, tmp_path, emulator) -> Project:
    """The built sample project on each real warehouse, pointed at this test's emulator."""
    if request.param == "duckdb":
        built = copy_project(request.getfixturevalue("sample_template"), tmp_path / "sample")
    else:
        prefix = request.getfixturevalue("postgres_prefix")
        built = copy_postgres_project(
            request.getfixturevalue("postgres_template"),
            tmp_path / "sample",
            f"{prefix}_{secrets.token_hex(3)}",
        )
    built.env.update(EMULATOR_ENV | {"RDCRM_BASE_URL": emulator.base_url})
    return built


@pytest.fixture(scope="session")
def jaffle(tmp_path_factory) -> Project:
    """The jaffle-shop style test project, built once per session on DuckDB (read-only use)."""
    return build_jaffle(tmp_path_factory.mktemp("jaffle") / "jaffle_shop")


@pytest.fixture
def jaffle_copy(jaffle, tmp_path, emulator) -> Project:
    """A private copy of the built jaffle project, pointed at this test's emulator."""
    project = copy_project(jaffle, tmp_path / "jaffle_shop")
    project.env.update(
        {
            "JAFFLE_DB": str(project.path / "jaffle.duckdb"),
            "RDCRM_BASE_URL": emulator.base_url,
            "RDCRM_ACCESS_TOKEN": "emulator-token",
        }
    )
    return project
