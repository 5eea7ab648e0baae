"""A CRM that breaks the v2 contract gets a ProtocolError naming method and path; timeouts and
attempts bound each request, and the client tells how long it waited."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dbt_rdcrm.auth.provider import StaticTokenProvider
from dbt_rdcrm.crm.client import (
    CrmClient,
    CrmError,
    OutcomeUnknown,
    ProtocolError,
    Timeouts,
    Transient,
)
from dbt_rdcrm.crm.limiter import RateLimiter

OID = "6621a1b2c3d4e5f678905678"


class Scripted:
    """A loopback HTTP server that answers every request with (status, headers, body, delay)."""

    def __init__(self):
        self.answer = (200, {"Content-Type": "application/json"}, b"{}", 0.0)
        self.hits = 0
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                scripted.hits += 1
                status, headers, body, delay = scripted.answer
                time.sleep(delay)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _any

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/crm/v2"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def crm():
    server = Scripted()
    yield server
    server.close()


def client_for(crm, **kwargs) -> CrmClient:
    kwargs.setdefault("sleep", lambda s: None)
    return CrmClient(crm.base_url, StaticTokenProvider("t" * 12), RateLimiter(0), **kwargs)


def json_answer(status, document):
    return (status, {"Content-Type": "application/json"}, json.dumps(document).encode(), 0.0)


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        pytest.param(
            (200, {"Content-Type": "text/html"}, b"<html>hi</html>", 0.0),
            "the body is not JSON (text/html)",
            id="html-200",
        ),
        pytest.param(
            (201, {"Content-Type": "application/json"}, b"{oops", 0.0),
            "the body is not JSON (application/json)",
            id="invalid-json",
        ),
        pytest.param(
            (302, {"Location": "https://sso.example/login?token=abc"}, b"", 0.0),
            "redirected (302) to sso.example/login; check the base URL",
            id="redirect",
        ),
        pytest.param(json_answer(201, {"id": OID}), 'got no "data" object', id="no-data"),
        pytest.param(json_answer(201, {"data": {"name": "x"}}), "the record has no id", id="no-id"),
        pytest.param(json_answer(201, {"data": {"id": "abc"}}), "not a 24-hex CRM id", id="bad-id"),
        pytest.param(json_answer(201, {"data": {"id": 7}}), "not a 24-hex CRM id", id="int-id"),
        pytest.param(json_answer(200, ["x"]), "expected a JSON object, got list", id="array"),
        pytest.param((201, {}, b"", 0.0), 'got no "data" object', id="empty"),
    ],
)
def test_a_create_answered_outside_the_contract_is_a_protocol_error(crm, answer, problem):
    crm.answer = answer
    with pytest.raises(ProtocolError) as caught:
        client_for(crm).create("deals", {"name": "x"})
    error = caught.value
    assert isinstance(error, CrmError) and not isinstance(error, OutcomeUnknown)
    assert "unexpected answer from the CRM to POST /deals: " in str(error)
    assert problem in str(error)
    assert "token=abc" not in str(error)
    assert crm.hits == 1  # never resent: it may have been created


def test_a_search_answer_outside_the_contract_names_the_path_not_the_filter(crm):
    crm.answer = (200, {"Content-Type": "text/html"}, b"<html/>", 0.0)
    with pytest.raises(ProtocolError) as caught:
        list(client_for(crm).search("contacts", 'email:"maria@example.com"'))
    assert "GET /contacts: the body is not JSON" in str(caught.value)
    assert "maria" not in str(caught.value)


def test_records_in_a_search_need_crm_ids(crm):
    crm.answer = json_answer(200, {"data": [{"id": OID}, {"id": "nope"}], "has_more": False})
    with pytest.raises(ProtocolError, match="not a 24-hex CRM id"):
        list(client_for(crm).search("contacts", "name:x"))


def test_a_hanging_crm_is_bounded_by_the_read_timeout_and_attempts(crm):
    crm.answer = (200, {}, b"{}", 1.0)
    client = client_for(crm, timeouts=Timeouts(connect=1, read=0.2, budget=30), max_attempts=2)
    started = time.monotonic()
    with pytest.raises(Transient, match="timed out on GET /deals/x: .*after 2 attempts"):
        client.request("GET", "/deals/x")
    assert time.monotonic() - started < 1.5
    assert client.answer_wait >= 0.4 and client.waited >= client.answer_wait


def test_the_request_budget_stops_retries_before_the_attempts_run_out(crm):
    crm.answer = json_answer(503, {"errors": [{"detail": "down"}]})
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    client = client_for(
        crm,
        timeouts=Timeouts(budget=5),
        max_attempts=10,
        sleep=sleep,
        clock=lambda: now[0],
    )
    with pytest.raises(Transient, match="server error: down"):
        client.request("GET", "/deals/x")
    assert crm.hits < 10 and sum(slept) < 5
    assert client.backoff_wait == sum(slept)


def test_a_create_that_times_out_is_an_unknown_outcome_not_a_retry(crm):
    crm.answer = (201, {}, b"{}", 1.0)
    client = client_for(crm, timeouts=Timeouts(read=0.2))
    with pytest.raises(OutcomeUnknown):
        client.create("deals", {"name": "x"})
    assert crm.hits == 1


@pytest.mark.parametrize(
    "body",
    [
        {"errors": [{"detail": "bad", "source": "name"}]},
        {"errors": [{"detail": "bad", "source": {"pointer": 7}}, "odd"]},
        {"errors": "bad"},
        {"detail": ["bad"]},
    ],
    ids=["source-text", "pointer-number", "errors-text", "detail-list"],
)
def test_an_odd_error_body_is_still_a_refusal_with_a_message(crm, body):
    crm.answer = json_answer(422, body)
    with pytest.raises(CrmError) as caught:
        client_for(crm).update("deals", OID, {"name": "x"})
    assert caught.value.status == 422 and str(caught.value).startswith("HTTP 422: ")
