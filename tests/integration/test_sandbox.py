"""The provider sandbox served by uvicorn on a free port, with every adapter and client pointed
at it through `SANDBOX_PROVIDERS=1` and the real ExternalHttp: the deterministic branches of
`sourcing.sandbox.personas` happen as documented."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from itertools import product

import httpx
import pytest

from sourcing.common.http import ExternalHttp
from sourcing.common.outbound import ProviderSettings
from sourcing.enrichment.providers import (
    EmailKind,
    EnrichmentProvider,
    PersonQuery,
    ProviderResult,
    ResultStatus,
    build_providers,
)
from sourcing.ingestion.clients import (
    ApolloClient,
    JobTitleClient,
    MalformedModelAnswer,
    ModelRefusal,
)
from sourcing.sandbox.app import create_sandbox_app
from sourcing.sandbox.personas import (
    MARKERS,
    VENDORS,
    Outcome,
    Persona,
    expected_outcome,
    key_from_name,
    persona_of,
)
from sourcing.sandbox.server import serve_sandbox
from tests.unit.enrichment.support import make_http, make_settings

SLOW_SECONDS = 1.0  # the sandbox's slow answers
ADAPTER_TIMEOUT = 0.3  # per request, well below SLOW_SECONDS
SURNAMES = (
    "Moreau", "Keller", "Novak", "Silva", "Jensen", "Rossi", "Walsh", "Dubois", "Kowalski",
    "Haas", "Lindqvist", "Horvat", "Ortega", "Brennan", "Fischer", "Janssen", "Costa", "Nilsen",
    "Varga", "Petrov", "Quinn", "Abbott", "Barker", "Carver", "Dalton", "Ellison",
)  # fmt: skip


@pytest.fixture(scope="module")
async def sandbox_url() -> AsyncIterator[str]:
    async with serve_sandbox(slow_seconds=SLOW_SECONDS) as url:
        yield url


def _settings(sandbox_url: str, **overrides: object) -> ProviderSettings:
    values: dict[str, object] = {
        "SANDBOX_PROVIDERS": True,
        "SANDBOX_URL": sandbox_url,
        "ENRICHMENT_POLL_INTERVAL_SECONDS": 0.0,
        "ENRICHMENT_POLL_MAX_ATTEMPTS": 5,
        "ENRICHMENT_TIME_BUDGET_SECONDS": 5.0,
        "ZELIQ_CALLBACK_URL": None,
        **overrides,
    }
    return make_settings(with_keys=False, **values)


@pytest.fixture
async def http() -> AsyncIterator[ExternalHttp]:
    client = make_http(timeout_seconds=ADAPTER_TIMEOUT)
    yield client
    await client.aclose()


def _person(name: str, *, country: str = "US") -> PersonQuery:
    slug = "-".join(name.lower().split()) + "-4b2a1c9"  # LinkedIn's digit suffix is ignored
    return PersonQuery(
        full_name=name,
        company_name="Acme",
        company_domain="acme.com",
        linkedin_url=f"https://www.linkedin.com/in/{slug}",
        country_iso=country,
    )


def _marker_name(persona: Persona) -> str:
    marker = next(marker for marker, p in MARKERS if p is persona)
    return f"Alex {marker.title()}"


def _bucket_name(persona: Persona) -> str:
    """A marker-free name whose hash bucket gives `persona`."""
    for first, last in product(("Alex", "Robin", "Sam", "Kim"), SURNAMES):
        key = key_from_name(f"{first} {last}")
        if persona_of(key) is persona and not any(marker in key for marker, _ in MARKERS):
            return f"{first} {last}"
    raise AssertionError(f"no bucket name for {persona}")


def _assert_outcome(result: ProviderResult, vendor: str, outcome: Outcome) -> None:
    context = f"{vendor}: {outcome} -> {result.status} {result.error}"
    if vendor == "zeliq":  # callback-only: accepted now, the results come by callback
        assert result.status is ResultStatus.PENDING, context
        assert set(result.callback_jobs) == {"email", "phone"}, context
        return
    if outcome is Outcome.HIT:
        assert result.status is ResultStatus.HIT, context
        assert result.confidence is not None and result.confidence >= 0.7, context
        assert result.emails[0].kind is EmailKind.PROFESSIONAL, context
    elif outcome is Outcome.LOW:
        assert result.status is ResultStatus.HIT, context
        assert result.confidence is not None and result.confidence < 0.7, context
        assert result.phones == [], context
    elif outcome is Outcome.PERSONAL:
        assert result.status is ResultStatus.HIT, context
        assert result.emails and all(e.kind is EmailKind.PERSONAL for e in result.emails), context
        assert not result.for_region("GB").has_contacts, context  # the region rule empties it
        assert result.for_region("US").has_contacts, context
    elif outcome is Outcome.MISS:
        assert result.status is ResultStatus.MISS, context
    elif outcome is Outcome.SLOW:
        assert result.status is ResultStatus.TIMEOUT, context
    elif outcome is Outcome.RATE_LIMITED:
        assert (result.status, result.http_status) == (ResultStatus.RATE_LIMITED, 429), context
    elif outcome is Outcome.ERROR:
        assert (result.status, result.transient) == (ResultStatus.ERROR, True), context


async def _lookup_all(
    providers: dict[str, EnrichmentProvider], person: PersonQuery
) -> dict[str, ProviderResult]:
    results = await asyncio.gather(*(p.lookup(person) for p in providers.values()))
    return dict(zip(providers, results, strict=True))


@pytest.mark.parametrize("persona", list(Persona))
@pytest.mark.parametrize("naming", ["marker", "bucket"])
async def test_every_adapter_meets_the_documented_branch(
    sandbox_url: str, http: ExternalHttp, persona: Persona, naming: str
) -> None:
    name = _marker_name(persona) if naming == "marker" else _bucket_name(persona)
    assert persona_of(key_from_name(name)) is persona
    providers = build_providers(
        _settings(sandbox_url, ZELIQ_CALLBACK_URL="https://hooks.example.test/zeliq"), http
    )
    assert list(providers) == list(VENDORS)
    results = await _lookup_all(providers, _person(name))
    for vendor, result in results.items():
        _assert_outcome(result, vendor, expected_outcome(vendor, name))
        assert result.latency_ms >= 0


async def test_the_waterfall_branches_all_occur(sandbox_url: str, http: ExternalHttp) -> None:
    """Standard: a strong winner; low: nothing reaches 0.7; European personal-only: nothing
    usable after the region rule; slow: the strong providers time out."""
    providers = build_providers(_settings(sandbox_url), http)
    best: dict[str, float] = {}
    for name, country in (
        ("Alex Standard", "US"),
        ("Alex Lowconf", "US"),
        ("Alex Personal", "GB"),
        ("Alex Slow", "US"),
    ):
        results = await _lookup_all(providers, _person(name, country=country))
        usable = [r.for_region(country) for r in results.values()]
        best[name] = max((r.confidence or 0.0) for r in usable)
        if name == "Alex Slow":
            timed_out = {k for k, r in results.items() if r.status is ResultStatus.TIMEOUT}
            assert timed_out == {"leadmagic", "prospeo", "rocketreach", "wiza", "peopledatalabs"}
    assert best["Alex Standard"] >= 0.7
    assert 0 < best["Alex Lowconf"] < 0.7
    assert best["Alex Personal"] == 0.0
    assert 0 < best["Alex Slow"] < 0.7
    # Zeliq has no callback URL configured here: unavailable, nothing sent.
    zeliq = await providers["zeliq"].lookup(_person("Alex Standard"))
    assert zeliq.status is ResultStatus.UNAVAILABLE


async def test_sandbox_answers_are_deterministic(sandbox_url: str, http: ExternalHttp) -> None:
    providers = build_providers(_settings(sandbox_url), http)
    person = _person(_bucket_name(Persona.STANDARD))
    first = await providers["leadmagic"].lookup(person)
    second = await providers["leadmagic"].lookup(person)
    assert first.emails == second.emails and first.phones == second.phones
    assert first.emails[0].address == f"{person.given_name}.{person.family_name}@acme.com".lower()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/leadmagic/v1/people/email-finder"),
        ("POST", "/leadmagic/mobile-finder"),
        ("POST", "/prospeo/enrich-person"),
        ("POST", "/exa/search"),
        ("GET", "/rocketreach/api/v2/person/lookup?name=A+B&current_employer=C"),
        ("POST", "/wiza/api/individual_reveals"),
        ("POST", "/forager/api/1/datastorage/person_contacts_lookup/work_emails/"),
        ("POST", "/zeliq/api/contact/enrich/email"),
        ("GET", "/contactout/v1/people/linkedin?profile=x"),
        ("GET", "/datagm/api/ingress/v6/findEmail?fullName=A+B&company=c.com"),
        ("GET", "/peopledatalabs/v5/person/enrich?profile=x"),
        ("POST", "/apollo/api/v1/mixed_people/api_search"),
        ("POST", "/openai/v1/chat/completions"),
    ],
)
async def test_missing_credentials_are_refused_like_the_vendor(method: str, path: str) -> None:
    transport = httpx.ASGITransport(app=create_sandbox_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        response = await client.request(method, path, json={})
    assert response.status_code == 401


async def test_latency_is_added_to_every_answer() -> None:
    transport = httpx.ASGITransport(app=create_sandbox_app(latency_seconds=0.2))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        started = asyncio.get_running_loop().time()
        response = await client.post(
            "/leadmagic/v1/people/email-finder",
            headers={"X-API-Key": "k"},
            json={"first_name": "Alex", "last_name": "Standard", "domain": "acme.com"},
        )
        elapsed = asyncio.get_running_loop().time() - started
    assert response.status_code == 200 and elapsed >= 0.2


async def test_apollo_client_against_the_sandbox(sandbox_url: str, http: ExternalHttp) -> None:
    client = ApolloClient(settings=_settings(sandbox_url), http=http)
    titles = await client.titles_at_company(
        company_name="Stripe", company_domain="stripe.com", country_isos=["US"]
    )
    again = await client.titles_at_company(
        company_name="Stripe", company_domain="stripe.com", country_isos=["US"]
    )
    assert titles and titles == again
    assert sum(t.count for t in titles) >= 8
    assert await client.titles_at_company(company_name="Ghost sandbox-empty") == []


async def test_openai_client_against_the_sandbox(sandbox_url: str) -> None:
    client = JobTitleClient.from_settings(_settings(sandbox_url))
    try:
        titles = await client.score_titles(
            company_name="Stripe",
            titles=["VP Payments", "Head of Risk"],
            project_brief="payments risk",
        )
        assert {"vp payments", "head of risk"} <= {t.normalized_title for t in titles}
        assert all(0 <= t.relevance <= 1 for t in titles)
        assert [t.relevance for t in titles] == sorted((t.relevance for t in titles), reverse=True)
        for marker, error in (
            ("sandbox-malformed", MalformedModelAnswer),
            ("sandbox-invalid-schema", MalformedModelAnswer),
            ("sandbox-refusal", ModelRefusal),
        ):
            with pytest.raises(error):
                await client.score_titles(company_name=f"Acme {marker}", titles=["VP Payments"])
    finally:
        await client.aclose()


def test_the_sandbox_refuses_to_start_in_production() -> None:
    env = {**os.environ, "APP_ENV": "production"}
    completed = subprocess.run(
        [sys.executable, "-m", "sourcing.sandbox"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert "production" in completed.stderr
