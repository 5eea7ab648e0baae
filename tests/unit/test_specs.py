"""meta.rdcrm parsing: every problem at once, each with its YAML path and what is allowed."""

import pytest

from dbt_rdcrm.config.catalog import check_links, sync_order
from dbt_rdcrm.config.fields import Mode
from dbt_rdcrm.config.spec_parsing import parse_sync
from dbt_rdcrm.errors import ConfigError

P = "models.m.config.meta.rdcrm"


def parse(raw):
    return parse_sync("m", "model.p.m", raw, P)


def messages(raw):
    spec, problems = parse(raw)
    assert spec is None
    return [str(p) for p in problems]


def test_a_valid_block_becomes_a_frozen_spec():
    spec, problems = parse(
        {
            "mode": "contacts",
            "key": "id",
            "partial_success": True,
            "mapping": {"full_name": "name", "mail": "email", "cpf": "@cpf"},
        }
    )
    assert problems == []
    assert spec.mode is Mode.CONTACTS
    assert spec.key == ("id",)
    assert spec.partial_success is True
    assert [s.field for s in spec.sources] == ["name", "email", "@cpf"]
    assert spec.columns == ("id", "full_name", "mail", "cpf")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            {"mode": "contact", "key": "k"},
            [f"{P}.mode: got 'contact', expected one of contacts, deals, organizations"],
            id="unknown-mode",
        ),
        pytest.param(
            {"key": "k"},
            [f"{P}.mode: got nothing, expected one of contacts, deals, organizations"],
            id="missing-mode",
        ),
        pytest.param(
            {"mode": "deals", "key": "k", "mapings": {}},
            [
                f"{P}.mapings: unknown key, expected one of identity, key, links, mapping, mass_change, match, "
                "mode, partial_success, status_on_create, values"
            ],
            id="unknown-top-level-key",
        ),
        pytest.param(
            {"mode": "deals", "key": "k", "mapping": {"x": "amount"}},
            [
                f"{P}.mapping.x: unknown field 'amount' for mode deals, expected one of _id, "
                "name, status, contact_id, organization_id, stage_id, pipeline_id, owner_id, "
                "campaign_id, expected_close_date, rating, one_time_price, recurrence_price, "
                "source_id, lost_reason_id, @<custom_field_slug>"
            ],
            id="unknown-field-for-mode",
        ),
        pytest.param(
            {"mode": "contacts", "key": "k", "mapping": {"x": "@bad slug"}},
            [
                f"{P}.mapping.x: malformed custom field '@bad slug', expected @ followed by "
                "the field's slug (letters, digits, _ or -)"
            ],
            id="malformed-slug",
        ),
        pytest.param(
            {"mode": "contacts", "key": "k", "mapping": {"a": "name", "b": "name"}},
            [
                f"{P}.mapping.b: field 'name' is already filled by {P}.mapping.a: one "
                "source per field"
            ],
            id="two-columns-one-field",
        ),
        pytest.param(
            {"mode": "contacts", "key": "k", "partial_success": "yes"},
            [f"{P}.partial_success: got 'yes', expected true or false"],
            id="partial-success-not-bool",
        ),
        pytest.param(
            {"mode": "contacts", "key": "id", "identity": "dbt_key", "mapping": {"n": "name"}},
            [
                f"{P}.identity: got 'dbt_key', expected a custom field written @slug "
                '(e.g. "@dbt_key") that holds each row\'s key in the CRM'
            ],
            id="identity-not-a-slug",
        ),
        pytest.param(
            {
                "mode": "contacts",
                "key": "id",
                "identity": "@k",
                "mapping": {"n": "name", "c": "@k"},
            },
            [f"{P}.identity: @k is also filled by {P}.mapping.c: the identity field holds the key"],
            id="identity-also-mapped",
        ),
        pytest.param(
            {"mode": "contacts", "key": 3},
            [f"{P}.key: got 3, expected a column name or a list of column names"],
            id="key-wrong-type",
        ),
        pytest.param(
            {"mode": "contacts", "key": "k", "mapping": ["name"]},
            [f"{P}.mapping: expected a mapping of column: field"],
            id="mapping-not-a-dict",
        ),
        pytest.param(
            {"mode": "deals", "key": "k", "values": {"name": "[[ a ]"}},
            [f"{P}.values.name: invalid template: unexpected ']' (line 1)"],
            id="template-syntax-error",
        ),
        pytest.param(
            {"mode": "deals", "key": "k", "values": {"rating": 9}},
            [f"{P}.values.rating: constant 9 is not valid: rating must be an integer from 1 to 5"],
            id="constant-out-of-range",
        ),
        pytest.param(
            {
                "mode": "organizations",
                "key": "k",
                "links": {"organization_id": {"model": "o", "column": "c"}},
            },
            [
                f"{P}.links.organization_id: field 'organization_id' cannot be linked in "
                "mode organizations, expected one of none for this mode"
            ],
            id="link-not-allowed-for-mode",
        ),
        pytest.param(
            {"mode": "contacts", "key": "k", "match": "email"},
            [f"{P}.match: matches on 'email', but no column, value or template fills that field"],
            id="match-on-unfilled-field",
        ),
        pytest.param(
            {"mode": "deals", "key": "k", "match": "stage_id"},
            [f"{P}.match: got 'stage_id', expected one of name, @<custom_field_slug>"],
            id="match-field-not-allowed",
        ),
        pytest.param(
            "contacts",
            [
                f"{P}: got str, expected a mapping with keys identity, key, links, mapping, mass_change, match, "
                "mode, partial_success, status_on_create, values"
            ],
            id="block-not-a-mapping",
        ),
    ],
)
def test_config_problem_names_path_and_allowed_values(raw, expected):
    assert messages(raw) == expected


