"""Lists: paging, sorting, links written on the /api/v2/ prefix, the 10,000-record cap.

Reference pages: crm-v2-introduction ("Paginação", "Ordenação", "Notas sobre a listagem") and
each list page's "Ordenação" list (crm-v2-list-contacts, crm-v2-list-deals, ...).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests


@pytest.fixture
def thirty_contacts(api):
    return [api.create("contacts", {"name": f"Contato {i:02d}"}) for i in range(30)]


def test_default_page_size_is_20(api, thirty_contacts):
    # crm-v2-introduction: page[size] "Padrão: 20"
    assert len(api.get("/contacts").json()["data"]) == 20


def test_list_body_has_data_links_and_has_more(api, thirty_contacts):
    body = api.get("/contacts").json()
    assert set(body) == {"data", "links", "has_more"}
    assert body["has_more"] is True


def test_default_order_is_creation_order(api, thirty_contacts):
    names = [c["name"] for c in api.get("/contacts", **{"page[size]": 30}).json()["data"]]
    assert names == [c["name"] for c in thirty_contacts]


def test_second_page_holds_the_rest_and_has_no_more(api, thirty_contacts):
    body = api.get("/contacts", **{"page[number]": 2}).json()
    assert [c["id"] for c in body["data"]] == [c["id"] for c in thirty_contacts[20:]]
    assert body["has_more"] is False


def test_next_link_only_when_there_is_more(api, thirty_contacts):
    assert "next" in api.get("/contacts").json()["links"]
    assert "next" not in api.get("/contacts", **{"page[number]": 2}).json()["links"]


def test_exact_fit_has_no_more(api, thirty_contacts):
    assert api.get("/contacts", **{"page[size]": 30}).json()["has_more"] is False


def test_page_past_the_end_is_empty(api, thirty_contacts):
    body = api.get("/contacts", **{"page[number]": 3}).json()
    assert (body["data"], body["has_more"]) == ([], False)


def test_links_are_absolute_on_the_api_v2_prefix_of_the_emulator_host(api, emu, thirty_contacts):
    # crm-v2-introduction's example writes links on /crm/v2/; the real API was seen writing the
    # internal /api/v2/ prefix, which the emulator keeps (docs/emulator.md, "Differences")
    links = api.get("/contacts", filter="name:~contato", **{"page[number]": 2}).json()["links"]
    assert set(links) == {"first", "prev", "self", "last"}
    for url in links.values():
        assert url.startswith(f"{emu.url}/api/v2/contacts?")


def test_links_keep_the_filter_and_page_size(api, thirty_contacts):
    links = api.get("/contacts", filter="name:~contato", **{"page[size]": 10}).json()["links"]
    query = parse_qs(urlsplit(links["next"]).query)
    assert query == {"filter": ["name:~contato"], "page[number]": ["2"], "page[size]": ["10"]}


def test_last_link_points_at_the_last_page(api, thirty_contacts):
    last = api.get("/contacts", **{"page[size]": 10}).json()["links"]["last"]
    assert parse_qs(urlsplit(last).query)["page[number]"] == ["3"]


def test_following_next_link_verbatim_is_404_with_the_gateway_body(api, thirty_contacts):
    next_url = api.get("/contacts").json()["links"]["next"]
    response = api.session.get(next_url, timeout=5)
    assert response.status_code == 404
    assert response.json() == {"message": "no Route matched with those values"}


def test_next_link_rewritten_to_crm_v2_gives_page_two(api, thirty_contacts):
    next_url = api.get("/contacts").json()["links"]["next"].replace("/api/v2/", "/crm/v2/")
    body = api.session.get(next_url, timeout=5).json()
    assert [c["id"] for c in body["data"]] == [c["id"] for c in thirty_contacts[20:]]


def test_prev_link_only_after_the_first_page(api, thirty_contacts):
    # crm-v2-introduction: links first, prev, self, next, last
    assert "prev" not in api.get("/contacts").json()["links"]
    links = api.get("/contacts", **{"page[number]": 2, "page[size]": 10}).json()["links"]
    assert list(links) == ["first", "prev", "self", "next", "last"]
    assert parse_qs(urlsplit(links["prev"]).query)["page[number]"] == ["1"]


def test_page_size_200_is_accepted(api):
    assert api.get("/contacts", **{"page[size]": 200}).status_code == 200


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        pytest.param({"page[size]": 201}, "page[size]", id="page-size-above-200-400"),
        pytest.param({"page[size]": 0}, "page[size]", id="page-size-zero-400"),
        pytest.param({"page[size]": "ten"}, "page[size]", id="page-size-not-integer-400"),
        pytest.param({"page[number]": 0}, "page[number]", id="page-number-zero-400"),
        pytest.param({"page[number]": -1}, "page[number]", id="page-number-negative-400"),
        pytest.param({"page[number]": "1.5"}, "page[number]", id="page-number-not-integer-400"),
        pytest.param({"sort[name]": "up"}, "sort[name]", id="sort-direction-invalid-400"),
        pytest.param({"sort[birthday]": "asc"}, "sort[birthday]", id="sort-unknown-field-400"),
        # crm-v2-list-contacts sorts by name and created_at only
        pytest.param(
            {"sort[updated_at]": "asc"}, "sort[updated_at]", id="contacts-sort-updated-at-400"
        ),
    ],
)
def test_bad_list_parameter_is_400_naming_it(api, params, parameter):
    response = api.get("/contacts", **params)
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"] == {"parameter": parameter}


def test_sort_created_at_asc_is_creation_order(api, thirty_contacts):
    params = {"sort[created_at]": "asc", "page[size]": 30}
    ids = [c["id"] for c in api.get("/contacts", **params).json()["data"]]
    assert ids == [c["id"] for c in thirty_contacts]


def test_sort_created_at_desc_is_reverse_creation_order(api, thirty_contacts):
    params = {"sort[created_at]": "desc", "page[size]": 30}
    ids = [c["id"] for c in api.get("/contacts", **params).json()["data"]]
    assert ids == [c["id"] for c in reversed(thirty_contacts)]


def test_sort_by_name_desc(api):
    for name in ("Bia", "Ana", "Caio"):
        api.create("contacts", {"name": name})
    names = [c["name"] for c in api.get("/contacts", **{"sort[name]": "desc"}).json()["data"]]
    assert names == ["Caio", "Bia", "Ana"]


SORT_KEYS = [
    # resource, documented sort keys (each list page's "Ordenação"), one undocumented key
    pytest.param("/contacts", ["name", "created_at"], "updated_at", id="crm-v2-list-contacts"),
    pytest.param("/organizations", ["name", "created_at", "updated_at"], "owner_id", id="crm-v2-list-organizations"),
    pytest.param("/deals", ["name", "rating", "created_at", "updated_at", "closed_at"], "status", id="crm-v2-list-deals"),
    pytest.param("/custom_fields", ["slug", "order"], "name", id="crm-v2-list-custom-fields"),
    pytest.param("/pipelines", ["order"], "name", id="crm-v2-list-pipelines"),
    pytest.param("/pipelines/6621a1b2c3d4e5f678902001/stages", ["order"], "name", id="crm-v2-list-stages-from-pipeline"),
    pytest.param("/campaigns", ["name", "created_at"], "id", id="crm-v2-list-campaigns"),
    pytest.param("/segments", ["name"], "created_at", id="crm-v2-list-segments"),
    pytest.param("/sources", ["name"], "created_at", id="crm-v2-list-sources"),
    pytest.param("/lost_reasons", ["name", "created_at"], "id", id="crm-v2-list-lost-reasons"),
    pytest.param("/products", ["name"], "price", id="crm-v2-list-products"),
    pytest.param("/users", [], "name", id="crm-v2-list-users"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "keys", "undocumented"), SORT_KEYS)
def test_only_documented_sort_keys_are_accepted(api, path, keys, undocumented):
    for key in keys:
        assert api.get(path, **{f"sort[{key}]": "desc"}).status_code == 200, key
    response = api.get(path, **{f"sort[{undocumented}]": "asc"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"] == {"parameter": f"sort[{undocumented}]"}


def test_sort_parameter_is_kept_in_links(api, thirty_contacts):
    links = api.get("/contacts", **{"sort[created_at]": "desc"}).json()["links"]
    assert parse_qs(urlsplit(links["next"]).query)["sort[created_at]"] == ["desc"]


def test_listing_past_the_first_10000_records_is_400(api):
    response = api.get("/contacts", **{"page[number]": 51, "page[size]": 200})
    assert response.status_code == 400
    assert response.json()["errors"][0]["detail"] == (
        "It is only possible to list the first 10,000 records of the specified filter"
    )


def test_the_page_ending_at_record_10000_is_allowed(api):
    assert api.get("/contacts", **{"page[number]": 50, "page[size]": 200}).status_code == 200


def test_last_link_stops_at_the_10000_record_cap(emu, api, make_api):
    records = [{"id": f"{i:024x}", "name": f"C{i}"} for i in range(10_050)]
    fixtures = {**emu.fixtures, "contacts": records}
    from dbt_rdcrm.emulator import Emulator

    with Emulator(rate_limit=0, fixtures=fixtures) as big:
        links = make_api(big).get("/contacts", **{"page[size]": 200}).json()["links"]
    assert parse_qs(urlsplit(links["last"]).query)["page[number]"] == ["50"]


def test_api_v2_prefix_is_never_routed(emu):
    response = requests.get(f"{emu.url}/api/v2/contacts", timeout=5)
    assert response.status_code == 404
    assert response.json() == {"message": "no Route matched with those values"}
