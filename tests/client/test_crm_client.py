"""The CRM client against the emulator over real HTTP: retries, auth, paging, error messages."""

from __future__ import annotations

import pytest
import requests

from dbt_rdcrm.auth.provider import StaticTokenProvider
from dbt_rdcrm.crm.client import CrmClient, OutcomeUnknown, Refused, Transient, error_message
from dbt_rdcrm.crm.limiter import RateLimiter
from dbt_rdcrm.emulator import Emulator
from dbt_rdcrm.errors import AuthError
from dbt_rdcrm.redaction import Secret


class FakeTime:
    """One clock for the emulator's rate window and the client's waits: sleeping advances it."""

    def __init__(self):
        self.now = 1_800_000_000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def client_for(emu, token="emulator-token", per_minute=0, time=None, attempts=3, hook=None):
    time = time or FakeTime()
    limiter = RateLimiter(per_minute, clock=time.clock, sleep=time.sleep)
    return CrmClient(
        emu.base_url,
        StaticTokenProvider(token),
        limiter,
        sleep=time.sleep,
        max_attempts=attempts,
        on_request=hook,
    )


def test_search_follows_next_links_past_the_api_v2_pitfall(emulator):
    client = client_for(emulator)
    for n in range(60):
        client.create("contacts", {"name": "Same Name", "job_title": str(n)})
    found = list(client.search("contacts", 'name:"Same Name"', page_size=25, max_pages=5))
    assert [r["job_title"] for r in found] == [str(n) for n in range(60)]
    pages = [r for r in emulator.requests() if r["method"] == "GET"]
    assert len(pages) == 3 and all(r["status"] == 200 for r in pages)


def test_429_is_waited_out_with_retry_after_and_retried():
    time = FakeTime()
    with Emulator(rate_limit=2, clock=time.clock) as emu:
        client = client_for(emu, time=time)
        for n in range(3):
            client.create("organizations", {"name": f"Org {n}"})
        statuses = [r["status"] for r in emu.requests()]
    assert statuses == [201, 201, 429, 201]
    assert time.slept and time.slept[0] >= 1


def test_put_is_retried_on_server_errors(emulator):
    client = client_for(emulator)
    record = client.create("contacts", {"name": "A"})
    emulator.set_faults([{"method": "PUT", "action": "status", "status": 503, "count": 2}])
    assert client.update("contacts", record["id"], {"job_title": "CTO"})["job_title"] == "CTO"
    assert [r["status"] for r in emulator.requests() if r["method"] == "PUT"] == [503, 503, 200]


def test_put_gives_up_as_transient_after_its_attempts(emulator):
    client = client_for(emulator, attempts=2)
    record = client.create("contacts", {"name": "A"})
    emulator.set_faults([{"method": "PUT", "action": "status", "status": 502}])
    with pytest.raises(Transient) as caught:
        client.update("contacts", record["id"], {"job_title": "CTO"})
    assert caught.value.status == 502 and "after 2 attempts" in str(caught.value)


@pytest.mark.parametrize(
    "action",
    [
        pytest.param({"action": "drop_after_commit"}, id="connection-dropped-after-commit"),
        pytest.param({"action": "status", "status": 500}, id="server-error-on-create"),
    ],
)
def test_a_create_with_unknown_outcome_is_never_resent_blindly(emulator, action):
    emulator.set_faults([{"method": "POST", "count": 1, **action}])
    with pytest.raises(OutcomeUnknown):
        client_for(emulator).create("contacts", {"name": "Once"})
    assert len([r for r in emulator.requests() if r["method"] == "POST"]) == 1


def test_a_create_that_never_reached_the_server_is_retried(emulator):
    emulator.set_faults([{"method": "POST", "action": "drop_before_commit", "count": 1}])
    with pytest.raises(OutcomeUnknown):  # the socket was open: the client cannot tell
        client_for(emulator).create("contacts", {"name": "Maybe"})
    time = FakeTime()
    refused = CrmClient(
        "http://127.0.0.1:9/crm/v2",
        StaticTokenProvider("t0ken"),
        RateLimiter(0),
        sleep=time.sleep,
        max_attempts=3,
    )
    with pytest.raises(Transient, match="connection failed"):
        refused.create("contacts", {"name": "Never"})
    assert len(time.slept) == 2  # connection refused: provably not sent, so retried


def test_a_refused_request_carries_status_message_and_field(emulator):
    with pytest.raises(Refused) as caught:
        client_for(emulator).create("deals", {"name": "D", "status": "won"})
    assert caught.value.status == 422 and caught.value.field == "status"


def test_401_refreshes_once_then_stops_with_how_to_fix(emulator):
    class Rotating(StaticTokenProvider):
        refreshed = 0

        def refresh_after_unauthorized(self, rejected):
            Rotating.refreshed += 1
            return Secret("emulator-token")

    client = client_for(emulator)
    client.tokens = Rotating("expired-token-abc")
    assert client.create("contacts", {"name": "A"})["name"] == "A"
    assert Rotating.refreshed == 1
    with pytest.raises(AuthError, match="refused the access token") as caught:
        client_for(emulator, token="revoked-token-xyz").create("contacts", {"name": "B"})
    assert "revoked-token-xyz" not in str(caught.value)


def test_every_request_is_reported_to_the_hook(emulator):
    seen = []
    client = client_for(emulator, hook=lambda m, p, s: seen.append((m, p, s)))
    record = client.create("contacts", {"name": "A"})
    client.get("contacts", record["id"])
    assert seen == [("POST", "/contacts", 201), ("GET", f"/contacts/{record['id']}", 200)]


def _response(status: int, body: str) -> requests.Response:
    response = requests.Response()
    response.status_code, response._content = status, body.encode()
    return response


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            '{"errors": [{"detail": "bad id", "source": {"pointer": "/data/owner_id"}}]}',
            ("bad id", "owner_id"),
            id="errors-detail-and-pointer",
        ),
        pytest.param(
            '{"errors": [{"detail": "bad", "source": {"pointer": "/data/emails/0/email"}}]}',
            ("bad", "email"),
            id="pointer-into-a-list-names-the-mapping-field",
        ),
        pytest.param(
            '{"errors": [{"detail": "unknown", "source": {"pointer": "/data/contact_ids/1"}}]}',
            ("unknown", "contact_id"),
            id="pointer-to-a-list-item-names-the-list",
        ),
        pytest.param(
            '{"errors": [{"detail": "a"}, {"detail": "b", '
            '"source": {"pointer": "/data/custom_fields/cpf"}}]}',
            ("a; b", "@cpf"),
            id="first-pointer-of-any-error-custom-field",
        ),
        pytest.param(
            '{"errors": [{"message": "m1"}, {"message": "m2"}]}',
            ("m1; m2", None),
            id="errors-message",
        ),
        pytest.param(
            '{"detail": "Nome Empresa já cadastrada."}',
            ("Nome Empresa já cadastrada.", None),
            id="duplicate-organization-detail",
        ),
        pytest.param(
            '{"message": "no Route matched with those values"}',
            ("no Route matched with those values", None),
            id="gateway-message",
        ),
        pytest.param('{"error": "invalid_grant"}', ("invalid_grant", None), id="oauth-error"),
        pytest.param("<html>" + "x" * 300, ("<html>" + "x" * 194, None), id="non-json-truncated"),
    ],
)
def test_error_messages_follow_the_contract_order(body, expected):
    assert error_message(_response(400, body)) == expected
