"""Concurrent clients: every write lands exactly once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests

HEADERS = {"Authorization": "Bearer emulator-token"}


def create_many(base_url: str, worker: int, count: int) -> list[str]:
    with requests.Session() as session:
        session.headers.update(HEADERS)
        ids = []
        for i in range(count):
            payload = {"data": {"name": f"w{worker}-{i}"}}
            response = session.post(f"{base_url}/contacts", json=payload, timeout=5)
            assert response.status_code == 201, response.text
            ids.append(response.json()["data"]["id"])
        return ids


def test_concurrent_creates_are_all_stored_with_distinct_ids(emu):
    with ThreadPoolExecutor(max_workers=8) as pool:
        batches = list(pool.map(lambda w: create_many(emu.base_url, w, 25), range(8)))
    ids = [record_id for batch in batches for record_id in batch]
    stored = emu.state()["contacts"]
    assert len(stored) == len(ids) == 200
    assert {c["id"] for c in stored} == set(ids)


def test_concurrent_duplicate_organization_names_create_exactly_one(emu):
    def create(_: int) -> int:
        payload = {"data": {"name": "Corrida Ltda"}}
        url = f"{emu.base_url}/organizations"
        return requests.post(url, json=payload, headers=HEADERS, timeout=5).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(create, range(16)))
    assert statuses == [201] + [400] * 15
