"""Each provider's protection in this process: a rate limiter, a circuit breaker, a 429's hold.

- **Limiter** (``aiolimiter``): at most ``<KEY>_RATE_LIMIT_PER_MINUTE`` lookups per minute;
  a lookup over the rate waits (inside the waterfall's time budget).
- **Circuit breaker**: ``ENRICHMENT_BREAKER_FAILURES`` failures (error, timeout, rate limited)
  within ``ENRICHMENT_BREAKER_WINDOW_SECONDS`` open it; an open provider is skipped by the
  waterfall (no attempt row: the run's reason names it). After
  ``ENRICHMENT_BREAKER_COOLDOWN_SECONDS`` it is half-open: one probe lookup goes through, a
  success closes it, a failure opens it again.
- **Retry-After**: a provider answering 429 with ``Retry-After`` is held open until then (no
  request before it elapses), then probed like any open circuit.

The state is this process's (each enrichment replica keeps its own). It is exported as the
gauge ``sourcing_provider_circuit_state`` and, as it changes, written to ``provider_circuits``
(:func:`sourcing.enrichment.repository.save_circuits`) so the gateway can show it.
"""

from __future__ import annotations

import os
import socket
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass

from aiolimiter import AsyncLimiter
from prometheus_client import Gauge

from sourcing.common.models.enums import CircuitState
from sourcing.enrichment.providers import EnrichmentProvider, ProviderResult, ResultStatus

Clock = Callable[[], float]

CIRCUIT_STATE = Gauge(
    "sourcing_provider_circuit_state",
    "Enrichment provider circuit breaker in this process (0 closed, 1 half-open, 2 open)",
    ["provider"],
)
GAUGE_VALUES = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}
# What counts against a provider (a miss is an answer, not a failure).
FAILURES = frozenset({ResultStatus.ERROR, ResultStatus.TIMEOUT, ResultStatus.RATE_LIMITED})


def instance_name() -> str:
    """This process, as ``provider_circuits.instance`` names it."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failures: int = 5
    window_seconds: float = 60.0
    cooldown_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class CircuitSnapshot:
    """A breaker as it is now (``open_for``: seconds until a probe may go, when OPEN)."""

    provider: str
    state: CircuitState
    failures: int
    open_for: float | None


class CircuitBreaker:
    """One provider's breaker (module docstring); ``clock`` is monotonic seconds."""

    def __init__(self, provider: str, policy: BreakerPolicy, clock: Clock) -> None:
        self.provider = provider
        self.policy = policy
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._failures: deque[float] = deque()
        self._open_until = 0.0
        self._probing = False
        self.changed = False
        CIRCUIT_STATE.labels(provider).set(GAUGE_VALUES[self._state])

    @property
    def state(self) -> CircuitState:
        """The state now: an OPEN circuit whose cool-down passed is HALF_OPEN."""
        if self._state is CircuitState.OPEN and self._clock() >= self._open_until:
            self._move(CircuitState.HALF_OPEN)
        return self._state

    def available(self) -> bool:
        """Whether a lookup may be planned: closed, or half-open with no probe in flight."""
        state = self.state
        return state is CircuitState.CLOSED or (
            state is CircuitState.HALF_OPEN and not self._probing
        )

    def admit(self) -> bool:
        """Let one lookup through (half-open: the probe, taken here)."""
        if not self.available():
            return False
        if self._state is CircuitState.HALF_OPEN:
            self._probing = True
        return True

    def record(self, result: ProviderResult) -> None:
        """The answer of an admitted lookup."""
        failed = result.status in FAILURES
        if result.retry_after is not None:
            self.hold(result.retry_after)
        elif self._state is CircuitState.HALF_OPEN:
            self._probing = False
            if failed:
                self._open()
            else:
                self._failures.clear()
                self._move(CircuitState.CLOSED)
        elif self._state is CircuitState.CLOSED and failed:
            now = self._clock()
            self._failures.append(now)
            while self._failures and self._failures[0] <= now - self.policy.window_seconds:
                self._failures.popleft()
            if len(self._failures) >= self.policy.failures:
                self._open()

    def release(self) -> None:
        """An admitted lookup was not sent after all: a half-open probe is free again."""
        self._probing = False

    def hold(self, seconds: float) -> None:
        """No lookup for ``seconds`` (a 429's Retry-After): OPEN until then at least."""
        self._probing = False
        self._open_until = max(self._open_until, self._clock() + seconds)
        self._move(CircuitState.OPEN)

    def snapshot(self) -> CircuitSnapshot:
        state = self.state
        open_for = max(self._open_until - self._clock(), 0.0)
        return CircuitSnapshot(
            provider=self.provider,
            state=state,
            failures=len(self._failures),
            open_for=open_for if state is CircuitState.OPEN else None,
        )

    def _open(self) -> None:
        self._open_until = self._clock() + self.policy.cooldown_seconds
        self._move(CircuitState.OPEN)

    def _move(self, state: CircuitState) -> None:
        if state is not CircuitState.OPEN:
            self._open_until = 0.0
        if state is not self._state:
            self.changed = True
        self._state = state
        CIRCUIT_STATE.labels(self.provider).set(GAUGE_VALUES[state])


class ProviderGuard:
    """The limiters and breakers of one process's providers."""

    def __init__(
        self,
        providers: Iterable[EnrichmentProvider],
        policy: BreakerPolicy,
        clock: Clock,
    ) -> None:
        self.breakers: dict[str, CircuitBreaker] = {}
        self._limiters: dict[str, AsyncLimiter] = {}
        for provider in providers:
            self.breakers[provider.key] = CircuitBreaker(provider.key, policy, clock)
            rate = provider.rate_limit_per_minute
            if rate is not None:
                self._limiters[provider.key] = AsyncLimiter(rate, 60.0)

    def available(self, key: str) -> bool:
        breaker = self.breakers.get(key)
        return breaker is None or breaker.available()

    def admit(self, key: str) -> bool:
        breaker = self.breakers.get(key)
        return breaker is None or breaker.admit()

    def limit(self, key: str) -> AbstractAsyncContextManager[object]:
        """Enter before sending a lookup: waits while the provider is over its rate."""
        limiter = self._limiters.get(key)
        return limiter if limiter is not None else nullcontext()

    def record(self, result: ProviderResult) -> None:
        breaker = self.breakers.get(result.provider)
        if breaker is not None:
            breaker.record(result)

    def release(self, key: str) -> None:
        breaker = self.breakers.get(key)
        if breaker is not None:
            breaker.release()

    def drain_changes(self) -> list[CircuitSnapshot]:
        """The breakers whose state changed since the last call, as they are now."""
        changed = [breaker for breaker in self.breakers.values() if breaker.changed]
        for breaker in changed:
            breaker.changed = False
        return [breaker.snapshot() for breaker in changed]
