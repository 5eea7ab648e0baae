"""The shared rate limiter on a fake clock."""

from dbt_rdcrm.crm.limiter import RateLimiter


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
