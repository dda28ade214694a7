"""Job-title discovery with Apollo and OpenAI answered by the provider sandbox (real HTTP).

Handler tests commit for real (the run's failure record uses its own transaction); the agent
test goes through the gateway, the outbox relay, the broker and the ingestion worker.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.auth import Principal, Role, mint_token
from sourcing.common.db import session_scope
from sourcing.common.events import Envelope
from sourcing.common.http import ExternalHttp
from sourcing.common.kafka.retry import is_transient
from sourcing.common.messages.sourcing import (
    JobTitleDiscoveryCompany,
    JobTitleDiscoveryRequested,
)
from sourcing.common.models import Company, JobTitle, JobTitleDiscoveryRun, OutboxMessage
from sourcing.devstack import Stack
from sourcing.ingestion.app import build_app
from sourcing.ingestion.clients import ApolloClient, JobTitleClient, MalformedModelAnswer
from sourcing.ingestion.handlers import JobTitleDiscovery
from sourcing.ingestion.repository import create_discovery_run
from sourcing.sandbox.server import serve_sandbox
from tests.factories import create_company, create_project
from tests.fixtures.api import serve_gateway
from tests.fixtures.kafka import make_kafka_settings, read_topic, running_app, wait_until
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

MALFORMED = "Evil Corp sandbox-malformed"


@pytest.fixture
async def sandbox_url() -> AsyncIterator[str]:
    async with serve_sandbox() as url:
        yield url


@pytest.fixture
def sandbox_settings(
    kafka_settings: Settings, infra: Stack, migrated_database_url: str, sandbox_url: str
) -> Settings:
    """This test's Kafka settings with every provider routed to the sandbox."""
    return make_kafka_settings(
        database_url=migrated_database_url,
        bootstrap=infra.bootstrap_servers,
        topic_prefix=kafka_settings.KAFKA_TOPIC_PREFIX,
        broker_kind=infra.broker_kind,
        SANDBOX_PROVIDERS=True,
        SANDBOX_URL=sandbox_url,
        OPENAI_MAX_RETRIES=0,
    )


@pytest.fixture
async def discovery(
    sandbox_settings: Settings, sessionmaker_committing: async_sessionmaker[AsyncSession]
) -> AsyncIterator[JobTitleDiscovery]:
    http = ExternalHttp(timeout_seconds=5.0)
    client = JobTitleClient.from_settings(sandbox_settings)
    yield JobTitleDiscovery(
        apollo=ApolloClient(settings=sandbox_settings, http=http),
        scorer=lambda: client,
        sessionmaker=sessionmaker_committing,
    )
    await client.aclose()
    await http.aclose()


async def _new_run(
    sessionmaker: async_sessionmaker[AsyncSession],
    project_id: uuid.UUID,
    companies: list[dict[str, Any]],
    geographies: list[str],
) -> uuid.UUID:
    async with session_scope(sessionmaker) as session:
        run = await create_discovery_run(
            session,
            project_id=project_id,
            companies=companies,
            geography_iso_codes=geographies,
            requested_by="tests",
            correlation_id="corr-jtd",
        )
        return run.id


async def _run_handlers(
    sessionmaker: async_sessionmaker[AsyncSession],
    discovery: JobTitleDiscovery,
    run_id: uuid.UUID,
    project_id: uuid.UUID,
    *,
    attempts: int = 1,
) -> list[BaseException]:
    """Plan the run, then handle each company message (``attempts`` tries, as the agent
    retries transient errors); returns the last error of each company that never succeeded."""
    request = JobTitleDiscoveryRequested(run_id=run_id, project_id=project_id)
    async with session_scope(sessionmaker) as session:
        await discovery.handle_requested(
            session, Envelope.new(request.message_type, request), request
        )
    async with session_scope(sessionmaker) as session:
        rows = (
            await session.scalars(
                select(OutboxMessage)
                .where(
                    OutboxMessage.topic == "job-title-discovery",
                    OutboxMessage.published_at.is_(None),
                )
                .order_by(OutboxMessage.seq)
            )
        ).all()
        envelopes = [Envelope.model_validate(row.envelope) for row in rows]
        for row in rows:
            row.published_at = func.now()
    failures: list[BaseException] = []
    for envelope in envelopes:
        if envelope.type != JobTitleDiscoveryCompany.message_type:
            continue
        payload = envelope.payload_model()
        assert isinstance(payload, JobTitleDiscoveryCompany)
        for attempt in range(attempts):
            try:
                async with session_scope(sessionmaker) as session:
                    await discovery.handle_company(session, envelope, payload)
                break
            except Exception as exc:
                if attempt == attempts - 1 or not is_transient(exc):
                    failures.append(exc)
                    break
    return failures


