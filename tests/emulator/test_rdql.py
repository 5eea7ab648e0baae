"""RDQL filters on list endpoints, against records seeded through fixtures."""

from __future__ import annotations

import pytest

from dbt_rdcrm.emulator import Emulator
from dbt_rdcrm.emulator.fixtures import DEFAULT_FIXTURES
from dbt_rdcrm.emulator.rdql import Condition, RdqlError, parse

ORG_A, ORG_B = "6621a1b2c3d4e5f678905678", "6621a1b2c3d4e5f678905679"
SEGMENT_1, SEGMENT_2 = (s["id"] for s in DEFAULT_FIXTURES["segments"])
ANA, BRUNO, CARLA = "c00000000000000000000001", "c00000000000000000000002", "c00000000000000000000003"
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
def seeded_api():
    from conftest import Api  # noqa: PLC0415 - conftest helpers, importable in this suite

    with Emulator(rate_limit=0, fixtures=SEEDED) as emulator:
        client = Api(emulator)
        yield client
        client.session.close()