def test_all_problems_are_reported_together():
    found = messages(
        {
            "mode": "contacts",
            "key": "k",
            "extra": 1,
            "mapping": {"a": "nope", "b": "@"},
            "partial_success": 1,
        }
    )
    assert len(found) == 4


def test_record_id_column_is_the_default_key():
    spec, _ = parse({"mode": "organizations", "mapping": {"crm_id": "_id", "w": "website"}})
    assert spec.key == ("crm_id",)


def test_template_columns_are_read():
    spec, _ = parse(
        {
            "mode": "deals",
            "key": "k",
            "values": {"name": "[[ first ]] [[ last ]]", "status": "ongoing"},
        }
    )
    assert spec.columns == ("k", "first", "last")


def test_fingerprint_changes_with_the_mapping_only():
    a, _ = parse({"mode": "contacts", "key": "k", "mapping": {"n": "name"}})
    b, _ = parse(
        {"mode": "contacts", "key": "k", "mapping": {"n": "name"}, "partial_success": True}
    )
    c, _ = parse({"mode": "contacts", "key": "k", "mapping": {"n": "job_title"}})
    assert a.fingerprint == b.fingerprint != c.fingerprint


def _spec(name, mode, links=None):
    raw = {"mode": mode, "key": "k", "mapping": {"n": "name"}}
    if links:
        raw["links"] = links
    spec, problems = parse_sync(name, f"model.p.{name}", raw, f"models.{name}.config.meta.rdcrm")
    assert not problems
    return spec


def test_links_must_name_a_declared_sync_of_the_right_mode():
    deals = _spec(
        "deals",
        "deals",
        {
            "organization_id": {"model": "people", "column": "o"},
            "contact_id": {"model": "ghost", "column": "c"},
        },
    )
    people = _spec("people", "contacts")
    assert [str(p) for p in check_links([deals, people])] == [
        "models.deals.config.meta.rdcrm.links.organization_id.model: 'people' syncs contacts, "
        "but organization_id needs a model in mode organizations",
        "models.deals.config.meta.rdcrm.links.contact_id.model: 'ghost' is not a declared rdcrm "
        "sync (declared: deals, people)",
    ]


def test_parents_sync_before_children():
    orgs = _spec("orgs", "organizations")
    people = _spec("people", "contacts", {"organization_id": {"model": "orgs", "column": "o"}})
    deals = _spec(
        "a_deals",
        "deals",
        {
            "organization_id": {"model": "orgs", "column": "o"},
            "contact_id": {"model": "people", "column": "p"},
        },
    )
    assert [s.model for s in sync_order([deals, people, orgs])] == ["orgs", "people", "a_deals"]


def test_a_link_cycle_is_a_config_error():
    a = _spec("a", "contacts", {"organization_id": {"model": "b", "column": "x"}})
    b = _spec("b", "contacts", {"organization_id": {"model": "a", "column": "x"}})
    with pytest.raises(ConfigError, match="links form a cycle: a -> b -> a"):
        sync_order([a, b])


def test_a_sync_without_key_is_identified_by_content():
    """The original destination's configuration (mode, mapping, partial success) is accepted."""
    spec, problems = parse({"mode": "contacts", "mapping": {"n": "name", "e": "email"}})
    assert problems == []
    assert spec.keyless and spec.key == ()
    assert spec.columns == ("n", "e")


def test_identity_names_a_custom_field_slug():
    spec, problems = parse(
        {"mode": "contacts", "key": "id", "identity": "@dbt_key", "mapping": {"n": "name"}}
    )
    assert problems == [] and spec.identity == "@dbt_key"
