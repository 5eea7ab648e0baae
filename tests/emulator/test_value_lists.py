"""Value lists ``field:(a,"b c")`` over HTTP, as RD's RDQL page documents them (IN / NIN, quoted
items, custom fields), the way the client's batched ``match:`` lookups send them, and the
10,000-record cap applying to a list's filter as to any other."""

from __future__ import annotations

import pytest

from dbt_rdcrm.crm.rdql import value_list
from dbt_rdcrm.emulator import Emulator

AWKWARD = ["Acme, Inc.", "Tech (BR) Ltda", "São Paulo Comércio", "a:b", "or", "50% + tax"]


def names(response) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(r["name"] for r in response.json()["data"])


@pytest.fixture
def organizations(api):
    for name in [*AWKWARD, "Plain", "Other"]:
        api.create("organizations", {"name": name})


def test_a_list_of_quoted_names_finds_each_of_them(api, organizations):
    wanted = [*AWKWARD, "Nobody"]
    found = names(
        api.get("/organizations", filter=value_list("name", wanted), **{"page[size]": 200})
    )
    assert found == sorted(AWKWARD)


def test_items_compare_like_a_single_value_case_aside(api, organizations):
    assert names(api.get("/organizations", filter='name:("PLAIN","acme, inc.")')) == [
        "Acme, Inc.",
        "Plain",
    ]
    assert names(api.get("/organizations", filter='name:("Plai","Plain ")')) == []  # whole value


@pytest.mark.parametrize(
    "rdql",
    [
        'name:(Plain, "Other")',  # unquoted and quoted items, a space after the comma
        'name:( "Plain" , Other )',
        'name:("Plain",\tOther)',
        'name:(\n"Plain",\t"Other"\n)',  # any whitespace, before a quoted item too
    ],
)
def test_items_may_be_bare_or_quoted_with_spaces_around(api, organizations, rdql):
    assert names(api.get("/organizations", filter=rdql)) == ["Other", "Plain"]


def test_a_negated_list_is_not_in(api, organizations):
    found = names(api.get("/organizations", filter=f"-{value_list('name', AWKWARD)}"))
    assert found == sorted(n for n in names(api.get("/organizations")) if n not in AWKWARD)


def test_an_escaped_quote_inside_an_item(api):
    api.create("organizations", {"name": 'Say "hi"'})
    assert names(api.get("/organizations", filter='name:("Say \\"hi\\"",x)')) == ['Say "hi"']


def test_a_contacts_email_list_matches_any_of_its_addresses(api):
    api.create("contacts", {"name": "Two", "emails": [{"email": "a@x.com"}, {"email": "b@x.com"}]})
    api.create("contacts", {"name": "One", "emails": [{"email": "c@x.com"}]})
    assert names(api.get("/contacts", filter='email:("B@x.com","c@x.com")')) == ["One", "Two"]


@pytest.mark.parametrize(
    "rdql",
    ['name:("Plain"', 'name:("Plain"x)', 'name:("Plain",)', "name:()", 'name:("Pla'],
)
def test_malformed_lists_are_400(api, rdql):
    assert api.get("/organizations", filter=rdql).status_code == 400


def test_a_list_matching_more_than_10000_records_lists_only_the_first_10000(emu, make_api):
    records = [{"id": f"{i:024x}", "name": f"C{i % 2}"} for i in range(10_050)]
    with Emulator(rate_limit=0, fixtures={**emu.fixtures, "contacts": records}) as big:
        api = make_api(big)
        filter_ = 'name:("C0","C1")'
        last = api.get("/contacts", filter=filter_, **{"page[number]": 50, "page[size]": 200})
        assert last.status_code == 200 and len(last.json()["data"]) == 200
        past = api.get("/contacts", filter=filter_, **{"page[number]": 51, "page[size]": 200})
        assert past.status_code == 400
        assert "first 10,000 records" in past.json()["errors"][0]["detail"]
