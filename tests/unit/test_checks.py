"""validate's pure checks on hand-written specs and manifest nodes."""

import pytest

from dbt_rdcrm.config.checks import Severity, create_rules, key_tests, link_key_types
from dbt_rdcrm.config.spec_parsing import parse_sync
from dbt_rdcrm.dbt.manifest import ModelNode
from dbt_rdcrm.dbt.manifest_reader import manifest_from_dict

UID = "model.p.m"


def spec(rdcrm: dict, tested: dict | None = None):
    parsed, problems = parse_sync(
        "m",
        UID,
        rdcrm,
        "models.m.config.meta.rdcrm",
        tested_columns={c: frozenset(t) for c, t in (tested or {}).items()},
    )
    assert problems == []
    return parsed


def manifest(columns: dict | None = None, constraints: list | None = None) -> ModelNode:
    """The model as the manifest model reads a node with these columns and constraints."""
    node = {
        "name": "m",
        "resource_type": "model",
        "columns": columns or {},
        "constraints": constraints or [],
    }
    return manifest_from_dict({"nodes": {UID: node}}).models[0]


CONTACTS = {"mode": "contacts", "mapping": {"n": "name"}}


@pytest.mark.parametrize(
    ("key", "tested", "data", "paths"),
    [
        pytest.param("a", {"a": {"unique", "not_null"}}, manifest(), [], id="tested"),
        pytest.param("a", {}, manifest(), ["models.m.columns.a"], id="untested"),
        pytest.param(
            "a",
            {},
            manifest({"a": {"constraints": [{"type": "primary_key"}]}}),
            [],
            id="column-primary-key",
        ),
        pytest.param(
            ["a", "b"],
            {},
            manifest(constraints=[{"type": "primary_key", "columns": ["a", "b"]}]),
            [],
            id="model-primary-key",
        ),
        pytest.param(
            ["a", "b"],
            {"a": {"not_null"}, "b": {"not_null"}},
            manifest(constraints=[{"type": "unique", "columns": ["a"]}]),
            [],
            id="unique-subset-of-the-key",
        ),
        pytest.param(
            ["a", "b"],
            {"a": {"not_null"}, "b": {"not_null"}},
            manifest(),
            ["models.m.config.meta.rdcrm.key"],
            id="combination-untested",
        ),
        pytest.param(
            "A", {"a": {"unique", "not_null"}}, manifest(), [], id="column-names-ignore-case"
        ),
    ],
)
def test_key_tests(key, tested, data, paths):
    found = key_tests(data, spec({**CONTACTS, "key": key}, tested))
    assert [f.path for f in found] == paths
    assert all(f.severity is Severity.WARNING for f in found)


@pytest.mark.parametrize(
    ("rdcrm", "codes"),
    [
        pytest.param(
            {"mode": "deals", "key": "k", "mapping": {"n": "name"}, "values": {"status": "lost"}},
            ["deal-status"],
            id="constant-lost",
        ),
        pytest.param(
            {
                "mode": "deals",
                "key": "k",
                "mapping": {"n": "name"},
                "values": {"status": "ongoing"},
            },
            [],
            id="constant-ongoing",
        ),
        pytest.param(
            {"mode": "deals", "key": "k", "mapping": {"n": "name", "s": "status"}},
            [],
            id="status-from-a-column",
        ),
        pytest.param(
            {"mode": "deals", "mapping": {"i": "_id"}, "values": {"status": "won"}},
            [],
            id="updates-only",
        ),
        pytest.param(
            {"mode": "organizations", "key": "k", "mapping": {"w": "website"}},
            ["name-required"],
            id="no-name",
        ),
        pytest.param(
            {"mode": "organizations", "key": "k", "values": {"name": "[[ a ]]"}},
            [],
            id="name-from-a-template",
        ),
    ],
)
def test_create_rules(rdcrm, codes):
    assert [f.code for f in create_rules(spec(rdcrm))] == codes


def test_link_key_types_compare_families_not_spellings():
    child = spec(
        {
            **CONTACTS,
            "key": "k",
            "links": {"organization_id": {"model": "orgs", "column": "org_code"}},
        }
    )
    parent, _ = parse_sync(
        "orgs",
        "model.p.orgs",
        {"mode": "organizations", "key": "code"},
        "models.orgs.config.meta.rdcrm",
    )
    same = link_key_types(
        child, {"org_code": "character varying"}, {"orgs": (parent, {"code": "VARCHAR"})}
    )
    differ = link_key_types(child, {"org_code": "BIGINT"}, {"orgs": (parent, {"code": "text"})})
    assert same == []
    assert [f.path for f in differ] == ["models.m.config.meta.rdcrm.links.organization_id.column"]


def test_an_organization_phone_is_a_field_the_crm_does_not_keep():
    from dbt_rdcrm.config.checks import fields_the_crm_drops
    from dbt_rdcrm.config.spec_parsing import parse_sync

    spec, _ = parse_sync(
        "orgs",
        "model.p.orgs",
        {"mode": "organizations", "key": "k", "mapping": {"n": "name", "tel": "phone"}},
        "models.orgs.config.meta.rdcrm",
    )
    (finding,) = fields_the_crm_drops(spec)
    assert finding.path == "models.orgs.config.meta.rdcrm.mapping.tel"
    assert "v2 organizations have no phone" in finding.message
