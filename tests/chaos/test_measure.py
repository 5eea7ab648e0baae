"""The campaign's figures on hand-made CRM states: what counts as a duplicate, a missing row, a
wrong adoption and a row not in step."""

from __future__ import annotations

import sys

import pytest
from support import REPO

sys.path.insert(0, str(REPO / "scripts"))

from chaos.measure import measure  # noqa: E402

ORG = {
    "company_code": "O1",
    "company_name": "Padaria Sá Ltda",
    "company_website": None,
    "company_phone": None,
    "cnpj": None,
}


def contact(key: str, name: str = "Maria Silva", email: str | None = None) -> dict:
    return {
        "customer_id": key,
        "full_name": name,
        "contact_email": email,
        "phone_number": None,
        "cpf": None,
        "company_code": "O1",
    }


def record(record_id: str, name: str = "Maria Silva", email: str | None = None) -> dict:
    return {
        "id": record_id,
        "name": name,
        "emails": [{"email": email}] if email else [],
        "phones": [],
        "custom_fields": {},
        "organization_id": "o" * 24,
    }


ORG_RECORD = {
    "id": "o" * 24,
    "name": "Padaria Sá Ltda",
    "url": None,
    "phones": [],
    "custom_fields": {},
}


def figures(contacts: list[dict], records: list[dict], ids: dict[str, str], truth=None):
    rows = {"crm_organizations": [ORG], "crm_contacts": contacts, "crm_deals": []}
    id_map = [{"model_name": "crm_organizations", "row_key": "O1", "crm_id": "o" * 24}]
    id_map += [{"model_name": "crm_contacts", "row_key": k, "crm_id": i} for k, i in ids.items()]
    crm = {"organizations": [ORG_RECORD], "contacts": records, "deals": []}
    return measure(rows, id_map, crm, fixture_ids=set(), truth=truth).as_tuple()


def test_identical_rows_need_one_record_each():
    rows = [contact("C1"), contact("C2")]
    assert figures(
        rows, [record("a" * 24), record("b" * 24)], {"C1": "a" * 24, "C2": "b" * 24}
    ) == (0, 0, 0, 0)


def test_identical_rows_sharing_one_record_are_one_missing_and_one_wrong():
    rows = [contact("C1"), contact("C2")]
    assert figures(rows, [record("a" * 24)], {"C1": "a" * 24, "C2": "a" * 24}) == (0, 1, 1, 0)


def test_a_record_no_row_owns_is_a_duplicate():
    rows = [contact("C1", email="m@x.com")]
    records = [record("a" * 24, email="m@x.com"), record("b" * 24, email="m@x.com")]
    assert figures(rows, records, {"C1": "a" * 24}) == (1, 0, 0, 0)


def test_two_marias_adopting_the_first_ones_record():
    rows = [contact("C1", email="um@x.com"), contact("C2", email="dois@x.com")]
    records = [record("a" * 24, email="um@x.com")]
    assert figures(rows, records, {"C1": "a" * 24, "C2": "a" * 24}) == (0, 1, 1, 1)


@pytest.mark.parametrize("stale", [True, False], ids=["stale-content", "in-step"])
def test_a_record_behind_its_row_is_not_in_step(stale):
    rows = [contact("C1", email="novo@x.com")]
    records = [record("a" * 24, email="velho@x.com" if stale else "novo@x.com")]
    assert figures(rows, records, {"C1": "a" * 24})[3] == (1 if stale else 0)


def test_moving_onto_another_rows_known_record_is_wrong():
    rows = [contact("C1", name="Ana"), contact("C2", name="Bia")]
    records = [record("a" * 24, name="Bia"), record("b" * 24, name="Ana")]
    truth = {("crm_contacts", "C1"): "a" * 24, ("crm_contacts", "C2"): "b" * 24}
    swapped = {"C1": "b" * 24, "C2": "a" * 24}
    assert figures(rows, records, swapped, truth) == (0, 0, 2, 0)
