"""RDQL filters on list endpoints, against records seeded through fixtures.

Reference pages: crm-v2-rdql-filtering (operators, data types, and/or, parentheses, custom
fields) and each list page's "Filtro" table (crm-v2-list-contacts, crm-v2-list-organizations,
crm-v2-list-deals, crm-v2-list-users, crm-v2-list-custom-fields). Each case id names its rule.
"""

from __future__ import annotations

import pytest
import requests

from dbt_rdcrm.emulator import Emulator
from dbt_rdcrm.emulator.fixtures import DEFAULT_FIXTURES
from dbt_rdcrm.emulator.rdql import Condition, Group, RdqlError, parse

ORG_A, ORG_B = "6621a1b2c3d4e5f678905678", "6621a1b2c3d4e5f678905679"
SEGMENT_1, SEGMENT_2 = (s["id"] for s in DEFAULT_FIXTURES["segments"])
ANA, BRUNO, CARLA = (
    "c00000000000000000000001",
    "c00000000000000000000002",
    "c00000000000000000000003",
)
OTHER_PIPELINE = DEFAULT_FIXTURES["pipelines"][1]["id"]
LOST_REASON = DEFAULT_FIXTURES["lost_reasons"][0]["id"]
USERS = [
    *DEFAULT_FIXTURES["users"],
    {"id": "a00000000000000000000002", "name": "Inativa", "email": "i@x.com", "active": False},
    {"id": "a00000000000000000000003", "name": "Oculta", "email": "o@x.com", "visible": False},
]
CUSTOM_FIELDS = [
    *DEFAULT_FIXTURES["custom_fields"],
    {"id": "aa0000000000000000000001", "slug": "contrato", "name": "Contrato", "entity": "deal", "type": "text", "required_rules": [{"property": "deal_stage_id", "value": "6621a1b2c3d4e5f678900004", "always": False}], "display_rules": [{"property": "deal_pipeline_id", "value": OTHER_PIPELINE, "always": False}]},
    {"id": "aa0000000000000000000002", "slug": "origem", "name": "Origem", "entity": "contact", "type": "text", "required_rules": [{"always": True}]},
]  # fmt: skip

