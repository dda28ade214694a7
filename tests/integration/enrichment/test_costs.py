"""Enrichment costs on the real database and gateway, LeadMagic answering through respx: the
credits of every attempt, a project's budget holding its leads until a PATCH raises it, the
costs report, and a provider's circuit breaker (metric and ``GET /api/v1/providers``)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.events import Envelope
from sourcing.common.http import ExternalHttp
from sourcing.common.messages.enrichment import EnrichmentRequested
from sourcing.common.models import EnrichmentAttempt, Lead, OutboxMessage, Project
from sourcing.common.models.enums import CircuitState
from sourcing.common.statemachines import LeadStatus
from sourcing.enrichment.handlers import handle_enrichment_requested
from sourcing.enrichment.providers import build_providers
from sourcing.enrichment.service import EnrichmentDeps
from tests.factories import create_expert, create_lead, create_project
from tests.fixtures.settings import Settings, load_settings
from tests.unit.enrichment.support import make_http, recording

pytestmark = pytest.mark.integration

Headers = Callable[..., dict[str, str]]
LEADMAGIC = "https://api.leadmagic.io"


class Clock:
    """Monotonic seconds and the matching wall clock, moved by the test."""

    def __init__(self) -> None:
        self.seconds = 1000.0
        self.start = datetime.now(UTC)

    def __call__(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.seconds - 1000.0)


@pytest.fixture
def settings(migrated_database_url: str) -> Settings:
    return load_settings(
        APP_ENV="test",
        DATABASE_URL=migrated_database_url,
        SANDBOX_PROVIDERS=False,
        LEADMAGIC_API_KEY="lm-test-key",
        ENRICHMENT_BREAKER_FAILURES=2,
        ENRICHMENT_BREAKER_COOLDOWN_SECONDS=30.0,
        ENRICHMENT_TIME_BUDGET_SECONDS=5.0,
        AGENT_ATTEMPT_TIMEOUT_SECONDS=20.0,
    )


@pytest.fixture
async def http() -> AsyncIterator[ExternalHttp]:
    client = make_http(timeout_seconds=2.0)
    yield client
    await client.aclose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def deps(settings: Settings, http: ExternalHttp, clock: Clock) -> EnrichmentDeps:
    """LeadMagic only (the other providers are not built)."""
    providers = build_providers(settings, http, keys=["leadmagic"])
    return EnrichmentDeps(settings=settings, providers=providers, clock=clock, now=clock.now)


def _answers(respx_mock: respx.MockRouter, email: httpx.Response | None = None) -> respx.Route:
    respx_mock.post(f"{LEADMAGIC}/mobile-finder").mock(
        return_value=httpx.Response(200, json=recording("leadmagic_mobile_finder_none"))
    )
    found = httpx.Response(200, json=recording("leadmagic_email_finder_valid"))
    return respx_mock.post(f"{LEADMAGIC}/v1/people/email-finder").mock(return_value=email or found)


async def _lead(session: AsyncSession, project: Project) -> Lead:
    slug = uuid.uuid4().hex[:8]
    expert = await create_expert(
        session,
        full_name=f"Jane Doe{slug}",
        first_name="Jane",
        last_name=f"Doe{slug}",
        linkedin_url_normalized=f"https://www.linkedin.com/in/jane-{slug}",
        company_name="Stripe",
        company_domain="stripe.com",
        country_iso="US",
    )
    return await create_lead(
        session,
        project=project,
        expert=expert,
        raw_name=expert.full_name,
        raw_company="Stripe",
        linkedin_url=expert.linkedin_url_normalized,
        company_domain="stripe.com",
        country_iso="US",
        status="ENRICHING",
    )


async def _enrich(session: AsyncSession, lead: Lead, deps: EnrichmentDeps) -> Lead:
    payload = EnrichmentRequested(
        lead_id=lead.id, expert_id=lead.expert_id, project_id=lead.project_id
    )
    envelope = Envelope.new(EnrichmentRequested.message_type, payload)
    await handle_enrichment_requested(session, envelope, payload, deps=deps)
    await session.flush()
    await session.refresh(lead)
    return lead


async def _attempts(session: AsyncSession, lead: Lead) -> list[EnrichmentAttempt]:
    rows = await session.scalars(
        select(EnrichmentAttempt).where(EnrichmentAttempt.lead_id == lead.id)
    )
    return list(rows.all())


async def test_every_attempt_records_its_credits(
    session: AsyncSession, deps: EnrichmentDeps, respx_mock: respx.MockRouter
) -> None:
    project = await create_project(session)
    email = _answers(respx_mock)
    reported = await _enrich(session, await _lead(session, project), deps)
    assert [a.credits for a in await _attempts(session, reported)] == [1.0]  # credits_consumed

    unreported = {**recording("leadmagic_email_finder_valid"), "credits_consumed": None}
    email.mock(return_value=httpx.Response(200, json=unreported))
    respx_mock.post(f"{LEADMAGIC}/mobile-finder").mock(
        return_value=httpx.Response(200, json={"mobile_number": None})
    )
    declared = await _enrich(session, await _lead(session, project), deps)
    assert [a.credits for a in await _attempts(session, declared)] == [
        deps.settings.LEADMAGIC_CREDITS_PER_LOOKUP
    ]


async def test_a_spent_budget_holds_the_next_lead_until_a_patch_raises_it(
    session: AsyncSession,
    deps: EnrichmentDeps,
    respx_mock: respx.MockRouter,
    api: httpx.AsyncClient,
    auth_headers: Headers,
) -> None:
    project = await create_project(session, enrichment_budget_credits=2.0)
    email = _answers(respx_mock)
    leads = [await _lead(session, project) for _ in range(3)]
    for lead in leads[:2]:
        assert (await _enrich(session, lead, deps)).status == LeadStatus.ENRICHED

    held = await _enrich(session, leads[2], deps)
    assert email.call_count == 2  # nothing asked for the third
    assert held.status == LeadStatus.ENRICHING
    assert held.status_reason is not None
    assert held.status_reason.startswith("enrichment budget of 2 credits spent")
    assert await _attempts(session, held) == []

    headers = auth_headers("ops")
    costs = (await api.get(f"/api/v1/projects/{project.id}/costs", headers=headers)).json()
    assert costs["totalCredits"] == 2.0 and costs["remainingCredits"] == 0.0

    negative = await api.patch(
        f"/api/v1/projects/{project.id}", json={"enrichmentBudgetCredits": -1}, headers=headers
    )
    assert negative.status_code == 400
    assert negative.json()["error"]["code"] == "invalid_payload"
    patched = await api.patch(
        f"/api/v1/projects/{project.id}", json={"enrichmentBudgetCredits": 5}, headers=headers
    )
    assert patched.status_code == 200 and patched.json()["enrichmentBudgetCredits"] == 5.0
    asked = await session.scalars(
        select(OutboxMessage.envelope).where(
            OutboxMessage.envelope["type"].astext == EnrichmentRequested.message_type
        )
    )
    assert str(held.id) in [envelope["payload"]["leadId"] for envelope in asked.all()]

    await session.refresh(project)  # the PATCH wrote it through the gateway's own session
    assert (await _enrich(session, held, deps)).status == LeadStatus.ENRICHED
    costs = (await api.get(f"/api/v1/projects/{project.id}/costs", headers=headers)).json()
    assert costs == {
        "projectId": str(project.id),
        "providers": [{"provider": "leadmagic", "attempts": 3, "successes": 3, "credits": 3.0}],
        "totalCredits": 3.0,
        "verifiedContacts": 3,
        "costPerVerifiedContact": 1.0,
        "budgetCredits": 5.0,
        "remainingCredits": 2.0,
    }
    shown = (await api.get(f"/api/v1/projects/{project.id}", headers=headers)).json()
    assert shown["enrichmentBudgetCredits"] == 5.0


async def test_costs_of_an_unknown_project_are_404(
    api: httpx.AsyncClient, auth_headers: Headers
) -> None:
    response = await api.get(
        f"/api/v1/projects/{uuid.uuid4()}/costs", headers=auth_headers("admin")
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def _gauge() -> float | None:
    return REGISTRY.get_sample_value("sourcing_provider_circuit_state", {"provider": "leadmagic"})


async def _leadmagic_shown(api: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await api.get("/api/v1/providers", headers=headers)
    assert response.status_code == 200
    items = {item["key"]: item for item in response.json()["items"]}
    assert len(items) == 10
    return items["leadmagic"]


async def test_the_breaker_opens_probes_and_closes_and_is_shown(
    session: AsyncSession,
    deps: EnrichmentDeps,
    clock: Clock,
    respx_mock: respx.MockRouter,
    api: httpx.AsyncClient,
    auth_headers: Headers,
) -> None:
    headers = auth_headers("admin")
    project = await create_project(session)
    email = _answers(respx_mock, httpx.Response(500, json={"title": "down"}))
    for _ in range(2):
        assert (await _enrich(session, await _lead(session, project), deps)).status == (
            LeadStatus.ENRICHMENT_FAILED
        )
    calls = email.call_count
    assert _gauge() == 2

    skipped = await _enrich(session, await _lead(session, project), deps)
    assert email.call_count == calls  # open: not asked
    assert skipped.status_reason == "no provider could be asked (circuit open: leadmagic)"
    shown = await _leadmagic_shown(api, headers)
    assert shown["breakerState"] == "OPEN"
    assert shown["circuits"][0]["failures"] == 2
    assert (shown["attempts"], shown["successes"]) == (2, 0)
    assert shown["creditsPerLookup"] == 1.0 and shown["missesFree"] is True
    assert shown["rateLimitPerMinute"] == 3000.0

    clock.seconds += 31  # half-open: one probe, which fails and reopens the circuit
    assert deps.guard is not None
    assert deps.guard.breakers["leadmagic"].state is CircuitState.HALF_OPEN
    assert _gauge() == 1
    await _enrich(session, await _lead(session, project), deps)
    assert email.call_count == calls + 3  # one lookup (its HTTP retries included)
    assert _gauge() == 2
    await _enrich(session, await _lead(session, project), deps)
    assert email.call_count == calls + 3

    clock.seconds += 31
    email.mock(return_value=httpx.Response(200, json=recording("leadmagic_email_finder_valid")))
    assert (await _enrich(session, await _lead(session, project), deps)).status == (
        LeadStatus.ENRICHED
    )
    assert _gauge() == 0
    assert (await _leadmagic_shown(api, headers))["breakerState"] == "CLOSED"
    assert (await api.get("/api/v1/providers", headers=auth_headers("caller"))).status_code == 403
