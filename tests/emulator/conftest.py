"""Fixtures for the emulator conformance suite: every test talks real HTTP to an in-process
emulator on a free port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from dbt_rdcrm.emulator import Emulator

FIXED_TOKEN = "emulator-token"


class FakeClock:
    """A clock the tests move by hand (starts at 2026-11-27T21:40:00Z)."""

    def __init__(self, now: float = 1_795_815_600.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Api:
    """A small client for the emulator's CRM routes and control endpoints."""

    def __init__(self, emulator: Emulator, token: str | None = FIXED_TOKEN):
        self.emulator = emulator
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(self.emulator.base_url + path, params=params or None, timeout=5)

    def post(self, path: str, data: Any) -> requests.Response:
        return self.session.post(self.emulator.base_url + path, json={"data": data}, timeout=5)

    def put(self, path: str, data: Any) -> requests.Response:
        return self.session.put(self.emulator.base_url + path, json={"data": data}, timeout=5)

    def create(self, resource: str, data: dict[str, Any]) -> dict[str, Any]:
        response = self.post(f"/{resource}", data)
        assert response.status_code == 201, response.text
        return response.json()["data"]

    def control(self, method: str, path: str, body: Any = None) -> requests.Response:
        url = f"{self.emulator.url}/_emulator/{path}"
        return requests.request(method, url, json=body, timeout=5)


@pytest.fixture(scope="session")
def shared_emulator() -> Iterator[Emulator]:
    with Emulator(rate_limit=0) as emulator:
        yield emulator


@pytest.fixture
def emu(shared_emulator: Emulator) -> Emulator:
    """The shared emulator, reset to the default fixtures."""
    shared_emulator.reset()
    return shared_emulator


@pytest.fixture
def api(emu: Emulator) -> Iterator[Api]:
    client = Api(emu)
    yield client
    client.session.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., Emulator]]:
    """Start emulators with their own settings; all are stopped after the test."""
    started: list[Emulator] = []

    def make(**kwargs: Any) -> Emulator:
        emulator = Emulator(**kwargs).start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in started:
        emulator.stop()


@pytest.fixture
def make_api() -> Iterator[Callable[..., Api]]:
    clients: list[Api] = []

    def make(emulator: Emulator, token: str | None = FIXED_TOKEN) -> Api:
        client = Api(emulator, token)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.session.close()
