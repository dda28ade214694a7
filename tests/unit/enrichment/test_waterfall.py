"""The §9 waterfall (selection by success rate, threshold, fallback, region rule, budget) with
the real adapters and respx answering at the HTTP layer. Four providers are configured
(LeadMagic, Prospeo, ContactOut, People Data Labs); the others are unavailable."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx

from sourcing.common.http import ExternalHttp
from sourcing.common.models.enums import EnrichmentAttemptStatus, EnrichmentPhase
from sourcing.enrichment.providers import PersonQuery, build_providers
from sourcing.enrichment.waterfall import (
    EUROPE,
    ProviderStats,
    WaterfallOutcome,
    history_region,
    order_providers,
    regional_stats,
    run_waterfall,
    success_rate,
)
from tests.unit.enrichment.support import API_KEYS, make_http, make_settings, recording

LEADMAGIC = "https://api.leadmagic.io"
PROSPEO = "https://api.prospeo.io/enrich-person"
CONTACTOUT = "https://api.contactout.com/v1/people/linkedin"
PDL = "https://api.peopledatalabs.com/v5/person/enrich"
CONFIGURED = (
    "LEADMAGIC_API_KEY",
    "PROSPEO_API_KEY",
    "CONTACTOUT_API_KEY",
    "PEOPLEDATALABS_API_KEY",
)


def _person(country: str = "US") -> PersonQuery:
    return PersonQuery(
        full_name="Jane Doe",
        company_name="Stripe",
        company_domain="stripe.com",
        linkedin_url="https://www.linkedin.com/in/janedoe",
        country_iso=country,
    )


@pytest.fixture
async def http() -> AsyncIterator[ExternalHttp]:
    client = make_http(timeout_seconds=5.0)
    yield client
    await client.aclose()


def _providers(http: ExternalHttp, **settings: Any) -> Any:
    keys = {name: API_KEYS[name] for name in CONFIGURED}
    return build_providers(make_settings(with_keys=False, **keys, **settings), http)


def _leadmagic(respx_mock: respx.MockRouter, email: dict[str, Any] | httpx.Response) -> Any:
    answer = email if isinstance(email, httpx.Response) else httpx.Response(200, json=email)
    respx_mock.post(f"{LEADMAGIC}/mobile-finder").mock(
        return_value=httpx.Response(200, json=recording("leadmagic_mobile_finder_none"))
    )
    return respx_mock.post(f"{LEADMAGIC}/v1/people/email-finder").mock(return_value=answer)


def _miss(respx_mock: respx.MockRouter, *names: str) -> dict[str, Any]:
    routes: dict[str, Any] = {}
    if "prospeo" in names:
        routes["prospeo"] = respx_mock.post(PROSPEO).mock(
            return_value=httpx.Response(400, json=recording("prospeo_no_match"))
        )
    if "contactout" in names:
        routes["contactout"] = respx_mock.get(CONTACTOUT).mock(
            return_value=httpx.Response(404, json=recording("contactout_not_found"))
        )
    if "peopledatalabs" in names:
        routes["peopledatalabs"] = respx_mock.get(PDL).mock(
            return_value=httpx.Response(404, json=recording("peopledatalabs_not_found"))
        )
    return routes


async def _run(http: ExternalHttp, **options: Any) -> WaterfallOutcome:
    values: dict[str, Any] = {
        "stats": {},
        "threshold": 0.7,
        "parallel": 5,
        "budget_seconds": 5.0,
        "per_lookup_seconds": 5.0,
        "prior": 0.5,
    }
    values.update(options)
    person = values.pop("person", _person())
    return await run_waterfall(_providers(http), person, **values)


def test_success_rate_is_smoothed_towards_the_prior() -> None:
    assert success_rate(None, prior=0.5) == 0.5
    assert success_rate(ProviderStats(0, 0), prior=0.3) == 0.3
    assert success_rate(ProviderStats(10, 10), prior=0.5) > success_rate(
        ProviderStats(2, 2), prior=0.5
    )
    assert success_rate(ProviderStats(10, 0), prior=0.5) < 0.5


def test_only_available_providers_are_ordered_best_rate_first(http: ExternalHttp) -> None:
    stats = {
        "peopledatalabs": ProviderStats(10, 9),
        "contactout": ProviderStats(10, 7),
        "leadmagic": ProviderStats(10, 1),
    }
    ordered = [p.key for p in order_providers(_providers(http), stats, prior=0.5)]
    # Prospeo has no history: the neutral prior puts it between 0.7-ish and 0.1-ish.
    assert ordered == ["peopledatalabs", "contactout", "prospeo", "leadmagic"]


def test_success_is_weighed_by_the_credits_a_lookup_costs(http: ExternalHttp) -> None:
    providers = _providers(
        http, PEOPLEDATALABS_CREDITS_PER_LOOKUP=4.0, LEADMAGIC_CREDITS_PER_LOOKUP=0.0
    )
    stats = {
        "peopledatalabs": ProviderStats(100, 90),  # ~0.88 for 4 credits: 0.22 per credit
        "contactout": ProviderStats(100, 50),  # 0.5 for 1 credit
        "prospeo": ProviderStats(100, 30),  # ~0.3 for 1 credit
        "leadmagic": ProviderStats(100, 10),  # ~0.1, free: first
    }
    ordered = [p.key for p in order_providers(providers, stats, prior=0.5)]
    assert ordered == ["leadmagic", "contactout", "prospeo", "peopledatalabs"]


def test_history_regions_group_europe_and_keep_other_countries() -> None:
    assert history_region("de") == history_region("GB") == history_region("UK") == EUROPE
    assert history_region("US") == "US"
    assert history_region(None) is None


def test_the_experts_region_ranks_providers_when_it_has_enough_history(
    http: ExternalHttp,
) -> None:
    by_country: dict[str | None, dict[str, ProviderStats]] = {
        "US": {"contactout": ProviderStats(100, 90), "leadmagic": ProviderStats(100, 10)},
        "FR": {"contactout": ProviderStats(30, 3), "leadmagic": ProviderStats(10, 9)},
        "DE": {"contactout": ProviderStats(20, 2), "leadmagic": ProviderStats(5, 5)},
        None: {"contactout": ProviderStats(10, 5)},
    }
    german = regional_stats(by_country, "DE", min_attempts=20)
    # Europe (FR + DE): ContactOut has 50 attempts there; LeadMagic only 15: global for it.
    assert german["contactout"] == ProviderStats(50, 5)
    assert german["leadmagic"] == ProviderStats(115, 24)
    assert regional_stats(by_country, None, min_attempts=20)["contactout"] == ProviderStats(
        160, 100
    )
    providers = _providers(http)
    in_germany = [p.key for p in order_providers(providers, german, prior=0.5)][:2]
    american = regional_stats(by_country, "US", min_attempts=20)
    in_us = [p.key for p in order_providers(providers, american, prior=0.5)][:2]
    assert in_germany == ["prospeo", "peopledatalabs"]  # untried (0.5) beat both in Europe
    assert in_us == ["contactout", "prospeo"]


async def test_parallel_phase_takes_the_best_rated_and_ranks_by_confidence(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    lead = _leadmagic(respx_mock, recording("leadmagic_email_finder_valid"))
    prospeo = respx_mock.post(PROSPEO).mock(
        return_value=httpx.Response(200, json=recording("prospeo_enrich_person_hit"))
    )
    contactout = respx_mock.get(CONTACTOUT).mock(
        return_value=httpx.Response(200, json=recording("contactout_linkedin_hit"))
    )
    pdl = respx_mock.get(PDL).mock(
        return_value=httpx.Response(200, json=recording("peopledatalabs_enrich_hit"))
    )
    stats = {"peopledatalabs": ProviderStats(20, 19), "contactout": ProviderStats(20, 15)}
    outcome = await _run(http, stats=stats, parallel=2)

    assert pdl.called and contactout.called
    assert not lead.called and not prospeo.called  # outside the top 2, and the phase won
    assert [a.phase for a in outcome.attempts] == [EnrichmentPhase.PARALLEL] * 2
    assert outcome.best is not None and outcome.met_threshold
    # ContactOut's verified email (0.9) beats People Data Labs' likelihood (0.8).
    assert outcome.best.result.provider == "contactout"
    assert outcome.best.result.confidence == 0.9


async def test_fallback_runs_one_by_one_until_one_reaches_the_threshold(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    _leadmagic(respx_mock, recording("leadmagic_email_finder_catch_all"))  # 0.5
    prospeo = respx_mock.post(PROSPEO).mock(
        return_value=httpx.Response(200, json=recording("prospeo_enrich_person_hit"))  # 0.9
    )
    routes = _miss(respx_mock, "contactout", "peopledatalabs")
    outcome = await _run(http, parallel=1)  # no history: registry order

    assert [(a.result.provider, a.phase, a.status) for a in outcome.attempts] == [
        ("leadmagic", EnrichmentPhase.PARALLEL, EnrichmentAttemptStatus.SUCCESS),
        ("prospeo", EnrichmentPhase.FALLBACK, EnrichmentAttemptStatus.SUCCESS),
    ]
    assert prospeo.call_count == 1
    assert not routes["contactout"].called and not routes["peopledatalabs"].called
    assert outcome.best is not None and outcome.best.result.provider == "prospeo"


async def test_below_the_threshold_everyone_is_asked_and_the_best_is_kept(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    _leadmagic(respx_mock, recording("leadmagic_email_finder_catch_all"))  # 0.5
    _miss(respx_mock, "prospeo", "contactout", "peopledatalabs")
    outcome = await _run(http, parallel=2)

    assert len(outcome.attempts) == 4
    assert [a.phase for a in outcome.attempts].count(EnrichmentPhase.FALLBACK) == 2
    assert outcome.best is not None and outcome.best.result.provider == "leadmagic"
    assert not outcome.met_threshold
    assert "below the 0.70 target" in outcome.summary


@pytest.mark.parametrize("country", ["GB", "DE"])
async def test_region_rule_leaves_no_personal_email_in_europe(
    http: ExternalHttp, respx_mock: respx.MockRouter, country: str
) -> None:
    personal = {"email": "jane.doe88@gmail.com", "status": "valid"}
    _leadmagic(respx_mock, personal)
    _miss(respx_mock, "prospeo", "contactout", "peopledatalabs")
    outcome = await _run(http, person=_person(country))

    leadmagic = next(a for a in outcome.attempts if a.result.provider == "leadmagic")
    assert leadmagic.status is EnrichmentAttemptStatus.FILTERED
    assert [e.address for e in leadmagic.result.filtered_emails] == ["jane.doe88@gmail.com"]
    assert outcome.best is None
    assert outcome.failure_reason is not None
    assert f"professional email required for {country}" in outcome.failure_reason


async def test_personal_email_is_kept_where_the_rule_does_not_apply(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    _leadmagic(respx_mock, {"email": "jane.doe88@gmail.com", "status": "valid"})
    _miss(respx_mock, "prospeo", "contactout", "peopledatalabs")
    outcome = await _run(http, person=_person("US"))
    assert outcome.best is not None
    assert [e.address for e in outcome.best.result.emails] == ["jane.doe88@gmail.com"]


async def test_all_fail_gives_a_reason(http: ExternalHttp, respx_mock: respx.MockRouter) -> None:
    _leadmagic(respx_mock, httpx.Response(500, json={"message": "boom"}))
    respx_mock.post(PROSPEO).mock(return_value=httpx.Response(429, json={"error": True}))
    _miss(respx_mock, "contactout", "peopledatalabs")
    outcome = await _run(http)
    statuses = {a.result.provider: a.status for a in outcome.attempts}
    assert statuses == {
        "leadmagic": EnrichmentAttemptStatus.ERROR,
        "prospeo": EnrichmentAttemptStatus.RATE_LIMITED,
        "contactout": EnrichmentAttemptStatus.NO_MATCH,
        "peopledatalabs": EnrichmentAttemptStatus.NO_MATCH,
    }
    assert outcome.best is None
    reason = outcome.failure_reason or ""
    assert reason.startswith("no provider found a contact (4 tried)")
    assert "provider failures: ERROR, RATE_LIMITED" in reason


async def _hang(request: httpx.Request) -> httpx.Response:
    await asyncio.sleep(60)  # a provider that never answers (cancelled by the budget)
    return httpx.Response(200)


async def test_a_hanging_provider_costs_its_lookup_budget_not_the_run(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    _leadmagic(respx_mock, httpx.Response(200))
    respx_mock.post(f"{LEADMAGIC}/v1/people/email-finder").mock(side_effect=_hang)
    respx_mock.post(PROSPEO).mock(return_value=httpx.Response(500, json={"error": True}))
    respx_mock.get(PDL).mock(return_value=httpx.Response(429, json={"error": {}}))
    respx_mock.get(CONTACTOUT).mock(
        return_value=httpx.Response(200, json=recording("contactout_linkedin_hit"))
    )
    stats = {"contactout": ProviderStats(10, 0)}  # last in line: only the fallback reaches it
    started = time.monotonic()
    outcome = await _run(http, stats=stats, parallel=3, budget_seconds=3.0, per_lookup_seconds=0.4)
    elapsed = time.monotonic() - started

    statuses = {a.result.provider: (a.phase, a.status) for a in outcome.attempts}
    assert statuses == {
        "leadmagic": (EnrichmentPhase.PARALLEL, EnrichmentAttemptStatus.TIMEOUT),
        "prospeo": (EnrichmentPhase.PARALLEL, EnrichmentAttemptStatus.ERROR),
        "peopledatalabs": (EnrichmentPhase.PARALLEL, EnrichmentAttemptStatus.RATE_LIMITED),
        "contactout": (EnrichmentPhase.FALLBACK, EnrichmentAttemptStatus.SUCCESS),
    }
    assert outcome.best is not None and outcome.best.result.provider == "contactout"
    assert elapsed < 2.0


async def test_the_whole_run_stops_at_its_budget(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(f"{LEADMAGIC}/v1/people/email-finder").mock(side_effect=_hang)
    respx_mock.post(PROSPEO).mock(side_effect=_hang)
    contactout = respx_mock.get(CONTACTOUT).mock(
        return_value=httpx.Response(200, json=recording("contactout_linkedin_hit"))
    )
    respx_mock.get(PDL).mock(side_effect=_hang)
    stats = {"contactout": ProviderStats(10, 0)}
    started = time.monotonic()
    outcome = await _run(http, stats=stats, parallel=3, budget_seconds=0.5)
    elapsed = time.monotonic() - started

    assert elapsed < 1.5  # budget 0.5 s (+ the adapters' own cancellation)
    assert {a.status for a in outcome.attempts} == {EnrichmentAttemptStatus.TIMEOUT}
    assert not contactout.called  # nothing left for the fallback
    assert outcome.budget_exhausted
    assert "time budget exhausted" in (outcome.failure_reason or "")
