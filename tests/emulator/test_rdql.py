"""RDQL filters on list endpoints, against records seeded through fixtures."""

from __future__ import annotations

import pytest
import requests

from dbt_rdcrm.emulator import Emulator
from dbt_rdcrm.emulator.fixtures import DEFAULT_FIXTURES
from dbt_rdcrm.emulator.rdql import Condition, RdqlError, parse

ORG_A, ORG_B = "6621a1b2c3d4e5f678905678", "6621a1b2c3d4e5f678905679"
SEGMENT_1, SEGMENT_2 = (s["id"] for s in DEFAULT_FIXTURES["segments"])
ANA, BRUNO, CARLA = (
    "c00000000000000000000001",
    "c00000000000000000000002",
    "c00000000000000000000003",
)
OTHER_PIPELINE = DEFAULT_FIXTURES["pipelines"][1]["id"]

SEEDED = {
    **DEFAULT_FIXTURES,
    "organizations": [
        {"id": ORG_A, "name": "Empresa Exemplo Ltda", "segment_ids": [SEGMENT_1, SEGMENT_2]},
        {"id": ORG_B, "name": "Outra Empresa SA", "segment_ids": [SEGMENT_2], "created_at": "2026-01-10T10:00:00.000Z"},
    ],
    "contacts": [
        {"id": ANA, "name": "Ana", "job_title": "CFO", "organization_id": ORG_A, "emails": [{"email": "ana@example.com"}, {"email": "ana.souza@work.com"}], "phones": [{"phone": "+55 11 1111-1111"}], "custom_fields": {"cpf": "111"}, "created_at": "2026-11-27T21:40:00.000Z"},
        {"id": BRUNO, "name": "Ana Souza", "job_title": "CEO", "emails": [{"email": "bruno@example.com"}], "custom_fields": {"cpf": "222"}, "created_at": "2026-11-27T21:40:00.500Z"},
        {"id": CARLA, "name": "Carla Dias", "organization_id": ORG_B, "created_at": "2026-11-27T21:41:00.000Z"},
    ],
    "deals": [
        {"name": "Deal won 5", "status": "won", "rating": 5, "contact_ids": [ANA, BRUNO], "expected_close_date": "2026-12-15", "custom_fields": {"valor_credito": 1500}},
        {"name": "Deal lost 2", "status": "lost", "rating": 2, "contact_ids": [CARLA], "expected_close_date": "2026-11-30", "custom_fields": {"valor_credito": 99.5}},
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
        params={"filter": rdql, "page[size]": 200},
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
    pytest.param("contacts", "created_at:>=2026-11-27T21:40:00.500Z", ["Ana Souza", "Carla Dias"], id="timestamp-compares-as-string"),
    pytest.param("contacts", "created_at:<2026-11-27T21:40:00.500Z", ["Ana"], id="timestamp-less-than"),
    pytest.param("contacts", 'created_at:>="2026-11-27 21:40:00"', ["Ana", "Ana Souza", "Carla Dias"], id="date-time-to-the-second"),
    pytest.param("contacts", 'created_at:>"2026-11-27 21:40:00"', ["Carla Dias"], id="date-time-after-the-second"),
    pytest.param("contacts", 'created_at:<"2026-11-27 21:41:00"', ["Ana", "Ana Souza"], id="date-time-before"),
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
    pytest.param("deals", f"contact_id:{BRUNO}", ["Deal won 5"], id="contact-id-matches-membership"),
    pytest.param("deals", f"pipeline_id:{OTHER_PIPELINE}", ["Deal ongoing"], id="pipeline-id-equal"),
    pytest.param("deals", "@valor_credito:>100", ["Deal won 5"], id="number-custom-field-compares-numerically"),
    pytest.param("deals", "status:won rating:>3", ["Deal won 5"], id="and-of-two-conditions"),
]  # fmt: skip


@pytest.mark.parametrize(("resource", "rdql", "names"), MATCH_CASES)
def test_filter_matches(seeded, resource, rdql, names):
    response = listing(seeded, resource, rdql)
    assert response.status_code == 200, response.text
    assert [r["name"] for r in response.json()["data"]] == names


ERROR_CASES = [
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
    assert parse(r'name:"say \"hi\""') == [Condition("name", "eq", ('say "hi"',))]


def test_parser_rejects_a_term_without_a_field():
    with pytest.raises(RdqlError):
        parse(":value")