async def _titles(session: AsyncSession, company_id: uuid.UUID) -> list[JobTitle]:
    rows = await session.scalars(
        select(JobTitle)
        .where(JobTitle.company_id == company_id)
        .order_by(JobTitle.normalized_title)
    )
    return list(rows.all())


async def test_discovery_scores_titles_per_company_and_a_rerun_updates_them(
    sessionmaker_committing: async_sessionmaker[AsyncSession], discovery: JobTitleDiscovery
) -> None:
    async with session_scope(sessionmaker_committing) as session:
        project = await create_project(session, description="payments risk experts")
        wise = await create_company(session, project=project, name="Wise", domain="wise.com")
    companies: list[dict[str, Any]] = [
        {"companyName": "Stripe", "companyId": None},
        {"companyName": "Wise", "companyId": str(wise.id)},
    ]
    run_id = await _new_run(sessionmaker_committing, project.id, companies, ["US", "GB"])

    assert await _run_handlers(sessionmaker_committing, discovery, run_id, project.id) == []

    async with session_scope(sessionmaker_committing) as session:
        stripe = await session.scalar(
            select(Company).where(Company.project_id == project.id, Company.name == "Stripe")
        )
        assert stripe is not None  # created by name
        run = await session.get(JobTitleDiscoveryRun, run_id)
        assert run is not None
        total = 0
        for company in (stripe, wise):
            titles = await _titles(session, company.id)
            assert len(titles) >= 3, company.name
            assert {t.source for t in titles} == {"APOLLO", "OPENAI"}
            assert all(0.0 <= t.relevance_score <= 1.0 for t in titles)
            assert all(t.normalized_title == t.normalized_title.lower() for t in titles)
            assert all(t.discovery_run_id == run_id and t.project_id == project.id for t in titles)
            assert all(t.seniority and t.rationale for t in titles)
            total += len(titles)
        assert run.status == "SUCCEEDED"
        assert run.titles_discovered == total
        assert run.started_at is not None and run.finished_at is not None
        assert run.error is None
        assert {e["status"] for e in run.requested_companies} == {"DONE"}
        before = {
            (t.company_id, t.normalized_title): (t.id, t.relevance_score)
            for t in await session.scalars(
                select(JobTitle).where(JobTitle.project_id == project.id)
            )
        }

    rerun_id = await _new_run(sessionmaker_committing, project.id, companies, ["US", "GB"])
    assert await _run_handlers(sessionmaker_committing, discovery, rerun_id, project.id) == []
    async with session_scope(sessionmaker_committing) as session:
        after = list(
            await session.scalars(select(JobTitle).where(JobTitle.project_id == project.id))
        )
        # Same rows (same ids), updated by the rerun, none duplicated.
        assert {
            (t.company_id, t.normalized_title): (t.id, t.relevance_score) for t in after
        } == before
        assert {t.discovery_run_id for t in after} == {rerun_id}
        assert (
            await session.scalar(
                select(func.count()).select_from(Company).where(Company.project_id == project.id)
            )
            == 2
        )