SEEDED = {
    **DEFAULT_FIXTURES,
    "users": USERS,
    "custom_fields": CUSTOM_FIELDS,
    "organizations": [
        {"id": ORG_A, "name": "Empresa Exemplo Ltda", "segment_ids": [SEGMENT_1, SEGMENT_2]},
        {"id": ORG_B, "name": "Outra Empresa SA", "segment_ids": [SEGMENT_2], "created_at": "2026-01-10T10:00:00.000Z"},
    ],
    "contacts": [
        {"id": ANA, "name": "Ana", "job_title": "CFO", "organization_id": ORG_A, "emails": [{"email": "ana@example.com"}, {"email": "ana.souza@work.com"}], "phones": [{"phone": "+55 11 1111-1111"}], "custom_fields": {"cpf": "111", "origem": "site"}, "created_at": "2026-11-27T21:40:00.000Z"},
        {"id": BRUNO, "name": "Ana Souza", "job_title": "CEO", "emails": [{"email": "bruno@example.com"}], "custom_fields": {"cpf": "222", "origem": "site"}, "created_at": "2026-11-27T21:40:00.500Z"},
        {"id": CARLA, "name": "Carla Dias", "organization_id": ORG_B, "custom_fields": {"origem": "feira"}, "created_at": "2026-11-27T21:41:00.000Z"},
    ],
    "deals": [
        {"name": "Deal won 5", "status": "won", "closed_at": "2026-11-28T10:00:00.000Z", "rating": 5, "contact_ids": [ANA, BRUNO], "expected_close_date": "2026-12-15", "custom_fields": {"valor_credito": 1500}},
        {"name": "Deal lost 2", "status": "lost", "lost_reason_id": LOST_REASON, "closed_at": "2026-11-29T10:00:00.000Z", "rating": 2, "contact_ids": [CARLA], "expected_close_date": "2026-11-30", "custom_fields": {"valor_credito": 99.5}},
        {"name": "Deal ongoing", "rating": 4, "organization_id": ORG_A, "pipeline_id": OTHER_PIPELINE},
        {"name": "Deal paused", "status": "paused"},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def seeded():
    with Emulator(rate_limit=0, fixtures=SEEDED) as emulator:
        yield emulator


def listing(emulator: Emulator, resource: str, rdql: str) -> requests.Response:
    return requests.get(
        f"{emulator.base_url}/{resource}",
        params={"filter": rdql, "page[size]": 100},
        headers={"Authorization": "Bearer emulator-token"},
        timeout=5,
    )


MATCH_CASES = [
    # resource, filter, expected names (in creation order)
    pytest.param("contacts", "", ["Ana", "Ana Souza", "Carla Dias"], id="empty-filter-matches-all"),
    pytest.param("contacts", "name:ana", ["Ana"], id="equal-is-exact-but-case-insensitive"),
    pytest.param("contacts", 'name:"ana souza"', ["Ana Souza"], id="quoted-value-with-space"),
    pytest.param("contacts", "name:~SOUZA", ["Ana Souza"], id="tilde-is-case-insensitive-contains"),
    pytest.param("contacts", "name:(Ana,\"Carla Dias\")", ["Ana", "Carla Dias"], id="in-list-with-quoted-item"),
    pytest.param("contacts", "-name:ana", ["Ana Souza", "Carla Dias"], id="minus-negates"),
    pytest.param("contacts", "email:ANA.SOUZA@work.com", ["Ana"], id="email-matches-any-address-case-insensitively"),
    pytest.param("contacts", "phone:\"+55 11 1111-1111\"", ["Ana"], id="phone-matches-any-phone"),
    pytest.param("contacts", "job_title:ceo", ["Ana Souza"], id="job-title-equal"),
    pytest.param("contacts", f"organization_id:{ORG_B}", ["Carla Dias"], id="organization-id-equal"),
    pytest.param("contacts", "@cpf:222", ["Ana Souza"], id="custom-field-by-slug"),
    # crm-v2-rdql-filtering, "Tipos de dados": DateTime "2023-01-01 12:00:00", Date 2023-01-01
    pytest.param("contacts", 'created_at:>="2026-11-27 21:40:00"', ["Ana", "Ana Souza", "Carla Dias"], id="datetime-ge-compares-as-time"),
    pytest.param("contacts", 'created_at:<="2026-11-27 21:40:00"', ["Ana", "Ana Souza"], id="datetime-compares-at-the-second-written"),
    pytest.param("contacts", 'created_at:<="2026-11-27 23:59:59"', ["Ana", "Ana Souza", "Carla Dias"], id="datetime-le-end-of-day-includes-the-day"),
    pytest.param("contacts", 'created_at:>"2026-11-27 21:40:00"', ["Carla Dias"], id="datetime-gt"),
    pytest.param("contacts", 'created_at:"2026-11-27 21:40:00"', ["Ana", "Ana Souza"], id="datetime-equal-within-the-second"),
    pytest.param("contacts", 'created_at:>="2026-11-27 21:40:00.250"', ["Ana Souza", "Carla Dias"], id="datetime-with-fraction-compares-at-the-millisecond"),
    pytest.param("contacts", "created_at:2026-11-27", ["Ana", "Ana Souza", "Carla Dias"], id="date-on-a-datetime-field-compares-the-day"),
    pytest.param("contacts", "created_at:<2026-11-27", [], id="date-lt-on-a-datetime-field"),
    pytest.param("contacts", "updated_at:>=2026-11-27", ["Ana", "Ana Souza", "Carla Dias"], id="contacts-updated-at-filterable"),
    pytest.param("contacts", "name:~ana -email:bruno@example.com", ["Ana"], id="space-is-and"),
    pytest.param("organizations", f"segment_ids:{SEGMENT_1}", ["Empresa Exemplo Ltda"], id="segment-ids-membership"),
    pytest.param("organizations", "created_at:<2026-02-01", ["Outra Empresa SA"], id="timestamp-against-date-prefix"),
    pytest.param("deals", "status:(won,lost)", ["Deal won 5", "Deal lost 2"], id="status-in"),
    pytest.param("deals", "-status:lost", ["Deal won 5", "Deal ongoing", "Deal paused"], id="status-not"),
    pytest.param("deals", "rating:>4", ["Deal won 5"], id="rating-greater-than"),
    pytest.param("deals", "rating:>=4", ["Deal won 5", "Deal ongoing"], id="rating-greater-or-equal"),
    pytest.param("deals", "rating:<4", ["Deal lost 2"], id="rating-less-than"),
    pytest.param("deals", "rating:<=2", ["Deal lost 2"], id="rating-less-or-equal"),
    pytest.param("deals", "rating:10", [], id="numbers-compare-numerically"),
    pytest.param("deals", "expected_close_date:>=2026-12-01", ["Deal won 5"], id="date-compares-as-string"),
    pytest.param("deals", 'closed_at:>="2026-11-29 00:00:00"', ["Deal lost 2"], id="deals-closed-at-datetime"),
    pytest.param("deals", f"lost_reason_id:{LOST_REASON}", ["Deal lost 2"], id="deals-lost-reason-id"),
    pytest.param("deals", "-has:product", ["Deal won 5", "Deal lost 2", "Deal ongoing", "Deal paused"], id="deals-not-has-product"),
    pytest.param("deals", "has:product", [], id="deals-has-product-none-yet"),
    pytest.param("deals", f"pipeline_id:{OTHER_PIPELINE}", ["Deal ongoing"], id="pipeline-id-equal"),
    pytest.param("deals", "@valor_credito:>100", ["Deal won 5"], id="number-custom-field-compares-numerically"),
    pytest.param("deals", "status:won rating:>3", ["Deal won 5"], id="and-of-two-conditions"),
    # crm-v2-rdql-filtering, "Agrupamentos e operadores lógicos"
    pytest.param("deals", "status:won and rating:>3", ["Deal won 5"], id="explicit-and"),
    pytest.param("deals", "status:won or status:lost", ["Deal won 5", "Deal lost 2"], id="or"),
    pytest.param("deals", "(status:won or status:lost) and rating:<3", ["Deal lost 2"], id="parenthesised-or-and"),
    pytest.param("deals", "status:paused or (status:won rating:5)", ["Deal won 5", "Deal paused"], id="or-binds-looser-than-and"),
    pytest.param("deals", "-status:(won,lost)", ["Deal ongoing", "Deal paused"], id="not-in"),
    pytest.param("contacts", "@origem:site or name:~dias", ["Ana", "Ana Souza", "Carla Dias"], id="or-across-fields"),
    # crm-v2-list-users: is:active, is:visible
    pytest.param("users", "is:active", ["Usuária Emulador", "Oculta"], id="users-is-active"),
    pytest.param("users", "-is:active", ["Inativa"], id="users-not-active"),
    pytest.param("users", "is:visible", ["Usuária Emulador", "Inativa"], id="users-is-visible"),
    # crm-v2-list-custom-fields: entity, slug, is:required, is:visible
    pytest.param("custom_fields", "is:required", ["Origem"], id="custom-fields-is-required"),
    pytest.param("custom_fields", "-is:visible", ["Contrato"], id="custom-fields-not-visible"),
    pytest.param("custom_fields", "entity:deal slug:contrato", ["Contrato"], id="custom-fields-entity-and-slug"),
    # crm-v2-list-campaigns, -segments, -sources, -lost-reasons, -products: name
    pytest.param("lost_reasons", "name:~pre", ["Preço"], id="lost-reasons-name"),
    pytest.param("products", "is:visible", ["Consultoria"], id="products-is-visible"),
]  # fmt: skip


@pytest.mark.parametrize(("resource", "rdql", "names"), MATCH_CASES)
def test_filter_matches(seeded, resource, rdql, names):
    response = listing(seeded, resource, rdql)
    assert response.status_code == 200, response.text
    assert [r["name"] for r in response.json()["data"]] == names


ERROR_CASES = [
    # the client's recovery lookup form: ISO with T and Z is not an RDQL date-time
    pytest.param("contacts", "created_at:>=2026-11-27T21:40:00.000Z", "created_at", id="iso-timestamp-is-not-an-rdql-datetime-400"),
    pytest.param("contacts", 'created_at:>="27/11/2026 21:40:00"', "created_at", id="datetime-in-another-format-400"),
    pytest.param("contacts", "created_at:>=2026-11-27 21:40:00", "21", id="unquoted-datetime-400"),
    pytest.param("deals", "expected_close_date:>=2026-12", "expected_close_date", id="date-field-needs-a-full-date-400"),
    pytest.param("deals", "rating:>high", "rating", id="integer-field-needs-an-integer-400"),
    pytest.param("deals", "rating:~4", "rating", id="match-only-on-text-400"),
    pytest.param("deals", f"contact_id:{BRUNO}", "contact_id", id="deals-contact-id-not-documented-400"),
    pytest.param("contacts", "has:product", "has:product", id="has-product-only-on-deals-400"),
    pytest.param("deals", "is:active", "is:active", id="is-active-only-on-users-400"),
    pytest.param("pipelines", "name:Vendas", "pipelines", id="pipelines-take-no-filter-400"),
    pytest.param("users", "name:Bea", "name", id="users-filter-only-flags-400"),
    pytest.param("deals", "status:won or", "or", id="dangling-or-400"),
    pytest.param("deals", "(status:won or status:lost", ")", id="unclosed-group-400"),
    # RD's n8n node joins an organization date range with ';', which RDQL does not document
    pytest.param("organizations", 'created_at:>="2026-01-01 00:00:00.000";created_at:<="2026-12-31 00:00:00.000"', "';'", id="semicolon-is-not-an-operator-400"),
    pytest.param("contacts", "birthday:1990-01-01", "birthday", id="non-filterable-field-400"),
    pytest.param("organizations", "url:x", "url", id="organization-url-not-filterable-400"),
    pytest.param("contacts", "@cnpj:1", "@cnpj", id="custom-field-of-another-entity-400"),
    pytest.param("contacts", "name", "name", id="missing-colon-400"),
    pytest.param("contacts", "name:", "name", id="missing-value-400"),
    pytest.param("contacts", 'name:"open', "name", id="unterminated-quote-400"),
    pytest.param("deals", "status:(won,", "status", id="unterminated-list-400"),
    pytest.param("deals", "status:(won,,lost)", "status", id="empty-list-item-400"),
    pytest.param("contacts", 'name:"a"b', "name", id="junk-after-quoted-value-400"),
]  # fmt: skip


@pytest.mark.parametrize(("resource", "rdql", "named"), ERROR_CASES)
def test_bad_filter_is_400_naming_the_field(seeded, resource, rdql, named):
    response = listing(seeded, resource, rdql)
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert named in error["detail"]
    assert error["source"] == {"parameter": "filter"}


def test_parser_reads_escaped_quotes_inside_a_quoted_value():
    assert parse(r'name:"say \"hi\""') == Condition("name", "eq", ('say "hi"',))


def test_parser_builds_or_of_ands_with_groups():
    tree = parse("(status:won or status:lost) and rating:>3 or -has:product")
    won, lost = Condition("status", "eq", ("won",)), Condition("status", "eq", ("lost",))
    rating = Condition("rating", "gt", ("3",))
    no_product = Condition("has", "flag", ("product",), negate=True)
    assert tree == Group("or", (Group("and", (Group("or", (won, lost)), rating)), no_product))


def test_parser_rejects_a_term_without_a_field():
    with pytest.raises(RdqlError):
        parse(":value")
