"""Selection is dbt's: every -s/--exclude/--selector picks the models `dbt ls --resource-type
model` picks with the same words (among those that declare meta.rdcrm; the versions of a model
count once), on a project with staging and marts folders, a versioned model, tags, a package
and selectors.yml (with a default selector)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from support import QUIET_DBT

# id -> the selection words, as typed after `dbt ls --resource-type model`
SELECTIONS = {
    "no-flags-uses-the-default-selector": (),
    "name": ("-s", "customers"),
    "parents": ("-s", "+orders"),
    "children": ("-s", "customers+"),
    "parents-and-children": ("-s", "+customers+"),
    "first-degree-parents": ("-s", "1+orders"),
    "at-operator": ("-s", "@customers"),
    "exclude-parents": ("-s", "fqn:*", "--exclude", "+orders"),
    "exclude-alone": ("--exclude", "orders"),
    "root-package": ("-s", "jaffle_shop"),
    "other-package": ("-s", "shared"),
    "package-method": ("-s", "package:shared"),
    "folder": ("-s", "crm"),
    "fqn-prefix": ("-s", "jaffle_shop.marts"),
    "path-folder": ("-s", "path:models/marts/crm"),
    "path-file": ("-s", "path:models/marts/crm/orders.sql"),
    "bare-path": ("-s", "models/marts/crm/orders.sql"),
    "file-method": ("-s", "file:crm_people_v1.sql"),
    "versioned-by-name": ("-s", "crm_people"),
    "named-version": ("-s", "crm_people.v1"),
    "latest-version-by-name": ("-s", "crm_people.v2"),
    "versioned-file-name": ("-s", "crm_people_v2"),
    "version-method-latest": ("-s", "version:latest"),
    "version-method-old": ("-s", "version:old"),
    "tag": ("-s", "tag:daily"),
    "folder-tag": ("-s", "tag:crm"),
    "tag-intersection": ("-s", "tag:crm,config.materialized:view"),
    "config-materialized": ("-s", "config.materialized:table"),
    "config-meta": ("-s", "config.meta.rdcrm.mode:deals"),
    "wildcard": ("-s", "crm_*"),
    "union-of-words": ("-s", "orders", "shared_accounts"),
    "repeated-flag": ("-s", "orders", "-s", "tag:daily"),
    "folder-minus-model": ("-s", "marts", "--exclude", "customers"),
    "selector": ("--selector", "deals_and_parents"),
    "selector-with-exclude": ("--selector", "crm_without_people"),
    "resource-type-method": ("-s", "resource_type:model"),
    "matches-nothing": ("-s", "no_such_model"),
    "matches-only-undeclared": ("-s", "stg_orders"),
}

DBT_LS = """
import json, sys, tempfile
from dbt.cli.main import dbtRunner
project, cases = sys.argv[1], json.loads(sys.stdin.read())
found = {}
for case, args in cases.items():
    result = dbtRunner().invoke(
        ["ls", "--resource-type", "model", "--output", "json", "--output-keys", "unique_id",
         "--project-dir", project, "--profiles-dir", project, "--quiet",
         "--log-path", tempfile.mkdtemp(), *args]
    )
    if result.success:
        found[case] = sorted(json.loads(line)["unique_id"] for line in result.result)
    else:
        found[case] = {"error": str(result.exception)}
print(json.dumps(found))
"""


@pytest.fixture(scope="session")
def dbt_ls(jaffle) -> dict:
    """What real `dbt ls` selects for every case: one process, one dbt invocation per case."""
    done = subprocess.run(
        [sys.executable, "-c", DBT_LS, str(jaffle.path)],
        input=json.dumps(SELECTIONS),
        env={**os.environ, **jaffle.env, **QUIET_DBT},
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="session")
def declared(jaffle) -> dict[str, str]:
    """unique_id -> model name, for the models that declare meta.rdcrm."""
    nodes = json.loads(jaffle.manifest_file.read_text())["nodes"]
    return {
        uid: node["name"]
        for uid, node in nodes.items()
        if node["resource_type"] == "model" and "rdcrm" in node["config"].get("meta", {})
    }


@pytest.mark.parametrize("args", SELECTIONS.values(), ids=SELECTIONS.keys())
def test_selection_is_the_same_as_dbt_ls(jaffle, dbt_ls, declared, args):
    expected = dbt_ls[next(k for k, v in SELECTIONS.items() if v == args)]
    assert not isinstance(expected, dict), f"dbt ls failed: {expected}"
    run = jaffle.cli("ls", "--output", "name", *args)
    assert run.exit_code == 0, run.output
    assert sorted(run.stdout.split()) == sorted({declared[u] for u in expected if u in declared})


def test_the_cases_cover_every_kind_of_selection(dbt_ls):
    assert len(SELECTIONS) >= 25
    assert {len(v) for v in dbt_ls.values() if isinstance(v, list)} >= {0, 1, 2}


def test_an_invalid_selector_is_exit_2_with_dbts_reason(jaffle):
    run = jaffle.cli("ls", "-s", "bogus:x")
    assert run.exit_code == 2
    assert "invalid selection: 'bogus' is not a valid method name" in run.stderr


def test_an_unknown_yaml_selector_is_exit_2(jaffle):
    run = jaffle.cli("ls", "--selector", "nope")
    assert run.exit_code == 2
    assert "Could not find selector named nope" in run.stderr


def test_an_empty_selection_says_so(jaffle):
    run = jaffle.cli("plan", "-s", "no_such_model", "--output", "json")
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["notices"] == [
        "nothing selected: the selection matches no model (as in dbt ls)"
    ]
    undeclared = jaffle.cli("plan", "-s", "stg_orders", "--output", "json")
    assert json.loads(undeclared.stdout)["notices"] == [
        "nothing selected: the selection picks 1 model(s), none of which declares meta.rdcrm"
    ]


def test_mode_narrows_dbts_selection(jaffle):
    run = jaffle.cli(
        "ls", "--output", "name", "-s", "tag:crm,mode:contacts", "--exclude", "crm_people"
    )
    assert run.stdout.split() == ["customers"]


def test_selector_with_select_is_refused_instead_of_ignored(jaffle):
    run = jaffle.cli("ls", "--selector", "deals_and_parents", "-s", "customers")
    assert run.exit_code == 2
    assert "dbt would silently ignore them" in run.stderr
