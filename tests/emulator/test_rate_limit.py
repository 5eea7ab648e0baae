"""The account-wide rate limit: a sliding 60 s window, 429 with Retry-After, driven by a fake
clock.

Reference page: crm-v2-introduction ("Limite de requisições": 120 requests per minute, 429 Too
Many Requests with a Retry-After header in seconds).
"""

from __future__ import annotations

import pytest
import requests


@pytest.fixture
def limited(make_emulator, clock):
    return make_emulator(rate_limit=120, clock=clock)


@pytest.fixture
def small(make_emulator, clock):
    return make_emulator(rate_limit=3, clock=clock)


def spend(api, count: int) -> list[int]:
    return [api.get("/users").status_code for _ in range(count)]


def test_requests_within_the_limit_pass(limited, make_api):
    assert set(spend(make_api(limited), 120)) == {200}


def test_request_121_in_the_window_is_429_with_retry_after(limited, make_api, clock):
    api = make_api(limited)
    spend(api, 120)
    clock.advance(15)
    response = api.get("/users")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "45"


def test_429_body_is_in_the_errors_shape(small, make_api):
    api = make_api(small)
    spend(api, 3)
    [error] = api.get("/users").json()["errors"]
    assert (error["status"], error["code"]) == ("429", "TOO_MANY_REQUESTS")


def test_retry_after_is_at_least_one_second(small, make_api, clock):
    api = make_api(small)
    spend(api, 3)
    clock.advance(59.9)
    assert api.get("/users").headers["Retry-After"] == "1"


def test_window_slides_and_frees_slots(small, make_api, clock):
    api = make_api(small)
    spend(api, 3)
    clock.advance(60)
    assert api.get("/users").status_code == 200


def test_slots_free_one_by_one_as_the_window_slides(small, make_api, clock):
    api = make_api(small)
    spend(api, 1)
    clock.advance(30)
    spend(api, 2)
    clock.advance(30)
    assert spend(api, 2) == [200, 429]


def test_refused_requests_do_not_take_a_slot(small, make_api, clock):
    api = make_api(small)
    spend(api, 3)
    spend(api, 5)
    clock.advance(60)
    assert spend(api, 3) == [200, 200, 200]


def test_limit_is_per_account_across_tokens(small, make_api):
    spend(make_api(small), 3)
    assert make_api(small, token="unknown").get("/users").status_code == 429


def test_client_errors_count_towards_the_limit(small, make_api):
    spend(make_api(small, token="wrong"), 3)
    assert make_api(small).get("/users").status_code == 429


def test_control_endpoints_are_not_counted(small, make_api):
    for _ in range(5):
        requests.get(f"{small.url}/_emulator/state", timeout=5)
    assert spend(make_api(small), 3) == [200, 200, 200]


def test_token_endpoint_is_not_counted(small, make_api):
    for _ in range(5):
        requests.post(f"{small.url}/oauth2/token", data={"grant_type": "x"}, timeout=5)
    assert spend(make_api(small), 3) == [200, 200, 200]


def test_control_endpoints_work_while_limited(small, make_api):
    spend(make_api(small), 4)
    assert requests.get(f"{small.url}/_emulator/state", timeout=5).status_code == 200


def test_rate_limit_zero_disables_the_limit(make_emulator, make_api):
    api = make_api(make_emulator(rate_limit=0))
    assert set(spend(api, 150)) == {200}


def test_reset_clears_the_window(small, make_api):
    api = make_api(small)
    spend(api, 3)
    small.reset()
    assert api.get("/users").status_code == 200
