"""Warehouse.connect: finding the profile like dbt, env_var(), vars, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dbt_rdcrm.dbt.warehouse import Warehouse, WarehouseError


def connect(project: Path, **kwargs) -> Warehouse:
    warehouse = Warehouse.connect(project, **kwargs)
    warehouse.close()
    return warehouse


def test_reads_profiles_yml_from_the_project_dir(duckdb_project: Path) -> None:
    warehouse = connect(duckdb_project)

    assert (warehouse.adapter_type, warehouse.target_name, warehouse.schema) == (
        "duckdb",
        "dev",
        "main",
    )


def test_reads_profiles_yml_from_DBT_PROFILES_DIR(
    tmp_path: Path, projects, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = projects.duckdb(tmp_path / "warehouse.duckdb")
    project = projects.write(tmp_path / "project", {"dev": output}, profiles_dir=tmp_path / "env")
    monkeypatch.setenv("DBT_PROFILES_DIR", str(tmp_path / "env"))

    assert connect(project).adapter_type == "duckdb"


def test_explicit_profiles_dir_wins_over_DBT_PROFILES_DIR(
    tmp_path: Path, projects, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "warehouse.duckdb"
    project = projects.write(
        tmp_path / "project",
        {"dev": {**projects.duckdb(path), "schema": "from_arg"}},
        profiles_dir=tmp_path / "arg",
    )
    projects.write(
        tmp_path / "unused",
        {"dev": {**projects.duckdb(path), "schema": "from_env"}},
        profiles_dir=tmp_path / "env",
    )
    monkeypatch.setenv("DBT_PROFILES_DIR", str(tmp_path / "env"))

    assert connect(project, profiles_dir=tmp_path / "arg").schema == "from_arg"


def test_env_var_in_profiles_yml_reads_the_environment(
    tmp_path: Path, projects, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = {
        "type": "duckdb",
        "path": "{{ env_var('RDCRM_TEST_DUCKDB_PATH') }}",
        "schema": "{{ env_var('RDCRM_TEST_SCHEMA', 'main') }}",
    }
    project = projects.write(tmp_path / "project", {"dev": output})
    monkeypatch.setenv("RDCRM_TEST_DUCKDB_PATH", str(tmp_path / "from_env.duckdb"))
    monkeypatch.setenv("RDCRM_TEST_SCHEMA", "from_env")

    with Warehouse.connect(project) as warehouse:
        warehouse.create_schema(None, warehouse.schema)

    assert warehouse.schema == "from_env"
    assert (tmp_path / "from_env.duckdb").exists()


def test_missing_env_var_is_a_warehouse_error(tmp_path: Path, projects) -> None:
    output = {"type": "duckdb", "path": "{{ env_var('RDCRM_TEST_UNSET_VARIABLE') }}"}
    project = projects.write(tmp_path / "project", {"dev": output})

    with pytest.raises(WarehouseError, match="RDCRM_TEST_UNSET_VARIABLE"):
        Warehouse.connect(project)


def test_project_vars_are_what_var_returns_in_the_project(
    tmp_path: Path, projects, monkeypatch: pytest.MonkeyPatch
) -> None:
    variables = {
        "rdcrm": {"base_url": "http://127.0.0.1:1/v2", "rate_limit": 60},
        "greeting": "{{ env_var('RDCRM_TEST_GREETING') }} from {{ target.name }}",
        "rdcrm_test": {"scoped": True},
    }
    output = projects.duckdb(tmp_path / "warehouse.duckdb")
    project = projects.write(
        tmp_path / "project", {"dev": output}, project_extra={"vars": variables}
    )
    monkeypatch.setenv("RDCRM_TEST_GREETING", "hello")

    project_vars = connect(project).project_vars

    assert project_vars["rdcrm"] == {"base_url": "http://127.0.0.1:1/v2", "rate_limit": 60}
    assert project_vars["greeting"] == "hello from dev"
    assert project_vars["scoped"] is True


@pytest.mark.parametrize(
    ("project_extra", "expected"),
    [({}, "target"), ({"target-path": "build/dbt"}, "build/dbt")],
    ids=["default", "configured"],
)
def test_target_path_is_absolute_under_the_project(
    tmp_path: Path, projects, project_extra: dict, expected: str
) -> None:
    output = projects.duckdb(tmp_path / "warehouse.duckdb")
    project = projects.write(tmp_path / "project", {"dev": output}, project_extra=project_extra)

    assert connect(project).target_path == tmp_path / "project" / expected


def test_explicit_target_is_used(tmp_path: Path, projects) -> None:
    outputs = {
        "dev": projects.duckdb(tmp_path / "dev.duckdb"),
        "other": {**projects.duckdb(tmp_path / "other.duckdb"), "schema": "other"},
    }
    project = projects.write(tmp_path / "project", outputs)

    warehouse = connect(project, target="other")

    assert (warehouse.target_name, warehouse.schema) == ("other", "other")


def test_DBT_TARGET_picks_the_target_like_dbt(
    tmp_path: Path, projects, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = {
        "dev": projects.duckdb(tmp_path / "dev.duckdb"),
        "ci": projects.duckdb(tmp_path / "ci.duckdb"),
    }
    project = projects.write(tmp_path / "project", outputs)
    monkeypatch.setenv("DBT_TARGET", "ci")

    assert connect(project).target_name == "ci"


def test_unknown_target_names_profile_and_target(duckdb_project: Path) -> None:
    with pytest.raises(WarehouseError) as error:
        Warehouse.connect(duckdb_project, target="nope")

    message = str(error.value)
    assert "\n" not in message
    assert "'rdcrm_test'" in message
    assert "'nope'" in message
    assert str(duckdb_project / "profiles.yml") in message


def test_missing_dbt_project_yml_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(WarehouseError, match=f"no dbt_project.yml in {tmp_path}$"):
        Warehouse.connect(tmp_path)


def test_missing_profiles_yml_names_the_directory(tmp_path: Path, projects) -> None:
    output = projects.duckdb(tmp_path / "warehouse.duckdb")
    project = projects.write(tmp_path / "project", {"dev": output}, profiles_dir=tmp_path / "p")
    (tmp_path / "empty").mkdir()

    with pytest.raises(WarehouseError, match=f"no profiles.yml in {tmp_path / 'empty'} "):
        Warehouse.connect(project, profiles_dir=tmp_path / "empty")


def test_unreachable_postgres_is_a_one_line_error(tmp_path: Path, projects) -> None:
    output = projects.postgres("public", port=1, connect_timeout=2, retries=0)
    project = projects.write(tmp_path / "project", {"dev": output})

    with pytest.raises(WarehouseError) as error:
        Warehouse.connect(project)

    message = str(error.value)
    assert message.startswith("target 'dev' of profile 'rdcrm_test' (postgres): connecting failed:")
    assert "port 1" in message
    assert "\n" not in message
    assert "Traceback" not in message


def test_rejected_postgres_credentials_are_a_one_line_error(
    tmp_path: Path, projects, postgres_schema: str
) -> None:
    output = projects.postgres(postgres_schema, user="rdcrm_no_such_role")
    project = projects.write(tmp_path / "project", {"dev": output})

    with pytest.raises(WarehouseError, match=r"^target 'dev' .*rdcrm_no_such_role[^\n]*$"):
        Warehouse.connect(project)


def test_connect_writes_nothing_into_the_project_and_prints_nothing(
    any_project: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with Warehouse.connect(any_project) as warehouse:
        warehouse.query("select 1")
        warehouse.execute(f"create table {warehouse.quote('quiet')} (id integer)")
        warehouse.rollback()

    assert sorted(p.name for p in any_project.iterdir()) == ["dbt_project.yml", "profiles.yml"]
    assert capfd.readouterr() == ("", "")


def test_connects_to_several_targets_one_after_another(
    duckdb_project: Path, postgres_project: Path
) -> None:
    with Warehouse.connect(duckdb_project) as warehouse:
        warehouse.execute("create table first_visit as select 1 as id")
        warehouse.commit()
    with Warehouse.connect(postgres_project) as warehouse:
        assert warehouse.query("select 2") == [(2,)]
    with Warehouse.connect(duckdb_project) as warehouse:
        assert warehouse.adapter_type == "duckdb"
        assert warehouse.query("select id from first_visit") == [(1,)]


def test_importing_the_module_does_not_import_dbt() -> None:
    code = (
        "import sys, dbt_rdcrm.dbt.warehouse\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'dbt'], 'dbt imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_closing_releases_the_duckdb_file_for_other_processes(tmp_path: Path, projects) -> None:
    db = tmp_path / "w.duckdb"
    project = projects.write(tmp_path / "p", {"dev": projects.duckdb(db)})
    warehouse = Warehouse.connect(project)
    warehouse.execute("create table t as select 1 as x")
    warehouse.commit()
    warehouse.close()
    script = (
        f"import duckdb; c = duckdb.connect({str(db)!r}); "
        "print(c.execute('select x from t').fetchall())"
    )
    other = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert other.stdout.strip() == "[(1,)]", other.stderr
