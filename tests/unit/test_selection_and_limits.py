"""dbt-style selection over declared syncs, and the shared rate limiter on a fake clock."""

import pytest

from dbt_rdcrm.config.specs import parse_sync
from dbt_rdcrm.crm.limiter import RateLimiter
from dbt_rdcrm.dbt.selection import select
from dbt_rdcrm.errors import UsageError


def _spec(name, mode="contacts", tags=(), path="models/crm/x.sql"):
    spec, _ = parse_sync(
        name,
        f"model.p.{name}",
        {"mode": mode, "key": "k"},
        f"models.{name}.config.meta.rdcrm",
        tags=tuple(tags),
        fqn=("p", path.split("/")[1], name),
        original_file_path=path,
    )
    return spec


SPECS = [
    _spec("crm_contacts", tags=["daily"]),
    _spec("crm_deals", "deals", ["hourly"]),
    _spec("other_orgs", "organizations", path="models/other/o.sql"),
]


@pytest.mark.parametrize(
    ("include", "exclude", "expected"),
    [
        pytest.param((), (), ["crm_contacts", "crm_deals", "other_orgs"], id="all"),
        pytest.param(("crm_deals",), (), ["crm_deals"], id="by-name"),
        pytest.param(("crm_*",), (), ["crm_contacts", "crm_deals"], id="wildcard"),
        pytest.param(("tag:daily",), (), ["crm_contacts"], id="tag"),
        pytest.param(("path:models/other",), (), ["other_orgs"], id="path"),
        pytest.param(("p.crm",), (), ["crm_contacts", "crm_deals"], id="fqn-prefix"),
        pytest.param(("mode:deals",), (), ["crm_deals"], id="mode"),
        pytest.param(
            ("crm_* other_orgs",),
            ("crm_deals",),
            ["crm_contacts", "other_orgs"],
            id="union-minus-exclude",
        ),
        pytest.param(("crm_*,tag:hourly",), (), ["crm_deals"], id="intersection"),
    ],
)
def test_selection(include, exclude, expected):
    assert [s.model for s in select(SPECS, include, exclude)] == expected


def test_unknown_selector_method_is_a_usage_error():
    with pytest.raises(UsageError, match="unsupported selector method 'config'"):
        select(SPECS, ["config:materialized"])


class FakeTime:
    def __init__(self):
        self.now = 0.0
        self.slept = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_limiter_spaces_requests_over_the_sliding_window():
    t = FakeTime()
    limiter = RateLimiter(3, clock=t.clock, sleep=t.sleep)
    for _ in range(3):
        limiter.acquire()
    assert t.slept == []
    t.now = 10.0
    limiter.acquire()
    assert t.slept == [50.0]  # the first request leaves the window at t=60


def test_limiter_honours_retry_after_pauses():
    t = FakeTime()
    limiter = RateLimiter(0, clock=t.clock, sleep=t.sleep)
    limiter.pause(7)
    limiter.acquire()
    assert t.slept == [7]


def test_unlimited_limiter_never_waits_and_eta_is_zero():
    t = FakeTime()
    limiter = RateLimiter(0, clock=t.clock, sleep=t.sleep)
    for _ in range(1000):
        limiter.acquire()
    assert t.slept == [] and limiter.eta_seconds(1000) == 0


def test_eta_at_120_per_minute():
    assert RateLimiter(120).eta_seconds(7200) == 3600


def test_limiter_reports_each_wait_before_sleeping():
    t = FakeTime()
    waits = []
    limiter = RateLimiter(1, clock=t.clock, sleep=t.sleep, on_wait=waits.append)
    limiter.acquire()
    limiter.acquire()
    assert waits == [60.0] == t.slept
