"""The README's dbt-facing examples, run as written (on copies of the sample project)."""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest
import yaml
from support import REPO, SAMPLE, Project

from dbt_rdcrm.config.settings import resolve_settings

README = (REPO / "README.md").read_text()


def block(first_line: str) -> str:
    """The body of the README code block whose first line is ``first_line``."""
    for match in re.finditer(r"```[a-z]*\n(.*?)```", README, re.S):
        if match.group(1).startswith(first_line):
            return match.group(1)
    raise AssertionError(f"no README block starts with {first_line!r}")


def test_the_declaration_example_is_valid_where_dbt_reads_it(sample):
    declared = yaml.safe_load(block("# models/crm/schema.yml"))["models"][0]
    schema = sample.path / "models" / "crm" / "schema.yml"
    data = yaml.safe_load(schema.read_text())
    data["models"] = [m for m in data["models"] if m["name"] != "crm_contacts"] + [declared]
    schema.write_text(yaml.safe_dump(data, sort_keys=False))
    assert sample.dbt("parse").returncode == 0
    run = sample.cli("validate", "--no-warehouse", "--output", "json")
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["errors"] == []


def test_the_folder_level_example_applies_to_the_folder_and_merges_shallowly(sample):
    folder = yaml.safe_load(block("# dbt_project.yml\nmodels:"))["models"]["my_project"]
    project_file = sample.path / "dbt_project.yml"
    data = yaml.safe_load(project_file.read_text())
    data["models"]["rdcrm_sample"].update(folder)
    project_file.write_text(yaml.safe_dump(data, sort_keys=False))
    assert sample.dbt("parse").returncode == 0
    run = sample.cli("ls", "--output", "json")
    assert run.exit_code == 0, run.output
    modes = {m["model"]: m["mode"] for m in json.loads(run.stdout)["models"]}
    assert modes["crm_contact_ids"] == "contacts"  # no block of its own: the folder's
    assert modes["crm_deals"] == "deals"  # its own block replaces the folder's whole


def test_the_vars_example_is_accepted():
    example = yaml.safe_load(block("# dbt_project.yml: non-secrets only"))
    settings = resolve_settings(example["vars"], {}, "analytics")
    assert (settings.state_schema, settings.rate_limit) == ("analytics_rdcrm", 120)


def test_the_selection_examples_run_as_written(sample):
    commands = [line for line in block("dbt-rdcrm ls -s").splitlines() if line.strip()]
    assert len(commands) >= 5
    for line in commands:
        command = line.split("  #")[0].split()
        args = [a.strip('"') for a in command[1:]]
        if any(" " in a for a in args):  # quoted words stay one argument
            args = re.findall(r'"[^"]*"|\S+', line.split("  #")[0])[1:]
            args = [a.strip('"') for a in args]
        run = sample.cli(*args)
        assert run.exit_code == 0, (line, run.output)
        assert "0 syncs selected" not in run.stdout, line


def test_the_config_error_example_is_what_sync_prints(sample):
    contacts = {"mode": "contact", "key": "customer_id", "mapping": {"full_name": "nome"}}
    sample.edit_manifest("crm_contacts", contacts)
    deals = {
        "mode": "deals",
        "key": "deal_code",
        "mapping": {"deal_name": "name", "amount_brl": "@valor"},
    }
    sample.edit_manifest("crm_deals", deals)
    run = sample.sync()
    assert run.exit_code == 2
    expected = block("error: invalid rdcrm configuration").splitlines()
    actual = run.stderr.splitlines()
    assert len(actual) == len(expected), run.stderr
    for want, got in zip(expected, actual, strict=True):
        assert got.startswith(want.split("...")[0].rstrip(" ,")), (want, got)


@pytest.fixture
def fresh_project(tmp_path, emulator) -> Project:
    """The sample project next to a checkout of this repository, as the README's
    packages.yml example expects, with no warehouse built yet."""
    (tmp_path / "dbt-rdcrm").symlink_to(REPO)
    path = tmp_path / "my_project"
    shutil.copytree(
        SAMPLE,
        path,
        ignore=shutil.ignore_patterns(
            "target", "logs", "dbt_packages", "package-lock.yml", "*.duckdb"
        ),
    )
    example = yaml.safe_load(block("# packages.yml"))
    (path / "packages.yml").write_text(yaml.safe_dump(example))
    return Project(
        path,
        {
            "RDCRM_SAMPLE_DB": str(path / "sample.duckdb"),
            "DBT_PROFILES_DIR": str(path),
            "RDCRM_BASE_URL": emulator.base_url,
            "RDCRM_ACCESS_TOKEN": "emulator-token",
        },
    )


def test_the_package_example_and_the_recipe_work_on_a_fresh_warehouse(fresh_project, emulator):
    project = fresh_project
    sql = block("-- models/marts/contacts_with_crm_ids.sql")
    (project.path / "models" / "marts").mkdir()
    (project.path / "models" / "marts" / "contacts_with_crm_ids.sql").write_text(sql)
    deps = project.dbt("deps")
    assert deps.returncode == 0, deps.stdout
    build = project.dbt("build")  # dbt build && dbt-rdcrm sync, on a fresh warehouse
    assert build.returncode == 0, build.stdout
    sync = project.subprocess("sync")
    assert sync.exit_code == 0, sync.output
    assert len(emulator.state()["contacts"]) == 5  # 2 customers and 3 event leads
    assert project.dbt("build", "-s", "contacts_with_crm_ids").returncode == 0
    ids = project.sql("select rdcrm_contact_id from main.contacts_with_crm_ids")
    assert ids and all(crm_id for (crm_id,) in ids)


def test_the_exposures_example_runs_as_written(sample):
    assert sample.cli("exposures").exit_code == 0
    assert sample.dbt("parse").returncode == 0
    done = sample.dbt(
        "ls",
        "-s",
        "+exposure:rdcrm_crm_deals_deals",
        "--resource-type",
        "model",
        "--output",
        "name",
        "-q",
    )
    assert done.returncode == 0, done.stdout
    assert done.stdout.split() == ["crm_deals"]
    assert os.path.exists(sample.path / "models" / "rdcrm_exposures.yml")
