"""The sliding-window rate limiter, on an injected clock."""

from __future__ import annotations

from sourcing.api.ratelimit import SlidingWindowRateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_allows_the_limit_then_refuses_with_retry_after() -> None:
    clock = FakeClock()
    limiter = SlidingWindowRateLimiter(max_requests=3, window_seconds=60, clock=clock)
    assert [limiter.check("a") for _ in range(3)] == [None, None, None]
    clock.now += 10
    assert limiter.check("a") == 50
    assert limiter.check("b") is None


def test_window_slides_rather_than_resetting() -> None:
    clock = FakeClock()
    limiter = SlidingWindowRateLimiter(max_requests=2, window_seconds=60, clock=clock)
    limiter.check("a")
    clock.now += 30
    limiter.check("a")
    clock.now += 30.5  # the first request left the window, the second has not
    assert limiter.check("a") is None
    assert limiter.check("a") is not None


def test_refused_requests_do_not_extend_the_wait() -> None:
    clock = FakeClock()
    limiter = SlidingWindowRateLimiter(max_requests=1, window_seconds=60, clock=clock)
    limiter.check("a")
    for _ in range(100):
        limiter.check("a")
    clock.now += 60
    assert limiter.check("a") is None


def test_quiet_clients_are_forgotten() -> None:
    clock = FakeClock()
    limiter = SlidingWindowRateLimiter(max_requests=5, window_seconds=60, clock=clock)
    for client in range(1000):
        limiter.check(f"client-{client}")
    clock.now += 61
    limiter.check("new")
    assert limiter.tracked_clients == 1
