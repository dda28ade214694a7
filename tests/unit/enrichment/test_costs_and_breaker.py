"""What a lookup costs, and each provider's protection (circuit breaker, 429 hold), with the
real adapters and respx answering at the HTTP layer; the breaker's clock is injected."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx
from prometheus_client import REGISTRY

from sourcing.common.http import ExternalHttp
from sourcing.common.models.enums import CircuitState
from sourcing.enrichment.guard import BreakerPolicy, CircuitBreaker, ProviderGuard
from sourcing.enrichment.providers import (
    PersonQuery,
    ProviderResult,
    ResultStatus,
    build_providers,
)
from sourcing.enrichment.waterfall import run_waterfall
from tests.unit.enrichment.support import API_KEYS, make_http, make_settings, recording

LEADMAGIC = "https://api.leadmagic.io"
JANE = PersonQuery(
    full_name="Jane Doe",
    company_name="Stripe",
    company_domain="stripe.com",
    linkedin_url="https://www.linkedin.com/in/janedoe",
    country_iso="US",
)


@pytest.fixture
async def http() -> AsyncIterator[ExternalHttp]:
    client = make_http()
    yield client
    await client.aclose()


def _only(http: ExternalHttp, key: str, **settings: Any) -> Any:
    name = f"{key.upper()}_API_KEY"
    return build_providers(
        make_settings(with_keys=False, **{name: API_KEYS[name]}, **settings), http, keys=[key]
    )


def _leadmagic(respx_mock: respx.MockRouter, email: Any, mobile: Any = None) -> respx.Route:
    respx_mock.post(f"{LEADMAGIC}/mobile-finder").mock(
        return_value=httpx.Response(200, json=mobile or recording("leadmagic_mobile_finder_none"))
    )
    answer = email if isinstance(email, httpx.Response) else httpx.Response(200, json=email)
    return respx_mock.post(f"{LEADMAGIC}/v1/people/email-finder").mock(return_value=answer)


# --- credits ----------------------------------------------------------------------------------


async def test_leadmagic_records_the_credits_it_reports(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    found = recording("leadmagic_mobile_finder_found")
    _leadmagic(
        respx_mock, recording("leadmagic_email_finder_valid"), {**found, "credits_consumed": 5}
    )
    result = await _only(http, "leadmagic")["leadmagic"].lookup(JANE)
    assert result.status is ResultStatus.HIT
    assert result.credits == 6.0  # email 1 + mobile 5, as reported


async def test_leadmagic_misses_are_free_and_unreported_hits_cost_the_declared_price(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    providers = _only(http, "leadmagic", LEADMAGIC_CREDITS_PER_LOOKUP=2.5)
    silent = {"credits_consumed": None}
    _leadmagic(respx_mock, {**recording("leadmagic_email_finder_not_found"), **silent}, silent)
    miss = await providers["leadmagic"].lookup(JANE)
    assert (miss.status, miss.credits) == (ResultStatus.MISS, 0.0)

    respx_mock.reset()
    _leadmagic(respx_mock, {**recording("leadmagic_email_finder_valid"), **silent}, silent)
    hit = await providers["leadmagic"].lookup(JANE)
    assert (hit.status, hit.credits) == (ResultStatus.HIT, 2.5)


async def test_wiza_records_its_reported_credit_counters(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post("https://wiza.co/api/individual_reveals").mock(
        return_value=httpx.Response(200, json=recording("wiza_start"))
    )
    respx_mock.get(url__regex=r"https://wiza\.co/api/individual_reveals/\w+").mock(
        return_value=httpx.Response(200, json=recording("wiza_reveal_finished"))
    )
    result = await _only(http, "wiza", WIZA_CREDITS_PER_LOOKUP=9.0)["wiza"].lookup(JANE)
    assert result.status is ResultStatus.HIT
    assert result.credits == 2.0  # email_credits 1 + phone_credits 1, not the declared 9


async def test_a_provider_without_a_report_costs_its_declared_price_even_for_a_miss(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post("https://api.prospeo.io/enrich-person")
    providers = _only(http, "prospeo", PROSPEO_CREDITS_PER_LOOKUP=3.0)
    route.mock(return_value=httpx.Response(200, json=recording("prospeo_enrich_person_hit")))
    assert (await providers["prospeo"].lookup(JANE)).credits == 3.0
    route.mock(return_value=httpx.Response(400, json=recording("prospeo_no_match")))
    miss = await providers["prospeo"].lookup(JANE)
    assert (miss.status, miss.credits) == (ResultStatus.MISS, 3.0)
    route.mock(return_value=httpx.Response(500, json={"error": "down"}))
    failed = await providers["prospeo"].lookup(JANE)
    assert (failed.status, failed.credits) == (ResultStatus.ERROR, 0.0)


# --- the circuit breaker ----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _result(status: ResultStatus, **fields: Any) -> ProviderResult:
    return ProviderResult(provider="leadmagic", status=status, **fields)


def _gauge(provider: str) -> float | None:
    return REGISTRY.get_sample_value("sourcing_provider_circuit_state", {"provider": provider})


def test_failures_in_the_window_open_the_circuit_then_a_probe_decides() -> None:
    clock = Clock()
    breaker = CircuitBreaker("leadmagic", BreakerPolicy(3, 60.0, 30.0), clock)
    for status in (ResultStatus.ERROR, ResultStatus.MISS, ResultStatus.TIMEOUT):
        assert breaker.admit()
        breaker.record(_result(status))
    clock.now += 61  # the first two failures leave the window
    breaker.record(_result(ResultStatus.RATE_LIMITED))
    breaker.record(_result(ResultStatus.ERROR))
    assert breaker.state is CircuitState.CLOSED
    breaker.record(_result(ResultStatus.ERROR))
    assert breaker.state is CircuitState.OPEN and _gauge("leadmagic") == 2
    assert not breaker.admit()

    clock.now += 30
    assert breaker.state is CircuitState.HALF_OPEN and _gauge("leadmagic") == 1
    assert breaker.admit()  # the probe
    assert not breaker.admit()  # only one at a time
    breaker.record(_result(ResultStatus.TIMEOUT))
    assert breaker.state is CircuitState.OPEN  # a failed probe reopens it

    clock.now += 30
    assert breaker.admit()
    breaker.record(_result(ResultStatus.HIT))
    assert breaker.state is CircuitState.CLOSED and _gauge("leadmagic") == 0
    assert breaker.snapshot().failures == 0


async def test_an_open_provider_is_skipped_and_probed_after_the_cool_down(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    clock = Clock()
    providers = _only(http, "leadmagic")
    guard = ProviderGuard(providers.values(), BreakerPolicy(2, 60.0, 30.0), clock)
    email = _leadmagic(respx_mock, httpx.Response(500, json={"title": "down"}))

    async def run() -> Any:
        return await run_waterfall(
            providers,
            JANE,
            stats={},
            threshold=0.7,
            parallel=5,
            budget_seconds=5.0,
            per_lookup_seconds=5.0,
            clock=clock,
            guard=guard,
        )

    await run()
    await run()
    calls = email.call_count
    skipped = await run()
    assert email.call_count == calls  # open: no request
    assert skipped.attempts == [] and skipped.skipped == ["leadmagic"]
    assert skipped.failure_reason == "no provider could be asked (circuit open: leadmagic)"
    assert [c.state for c in guard.drain_changes()] == [CircuitState.OPEN]

    clock.now += 31
    email.mock(return_value=httpx.Response(200, json=recording("leadmagic_email_finder_valid")))
    probed = await run()
    assert probed.best is not None and email.call_count == calls + 1
    assert guard.breakers["leadmagic"].state is CircuitState.CLOSED


async def test_a_429_retry_after_holds_the_provider_until_it_elapses(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    clock = Clock()
    providers = _only(http, "leadmagic")
    guard = ProviderGuard(providers.values(), BreakerPolicy(5, 60.0, 1.0), clock)
    email = _leadmagic(
        respx_mock, httpx.Response(429, headers={"Retry-After": "120"}, json={"title": "slow"})
    )

    async def run() -> Any:
        return await run_waterfall(
            providers,
            JANE,
            stats={},
            threshold=0.7,
            parallel=5,
            budget_seconds=5.0,
            per_lookup_seconds=5.0,
            clock=clock,
            guard=guard,
        )

    limited = await run()
    assert limited.attempts[0].result.status is ResultStatus.RATE_LIMITED
    assert limited.attempts[0].result.retry_after == 120.0
    assert email.call_count == 1
    clock.now += 60  # longer than the breaker's cool-down, shorter than Retry-After
    assert (await run()).skipped == ["leadmagic"]
    clock.now += 59
    await run()
    assert email.call_count == 1  # nothing sent before Retry-After elapsed
    clock.now += 2
    email.mock(return_value=httpx.Response(200, json=recording("leadmagic_email_finder_valid")))
    assert (await run()).best is not None
    assert email.call_count == 2


async def test_a_lookup_over_the_rate_waits_for_the_limiter_within_the_budget(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    providers = _only(http, "leadmagic", LEADMAGIC_RATE_LIMIT_PER_MINUTE=1)
    guard = ProviderGuard(providers.values(), BreakerPolicy(), Clock())
    email = _leadmagic(respx_mock, recording("leadmagic_email_finder_valid"))

    async def run() -> Any:
        return await run_waterfall(
            providers,
            JANE,
            stats={},
            threshold=0.7,
            parallel=5,
            budget_seconds=0.2,
            per_lookup_seconds=0.2,
            guard=guard,
        )

    assert (await run()).best is not None
    waited = await run()  # the minute's one lookup is spent: it waits until the budget ends
    assert email.call_count == 1
    assert waited.attempts[0].result.status is ResultStatus.TIMEOUT
    assert waited.attempts[0].result.error.startswith("waited for LeadMagic's rate limit")
    assert guard.breakers["leadmagic"].snapshot().failures == 0  # not the provider's fault
