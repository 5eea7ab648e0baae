"""Bearer authentication of CRM routes.

Reference pages: crm-v2-introduction ("Autenticação": every request is authenticated; "Status
de retorno": 401 for a missing or invalid token; "Tratamento de erros": the errors envelope).
"""

from __future__ import annotations

import pytest
import requests


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="missing-header-401"),
        pytest.param("Bearer wrong-token", id="unknown-token-401"),
        pytest.param("Bearer ", id="empty-token-401"),
        pytest.param("Basic ZW11bGF0b3ItdG9rZW4=", id="not-bearer-401"),
        pytest.param("emulator-token", id="token-without-scheme-401"),
    ],
)
def test_request_without_a_valid_bearer_token_is_401(emu, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = requests.get(f"{emu.base_url}/contacts", headers=headers, timeout=5)
    assert response.status_code == 401
    [error] = response.json()["errors"]
    assert (error["status"], error["code"]) == ("401", "UNAUTHORIZED")
    assert error["detail"]


def test_fixed_emulator_token_is_accepted(api):
    assert api.get("/contacts").status_code == 200


def test_bearer_scheme_is_case_insensitive(emu):
    headers = {"Authorization": "bearer emulator-token"}
    assert requests.get(f"{emu.base_url}/users", headers=headers, timeout=5).status_code == 200


def test_unauthorized_write_stores_nothing(emu, make_api):
    make_api(emu, token="wrong").post("/contacts", {"name": "Ana"})
    assert emu.state()["contacts"] == []