async def test_malformed_model_answer_writes_nothing_for_that_company(
    sessionmaker_committing: async_sessionmaker[AsyncSession], discovery: JobTitleDiscovery
) -> None:
    async with session_scope(sessionmaker_committing) as session:
        project = await create_project(session)
    companies = [{"companyName": "Stripe"}, {"companyName": MALFORMED}]
    run_id = await _new_run(sessionmaker_committing, project.id, companies, ["US"])

    failures = await _run_handlers(
        sessionmaker_committing, discovery, run_id, project.id, attempts=3
    )

    assert len(failures) == 1
    assert isinstance(failures[0], MalformedModelAnswer)
    assert is_transient(failures[0])  # so the agent retries it before dead-lettering
    async with session_scope(sessionmaker_committing) as session:
        evil = await session.scalar(select(Company).where(Company.name == MALFORMED))
        stripe = await session.scalar(select(Company).where(Company.name == "Stripe"))
        assert evil is not None and stripe is not None
        assert await _titles(session, evil.id) == []
        assert len(await _titles(session, stripe.id)) >= 3
        run = await session.get(JobTitleDiscoveryRun, run_id)
        assert run is not None
        assert run.status == "FAILED"
        assert run.error is not None and "malformed model answer" in run.error
        assert run.titles_discovered == len(await _titles(session, stripe.id))


async def test_discovery_through_the_agent_dead_letters_a_malformed_answer(
    sandbox_settings: Settings,
    api_settings_factory: Callable[..., Settings],
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    async with session_scope(kafka_sessionmaker) as session:
        project = await create_project(session, geography_iso_codes=["US", "GB"])
    gateway_settings = api_settings_factory(KAFKA_TOPIC_PREFIX=sandbox_settings.KAFKA_TOPIC_PREFIX)
    token = mint_token(gateway_settings, Principal(user_id="ops-1", role=Role.OPS))
    async with serve_gateway(gateway_settings) as gateway:
        response = await gateway.post(
            "/api/v1/job-title-discovery/trigger",
            json={
                "projectId": str(project.id),
                "companies": [{"companyName": "Stripe"}, {"companyName": MALFORMED}],
            },
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 202, response.text
    run_id = uuid.UUID(response.json()["jobId"])

    app = build_app(
        sandbox_settings,
        web_enabled=False,
        sessionmaker=kafka_sessionmaker,
        datadir=tmp_path / "ingestion",
    )

    async def finished() -> bool:
        async with session_scope(kafka_sessionmaker) as session:
            run = await session.get(JobTitleDiscoveryRun, run_id)
            return run is not None and run.finished_at is not None

    async with running_app(app):
        await wait_until(finished, timeout=60, message="discovery run finished")
        dead = await read_topic(sandbox_settings, "dead-letter", min_count=1, settle=0.5)

    assert len(dead) == 1
    letter = dead[0].envelope().payload
    assert letter["consumer"] == "job-title-discovery"
    assert letter["originalType"] == "job-title-discovery.company.v1"
    assert letter["attempts"] == sandbox_settings.AGENT_MAX_ATTEMPTS
    assert "malformed model answer" in letter["error"]
    async with session_scope(kafka_sessionmaker) as session:
        run = await session.get(JobTitleDiscoveryRun, run_id)
        assert run is not None
        assert run.status == "FAILED"
        assert run.geography_iso_codes == ["US", "GB"]  # the project's, none were given
        evil = await session.scalar(select(Company).where(Company.name == MALFORMED))
        stripe = await session.scalar(select(Company).where(Company.name == "Stripe"))
        assert evil is not None and stripe is not None
        assert await _titles(session, evil.id) == []
        stripe_titles = await _titles(session, stripe.id)
        assert len(stripe_titles) >= 3
        assert run.titles_discovered == len(stripe_titles)


async def test_sandbox_answers_through_real_http(sandbox_url: str) -> None:
    """Guard: the sandbox these tests rely on is really served over HTTP."""
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{sandbox_url}/health")).json() == {"status": "ok"}
