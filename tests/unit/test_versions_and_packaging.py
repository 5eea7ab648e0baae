"""One version per model, chosen as ref() resolves it; what the distribution ships."""

from __future__ import annotations

import sys

import pytest
from support import REPO

from dbt_rdcrm.dbt.manifest_reader import manifest_from_dict
from dbt_rdcrm.errors import SelectionError
from dbt_rdcrm.loading import choose_versions


def people(latest: int | None = 2, versions=(1, 2, 3)):
    nodes = {
        f"model.p.people.v{v}": {
            "name": "people",
            "resource_type": "model",
            "version": v,
            "latest_version": latest,
            "config": {"meta": {"rdcrm": {"mode": "contacts"}}},
        }
        for v in versions
    }
    return manifest_from_dict({"nodes": nodes})


@pytest.mark.parametrize(
    ("selected", "chosen"),
    [
        pytest.param({"v1", "v2", "v3"}, "v2", id="all-versions-give-the-latest"),
        pytest.param({"v3"}, "v3", id="one-named-version"),
        pytest.param({"v1", "v2"}, "v2", id="latest-among-them"),
    ],
)
def test_the_version_synced(selected, chosen):
    found = choose_versions(people(), {f"model.p.people.{v}" for v in selected})
    assert found["people"].unique_id == f"model.p.people.{chosen}"


def test_without_latest_version_the_highest_is_latest():
    assert people(latest=None).latest("people").version == "3"


def test_several_versions_but_not_the_latest_is_refused():
    with pytest.raises(SelectionError, match="picks versions v1, v3 of people but not its latest"):
        choose_versions(people(), {"model.p.people.v1", "model.p.people.v3"})


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib")
def test_warehouse_adapters_are_extras_and_the_dbt_package_ships():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if "duckdb" in d or "postgres" in d]
    extras = project["optional-dependencies"]
    assert extras["duckdb"] and extras["postgres"]
    assert "dbt-rdcrm[duckdb,postgres,ci]" in extras["dev"]
    shipped = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    for pattern in shipped["package-data"]["dbt_rdcrm"]:
        assert list((REPO / "dbt_rdcrm").glob(pattern)), pattern


def test_the_cli_does_not_import_duckdb_or_dbt():
    import subprocess

    code = (
        "import sys, dbt_rdcrm.cli; print(sorted(m for m in ('duckdb', 'dbt') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
