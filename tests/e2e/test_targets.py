"""A manifest is read only with the target it was parsed for: another --target is refused
(exit 2, "run `dbt parse -t X` first") or re-resolved with --parse; never pg's relations with
pg2's state. On PostgreSQL with two targets (two schemas), and on DuckDB (two files)."""

from __future__ import annotations

import json
import secrets

import pytest
import yaml
from support import POSTGRES, Project, build_jaffle


@pytest.fixture(scope="module")
def two_targets(tmp_path_factory, postgres_prefix) -> Project:
    """The jaffle project built on two PostgreSQL targets (pg2 without Bruno's order), with
    the manifest of the last build: target pg."""
    schemas = {t: f"{postgres_prefix}_{t}_{secrets.token_hex(2)}" for t in ("pg", "pg2")}
    project = build_jaffle(
        tmp_path_factory.mktemp("targets") / "jaffle_shop", pg_schema=schemas["pg"]
    )
    outputs = {
        target: {
            "type": "postgres",
            "host": POSTGRES["host"],
            "port": POSTGRES["port"],
            "user": POSTGRES["user"],
            "password": "",
            "dbname": POSTGRES["dbname"],
            "schema": schema,
            "threads": 1,
        }
        for target, schema in schemas.items()
    }
    profiles = {"jaffle_shop": {"target": "pg", "outputs": outputs}}
    (project.path / "profiles.yml").write_text(yaml.safe_dump(profiles))
    assert project.dbt("build", "-s", "fqn:*", "-t", "pg2").returncode == 0
    project.sql(f'delete from "{schemas["pg2"]}".orders where order_id = 11')
    done = project.dbt("build", "-s", "fqn:*", "-t", "pg")
    assert done.returncode == 0, done.stdout
    project.schemas = schemas
    return project


def read(run, model: str) -> int:
    return next(m for m in run.results["models"] if m["model"] == model)["rows_read"]


@pytest.fixture
def targets(two_targets, tmp_path, emulator) -> Project:
    import shutil

    shutil.copytree(two_targets.path, tmp_path / "jaffle_shop", symlinks=True)
    project = Project(tmp_path / "jaffle_shop", dict(two_targets.env), two_targets.pg_schema)
    project.env.update(
        {"RDCRM_BASE_URL": emulator.base_url, "RDCRM_ACCESS_TOKEN": "emulator-token"}
    )
    project.env["DBT_PROFILES_DIR"] = str(project.path)
    return project


def test_the_manifests_own_target_is_read(targets):
    for args in ((), ("-t", "pg")):
        run = targets.cli("plan", "-s", "orders", *args)
        assert run.exit_code == 0, run.output
        assert read(run, "orders") == 2


@pytest.mark.parametrize("command", ["plan", "sync"])
def test_another_target_is_refused_before_anything_is_read_or_sent(targets, emulator, command):
    run = targets.cli(command, "-s", "orders", "-t", "pg2")
    assert run.exit_code == 2
    assert "was built for another target" in run.stderr
    assert "run `dbt parse -t pg2`" in run.stderr
    assert emulator.requests() == []
    env_target = targets.cli(command, "-s", "orders", env={"DBT_TARGET": "pg2"})
    assert env_target.exit_code == 2


def test_validate_refuses_another_target(targets):
    run = targets.cli("validate", "-t", "pg2", "--output", "json")
    assert run.exit_code == 2
    assert [e["code"] for e in json.loads(run.stdout)["errors"]] == ["target"]


def test_parse_re_resolves_the_relations_for_the_requested_target(targets):
    run = targets.cli("plan", "-s", "orders", "-t", "pg2", "--parse")
    assert run.exit_code == 0, run.output
    assert read(run, "orders") == 1  # pg2's table, with pg2's state
    back = targets.cli("plan", "-s", "orders", "-t", "pg")
    assert back.exit_code == 2  # the manifest is pg2's now: never a mix
    assert "run `dbt parse -t pg`" in back.stderr


def test_another_duckdb_file_is_another_target(jaffle_copy):
    profiles = jaffle_copy.path / "profiles.yml"
    data = yaml.safe_load(profiles.read_text())
    data["jaffle_shop"]["outputs"]["other"] = {
        "type": "duckdb",
        "path": str(jaffle_copy.path / "other.duckdb"),
    }
    profiles.write_text(yaml.safe_dump(data))
    run = jaffle_copy.cli("plan", "-t", "other")
    assert run.exit_code == 2
    assert "run `dbt parse -t other`" in run.stderr
