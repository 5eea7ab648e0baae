"""dbt-style selection over declared syncs."""

import pytest

from dbt_rdcrm.config.specs import parse_sync
from dbt_rdcrm.dbt.selection import select
from dbt_rdcrm.errors import UsageError


def _spec(name, mode="contacts", tags=(), path="models/crm/x.sql"):
    spec, _ = parse_sync(
        name,
        f"model.p.{name}",
        {"mode": mode, "key": "k"},
        f"models.{name}.config.meta.rdcrm",
        tags=tuple(tags),
        fqn=("p", path.split("/")[1], name),
        original_file_path=path,
    )
    return spec


SPECS = [
    _spec("crm_contacts", tags=["daily"]),
    _spec("crm_deals", "deals", ["hourly"]),
    _spec("other_orgs", "organizations", path="models/other/o.sql"),
]


@pytest.mark.parametrize(
    ("include", "exclude", "expected"),
    [
        pytest.param((), (), ["crm_contacts", "crm_deals", "other_orgs"], id="all"),
        pytest.param(("crm_deals",), (), ["crm_deals"], id="by-name"),
        pytest.param(("crm_*",), (), ["crm_contacts", "crm_deals"], id="wildcard"),
        pytest.param(("tag:daily",), (), ["crm_contacts"], id="tag"),
        pytest.param(("path:models/other",), (), ["other_orgs"], id="path"),
        pytest.param(("p.crm",), (), ["crm_contacts", "crm_deals"], id="fqn-prefix"),
        pytest.param(("mode:deals",), (), ["crm_deals"], id="mode"),
        pytest.param(
            ("crm_* other_orgs",),
            ("crm_deals",),
            ["crm_contacts", "other_orgs"],
            id="union-minus-exclude",
        ),
        pytest.param(("crm_*,tag:hourly",), (), ["crm_deals"], id="intersection"),
    ],
)
def test_selection(include, exclude, expected):
    assert [s.model for s in select(SPECS, include, exclude)] == expected


def test_unknown_selector_method_is_a_usage_error():
    with pytest.raises(UsageError, match="unsupported selector method 'config'"):
        select(SPECS, ["config:materialized"])
