"""The enrichment handler on the real database against the provider sandbox's deterministic
personas (`sourcing.sandbox.personas`): attempts, contacts, lead status and reason, outbox
messages, idempotence; and the ranking handler."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.allocation.handlers import AllocationHandlers
from sourcing.common.events import Envelope, MessagePayload
from sourcing.common.http import ExternalHttp
from sourcing.common.messages.allocation import CallTaskRequested
from sourcing.common.messages.enrichment import EnrichmentRequested, RankingRequested
from sourcing.common.models import (
    CallTask,
    ContactSuppression,
    EnrichmentAttempt,
    Expert,
    ExpertContact,
    Lead,
    OutboxMessage,
    Project,
    RankingSnapshot,
    SystemEvent,
)
from sourcing.common.models.enums import (
    EnrichmentAttemptStatus,
    EnrichmentPhase,
    SuppressedContactKind,
    SuppressionReason,
)
from sourcing.enrichment.handlers import handle_enrichment_batch, handle_enrichment_requested
from sourcing.enrichment.providers import build_providers
from sourcing.enrichment.service import (
    SUPPRESSED_REASON,
    EnrichmentDeps,
    apply_enrichment,
    handle_ranking_batch,
    handle_ranking_requested,
    prepare_enrichment,
    run_enrichment,
)
from sourcing.people.contacts import is_personal_email
from sourcing.people.suppression import value_hash
from sourcing.sandbox.personas import Outcome, expected_outcome
from tests.factories import (
    create_company,
    create_enrichment_attempt,
    create_expert,
    create_expert_contact,
    create_job_title,
    create_lead,
    create_suppression,
)
from tests.factories import create_project as _create_project
from tests.fixtures.settings import Settings, load_settings
from tests.unit.enrichment.support import make_http

P = TypeVar("P", bound=MessagePayload)

ADAPTER_TIMEOUT = 0.3  # per request; the sandbox's slow answers take 1 s


@pytest.fixture
def settings(sandbox_url: str, migrated_database_url: str) -> Settings:
    return load_settings(
        APP_ENV="test",
        DATABASE_URL=migrated_database_url,
        SANDBOX_PROVIDERS=True,
        SANDBOX_URL=sandbox_url,
        ZELIQ_CALLBACK_URL=None,  # Zeliq answers by callback only: unavailable
        PROVIDER_TIMEOUT_SECONDS=ADAPTER_TIMEOUT,
        ENRICHMENT_POLL_INTERVAL_SECONDS=0.0,
        ENRICHMENT_POLL_MAX_ATTEMPTS=5,
        ENRICHMENT_TIME_BUDGET_SECONDS=2.0,
        AGENT_ATTEMPT_TIMEOUT_SECONDS=20.0,
    )


@pytest.fixture
async def deps(settings: Settings) -> AsyncIterator[EnrichmentDeps]:
    http: ExternalHttp = make_http(timeout_seconds=ADAPTER_TIMEOUT)
    yield EnrichmentDeps(settings=settings, providers=build_providers(settings, http))
    await http.aclose()


async def create_project(session: AsyncSession, **overrides: Any) -> Project:
    return await _create_project(session, geography_iso_codes=["US", "GB", "DE"], **overrides)


async def _lead(
    session: AsyncSession, name: str, *, country: str = "US", project: Project | None = None
) -> Lead:
    first, last = name.split()
    slug = f"{first}-{last}-9{uuid.uuid4().hex[:6]}".lower()  # digit segment: ignored by sandbox
    expert = await create_expert(
        session,
        full_name=name,
        first_name=first,
        last_name=last,
        linkedin_url_normalized=f"https://www.linkedin.com/in/{slug}",
        company_name="Acme",
        company_domain="acme.com",
        country_iso=country,
        title="VP Payments",
    )
    project = project or await create_project(session)
    return await create_lead(
        session,
        project=project,
        expert=expert,
        raw_name=name,
        raw_company="Acme",
        raw_title="VP Payments",
        linkedin_url=expert.linkedin_url_normalized,
        company_domain="acme.com",
        country_iso=country,
        status="ENRICHING",
    )


def _envelope(lead: Lead) -> tuple[Envelope, EnrichmentRequested]:
    payload = EnrichmentRequested(
        lead_id=lead.id, expert_id=lead.expert_id, project_id=lead.project_id
    )
    return Envelope.new(EnrichmentRequested.message_type, payload), payload


async def _enrich(session: AsyncSession, lead: Lead, deps: EnrichmentDeps) -> None:
    envelope, payload = _envelope(lead)
    await handle_enrichment_requested(session, envelope, payload, deps=deps)
    await session.flush()
    await session.refresh(lead)


async def _attempts(session: AsyncSession, lead: Lead) -> list[EnrichmentAttempt]:
    rows = await session.execute(
        select(EnrichmentAttempt)
        .where(EnrichmentAttempt.lead_id == lead.id)
        .order_by(EnrichmentAttempt.phase.desc(), EnrichmentAttempt.provider)
    )
    return list(rows.scalars().all())


async def _contacts(session: AsyncSession, lead: Lead) -> list[ExpertContact]:
    rows = await session.execute(
        select(ExpertContact)
        .where(ExpertContact.expert_id == lead.expert_id)
        .order_by(ExpertContact.type, ExpertContact.value)
    )
    return list(rows.scalars().all())


async def _outbox(session: AsyncSession, *keys: uuid.UUID) -> list[tuple[str, str]]:
    rows = await session.execute(
        select(OutboxMessage.topic, OutboxMessage.envelope)
        .where(OutboxMessage.key.in_([str(key) for key in keys]))
        .order_by(OutboxMessage.seq)
    )
    return [(topic, envelope["type"]) for topic, envelope in rows]


async def test_standard_person_is_enriched_in_the_parallel_phase(
    session: AsyncSession, deps: EnrichmentDeps
) -> None:
    assert expected_outcome("leadmagic", "Alex Standard") is Outcome.HIT
    lead = await _lead(session, "Alex Standard")
    await _enrich(session, lead, deps)

    assert lead.status == "ENRICHED"
    assert lead.enriched_at is not None
    attempts = await _attempts(session, lead)
    # No history: the first five available providers in registry order, all at once.
    assert sorted(a.provider for a in attempts) == sorted(
        ["leadmagic", "prospeo", "exa", "rocketreach", "wiza"]
    )
    assert {a.phase for a in attempts} == {EnrichmentPhase.PARALLEL}
    assert all(a.latency_ms is not None and a.response_payload for a in attempts)
    assert all(a.http_status == 200 for a in attempts if a.status == "SUCCESS")
    contacts = await _contacts(session, lead)
    winner = contacts[0].provider
    assert winner in {"leadmagic", "prospeo", "rocketreach", "wiza"}
    assert {c.provider for c in contacts} == {winner}
    assert all((c.confidence or 0) >= 0.9 for c in contacts if c.type == "EMAIL")
    assert {c.type for c in contacts} == {"EMAIL", "PHONE"} or {c.type for c in contacts} == {
        "EMAIL"
    }
    winning_attempt = next(a for a in attempts if a.provider == winner)
    assert all(c.enrichment_attempt_id == winning_attempt.id for c in contacts)
    assert lead.status_reason and lead.status_reason.startswith(f"{winner} found contacts")
    # No auto outreach on this project: ranking + sheet sync only.
    assert await _outbox(session, lead.project_id, lead.expert_id) == [
        ("ranking", "ranking.requested.v1"),
        ("google-sheets-sync", "google-sheets-sync.requested.v1"),
    ]


async def test_redelivery_does_not_re_enrich(session: AsyncSession, deps: EnrichmentDeps) -> None:
    lead = await _lead(session, "Robin Standard")
    await _enrich(session, lead, deps)
    attempts = len(await _attempts(session, lead))
    contacts = [(c.type, c.value) for c in await _contacts(session, lead)]
    outbox = await _outbox(session, lead.project_id, lead.expert_id)

    await _enrich(session, lead, deps)  # another delivery (new envelope id)

    assert lead.status == "ENRICHED"
    assert len(await _attempts(session, lead)) == attempts
    assert [(c.type, c.value) for c in await _contacts(session, lead)] == contacts
    assert await _outbox(session, lead.project_id, lead.expert_id) == outbox


@pytest.mark.parametrize("status", ["PAUSED", "COMPLETED", "ARCHIVED"])
async def test_a_lead_of_a_project_not_active_is_not_enriched(
    session: AsyncSession, deps: EnrichmentDeps, status: str
) -> None:
    project = await create_project(session, status=status)
    lead = await _lead(session, "Robin Standard", project=project)
    await _enrich(session, lead, deps)
    # Left as it was (a PAUSED project's lead is asked for again when the project resumes).
    assert lead.status == "ENRICHING"
    assert await _attempts(session, lead) == []
    assert await _contacts(session, lead) == []
    assert await _outbox(session, lead.project_id, lead.expert_id) == []
    if status == "PAUSED":
        project.status = "ACTIVE"  # resumed: the ingestion service asks again
        await _enrich(session, lead, deps)
        assert lead.status == "ENRICHED" and await _attempts(session, lead)


async def test_a_suppressed_experts_lead_is_disqualified_without_calling_a_provider(
    session: AsyncSession, deps: EnrichmentDeps
) -> None:
    lead = await _lead(session, "Robin Standard")
    expert = await session.get(Expert, lead.expert_id)
    assert expert is not None
    await create_suppression(session, expert=expert)

    await _enrich(session, lead, deps)

    assert (lead.status, lead.status_reason) == ("DISQUALIFIED", SUPPRESSED_REASON)
    assert await _attempts(session, lead) == []
    assert await _contacts(session, lead) == []


async def test_a_suppression_during_the_provider_calls_disqualifies_the_lead(
    session: AsyncSession, deps: EnrichmentDeps
) -> None:
    """Apply re-reads the person rule with the lead's lock: a contact suppression naming the
    expert's LinkedIn URL, entered while the providers answered, wins over their contacts."""
    lead = await _lead(session, "Robin Standard")
    envelope, payload = _envelope(lead)
    plan = await prepare_enrichment(session, payload, deps, correlation_id=envelope.correlation_id)
    assert plan is not None
    outcome = await run_enrichment(plan, deps)
    assert outcome is not None and outcome.best is not None
    expert = await session.get(Expert, lead.expert_id)
    assert expert is not None and expert.linkedin_url_normalized
    session.add(
        ContactSuppression(
            kind=SuppressedContactKind.LINKEDIN_URL.value,
            value_hash=value_hash(expert.linkedin_url_normalized),
            reason=SuppressionReason.OPT_OUT.value,
        )
    )
    await session.flush()

    await apply_enrichment(session, plan, outcome, deps)
    await session.flush()
    await session.refresh(lead)

    assert (lead.status, lead.status_reason) == ("DISQUALIFIED", SUPPRESSED_REASON)
    assert await _contacts(session, lead) == []


async def test_second_lead_of_an_enriched_expert_reuses_the_contacts(
    session: AsyncSession, deps: EnrichmentDeps
) -> None:
    lead = await _lead(session, "Sam Standard")
    await _enrich(session, lead, deps)
    other_project = await create_project(session, auto_outreach_channel="email")
    expert = await session.get(Expert, lead.expert_id)
    second = await create_lead(
        session, project=other_project, expert=expert, raw_name="Sam Standard", status="NEW"
    )
    await _enrich(session, second, deps)

    assert second.status == "ENRICHED"
    assert second.status_reason and second.status_reason.startswith("contacts already known")
    assert await _attempts(session, second) == []
    assert ("outreach", "outreach.auto.v1") in await _outbox(session, second.expert_id)


@pytest.mark.parametrize("country", ["GB", "DE"])
async def test_personal_only_person_in_europe_fails_with_the_region_reason(
    session: AsyncSession, deps: EnrichmentDeps, country: str
) -> None:
    lead = await _lead(session, "Kim Personal", country=country)
    await _enrich(session, lead, deps)

    assert lead.status == "ENRICHMENT_FAILED"
    assert lead.status_reason is not None
    assert lead.status_reason.startswith("no provider found a contact (9 tried)")
    assert f"professional email required for {country}" in lead.status_reason
    attempts = await _attempts(session, lead)
    assert len(attempts) == 9  # every available provider (Zeliq is not configured)
    assert EnrichmentAttemptStatus.FILTERED in {a.status for a in attempts}
    assert {a.status for a in attempts} <= {"FILTERED", "NO_MATCH"}
    assert [a.phase for a in attempts].count("FALLBACK") == 4
    assert await _contacts(session, lead) == []
    # The filtered personal emails stay visible in the attempt's payload (diagnostics).
    filtered = [e for a in attempts for e in a.response_payload["filtered_emails"]]  # type: ignore[index]
    assert filtered and all(is_personal_email(e["address"]) for e in filtered)
    topics = [topic for topic, _ in await _outbox(session, lead.project_id, lead.expert_id)]
    assert "outreach" not in topics and "ranking" in topics


async def test_personal_only_person_in_the_us_keeps_the_personal_email(
    session: AsyncSession, deps: EnrichmentDeps
) -> None:
    lead = await _lead(session, "Kim Personal", country="US")
    await _enrich(session, lead, deps)
    assert lead.status == "ENRICHED"
    contacts = await _contacts(session, lead)
    assert contacts and all(is_personal_email(c.value) for c in contacts)
    assert all(c.is_professional is False for c in contacts)


async def test_low_confidence_everywhere_is_enriched_below_target_without_outreach(
    session: AsyncSession, deps: EnrichmentDeps
) -> None:
    project = await create_project(session, auto_outreach_channel="email")
    lead = await _lead(session, "Alex Lowconf", project=project)
    await _enrich(session, lead, deps)

    assert lead.status == "ENRICHED"
    assert lead.status_reason and "below the 0.70 target" in lead.status_reason
    assert len(await _attempts(session, lead)) == 9  # the fallback asked everyone
    contacts = await _contacts(session, lead)
    assert contacts and all((c.confidence or 1) < 0.7 for c in contacts)
    topics = [topic for topic, _ in await _outbox(session, lead.project_id, lead.expert_id)]
    assert "outreach" not in topics


async def test_nobody_knows_the_person(session: AsyncSession, deps: EnrichmentDeps) -> None:
    lead = await _lead(session, "Alex Nomatch", country="GB")
    await _enrich(session, lead, deps)
    assert lead.status == "ENRICHMENT_FAILED"
    assert lead.status_reason == (
        "no provider found a contact (9 tried); professional email required for GB"
    )
    assert {a.status for a in await _attempts(session, lead)} == {"NO_MATCH"}


async def test_slow_providers_time_out_within_the_budget(
    session: AsyncSession, deps: EnrichmentDeps
) -> None:
    lead = await _lead(session, "Alex Slow")
    started = time.monotonic()
    await _enrich(session, lead, deps)
    elapsed = time.monotonic() - started

    statuses = {a.provider: a.status for a in await _attempts(session, lead)}
    for vendor in ("leadmagic", "prospeo", "rocketreach", "wiza"):
        assert statuses[vendor] == "TIMEOUT"
    # Everyone else answers with low confidence: the best of them is kept.
    assert lead.status == "ENRICHED"
    assert lead.status_reason and "below the 0.70 target" in lead.status_reason
    assert elapsed < deps.waterfall_budget()


async def test_flaky_providers_are_recorded_and_the_run_still_wins(
    session: AsyncSession, deps: EnrichmentDeps
) -> None:
    project = await create_project(session, auto_outreach_channel="email")
    lead = await _lead(session, "Alex Flaky", project=project)
    await _enrich(session, lead, deps)

    statuses = {a.provider: a.status for a in await _attempts(session, lead)}
    assert statuses["leadmagic"] == "RATE_LIMITED"
    assert statuses["prospeo"] == "ERROR"
    assert lead.status == "ENRICHED"
    assert ("outreach", "outreach.auto.v1") in await _outbox(session, lead.expert_id)


async def test_history_steers_the_parallel_phase(
    session: AsyncSession, deps: EnrichmentDeps
) -> None:
    lead = await _lead(session, "Robin Standard")
    # PDL and ContactOut succeeded before; LeadMagic kept failing.
    for provider, status, count in (
        ("peopledatalabs", "SUCCESS", 30),
        ("contactout", "SUCCESS", 30),
        ("leadmagic", "ERROR", 30),
    ):
        for _ in range(count):
            session.add(
                EnrichmentAttempt(
                    expert_id=lead.expert_id,
                    run_id=uuid.uuid4(),
                    provider=provider,
                    phase="PARALLEL",
                    status=status,
                )
            )
    await session.flush()
    deps.settings = deps.settings.model_copy(update={"ENRICHMENT_PARALLEL_PROVIDERS": 2})
    await _enrich(session, lead, deps)

    attempts = await _attempts(session, lead)
    parallel = {a.provider for a in attempts if a.phase == "PARALLEL"}
    assert parallel == {"peopledatalabs", "contactout"}
    assert "leadmagic" not in {a.provider for a in attempts}


async def test_batch_handler_runs_waterfalls_together(
    session: AsyncSession, deps: EnrichmentDeps
) -> None:
    leads = [await _lead(session, name) for name in ("Alex Standard", "Kim Nomatch")]
    items = [_envelope(lead) for lead in leads]
    items.append(items[0])  # the same request twice in one batch
    await handle_enrichment_batch(session, items, deps=deps, others={})
    for lead in leads:
        await session.refresh(lead)
    assert [lead.status for lead in leads] == ["ENRICHED", "ENRICHMENT_FAILED"]
    assert len(await _attempts(session, leads[0])) == 5


async def test_an_enrichment_batch_has_the_effect_of_its_messages_one_by_one(
    session: AsyncSession, deps: EnrichmentDeps
) -> None:
    """Every path of apply in one batch (enriched with auto outreach, failed, suppressed,
    held by a spent budget, contacts already known, a paused project, two leads of one
    expert, a duplicate): the set-based writes are those of the messages one by one."""
    outreach = await create_project(session, auto_outreach_channel="email")
    enriched = await _lead(session, "Alex Standard", project=outreach)
    failed = await _lead(session, "Kim Nomatch")
    suppressed = await _lead(session, "Robin Standard")
    await create_suppression(session, expert=await session.get(Expert, suppressed.expert_id))
    held = await _lead(session, "Sam Standard", project=await create_project(
        session, enrichment_budget_credits=0
    ))  # fmt: skip
    known = await _lead(session, "Jo Standard")
    await create_expert_contact(
        session, expert_id=known.expert_id, source="ENRICHMENT", confidence=0.95
    )
    paused = await _lead(session, "Lee Standard", project=await create_project(
        session, status="PAUSED"
    ))  # fmt: skip
    twice = await _lead(session, "Max Standard")
    again = await create_lead(
        session, project=await create_project(session), expert_id=twice.expert_id,
        raw_name="Max Standard", status="NEW",
    )  # fmt: skip
    leads = [enriched, failed, suppressed, held, known, paused, twice, again]
    items = [_envelope(lead) for lead in leads]
    items.append(items[0])
    ids = [lead.id for lead in leads]
    experts = [lead.expert_id for lead in leads]

    async def run(batch: bool) -> list[Any]:
        async with session.begin_nested() as savepoint:
            since = await session.scalar(select(func.coalesce(func.max(OutboxMessage.seq), 0)))
            if batch:
                await handle_enrichment_batch(session, items, deps=deps, others={})
            else:
                for envelope, payload in items:
                    await handle_enrichment_requested(session, envelope, payload, deps=deps)
            await session.flush()
            states = await session.execute(
                select(Lead.id, Lead.status, Lead.status_reason, Lead.enriched_at.is_not(None))
                .where(Lead.id.in_(ids))
                .order_by(Lead.id)
            )
            attempts = await session.execute(
                select(EnrichmentAttempt.lead_id, EnrichmentAttempt.provider)
                .where(EnrichmentAttempt.lead_id.in_(ids))
                .order_by(EnrichmentAttempt.lead_id, EnrichmentAttempt.provider)
            )
            contacts = await session.execute(
                select(ExpertContact.expert_id, ExpertContact.type, ExpertContact.source)
                .where(ExpertContact.expert_id.in_(experts))
                .order_by(ExpertContact.expert_id, ExpertContact.type, ExpertContact.source)
            )
            events = await session.execute(
                select(SystemEvent.entity_id, SystemEvent.type, SystemEvent.data)
                .where(SystemEvent.entity_id.in_(ids))
                .order_by(SystemEvent.entity_id, SystemEvent.type, SystemEvent.created_at)
            )
            outbox = await session.execute(
                select(OutboxMessage.topic, OutboxMessage.key, OutboxMessage.envelope["type"])
                .where(OutboxMessage.seq > since)
                .order_by(OutboxMessage.topic, OutboxMessage.key, OutboxMessage.seq)
            )
            written = [
                [tuple(row) for row in rows]
                for rows in (states, attempts, contacts, events, outbox)
            ]
            await savepoint.rollback()
        return written

    one_by_one, batched = await run(batch=False), await run(batch=True)
    statuses = {row[0]: row[1] for row in one_by_one[0]}
    assert [statuses[lead_id] for lead_id in ids] == [
        "ENRICHED", "ENRICHMENT_FAILED", "DISQUALIFIED", "ENRICHING", "ENRICHED", "ENRICHING",
        "ENRICHED", "ENRICHED",
    ]  # fmt: skip
    assert ("outreach", str(experts[0]), "outreach.auto.v1") in one_by_one[4]
    assert batched == one_by_one


async def test_ranking_writes_a_snapshot_and_the_lead_score(
    session: AsyncSession, deps: EnrichmentDeps
) -> None:
    project = await create_project(session, priority=3)
    company = await create_company(session, project=project)
    await create_job_title(
        session, company=company, title="VP Payments", normalized_title="vp payments",
        relevance_score=0.9,
    )  # fmt: skip
    lead = await _lead(session, "Alex Standard", project=project)
    await _enrich(session, lead, deps)
    payload = RankingRequested(project_id=project.id, expert_id=lead.expert_id)
    await handle_ranking_requested(
        session, Envelope.new(RankingRequested.message_type, payload), payload
    )
    await session.refresh(lead)

    snapshot = (
        await session.execute(
            select(RankingSnapshot).where(RankingSnapshot.expert_id == lead.expert_id)
        )
    ).scalar_one()
    assert snapshot.lead_id == lead.id and snapshot.formula_version == "v1"
    assert snapshot.components["title_relevance"] == 0.9
    assert snapshot.components["geography"] == 1.0
    assert snapshot.components["contactability"] > 0.6
    assert lead.ranking_score == snapshot.score
    assert 70 < snapshot.score <= 100


async def test_ranking_of_unknown_ids_does_nothing(session: AsyncSession) -> None:
    payload = RankingRequested(project_id=uuid.uuid4(), expert_id=uuid.uuid4())
    await handle_ranking_requested(
        session, Envelope.new(RankingRequested.message_type, payload), payload
    )
    count = (
        await session.execute(
            select(func.count())
            .select_from(RankingSnapshot)
            .where(RankingSnapshot.project_id == payload.project_id)
        )
    ).scalar_one()
    assert count == 0


async def test_a_lead_waiting_for_a_callback_is_not_enriched_again(
    session: AsyncSession, deps: EnrichmentDeps
) -> None:
    lead = await _lead(session, "Alex Standard")
    await create_enrichment_attempt(
        session, expert_id=lead.expert_id, lead_id=lead.id, provider="zeliq", status="PENDING"
    )
    await _enrich(session, lead, deps)
    assert lead.status == "ENRICHING" and len(await _attempts(session, lead)) == 1


async def _rankings(session: AsyncSession, since_seq: int) -> tuple[list[Any], list[Any]]:
    """The snapshots (meaningful columns, in write order) and the call-task requests staged
    after outbox row ``since_seq``; snapshots are told apart by the outbox rows' order."""
    snapshots = (
        await session.execute(
            select(
                RankingSnapshot.project_id,
                RankingSnapshot.expert_id,
                RankingSnapshot.lead_id,
                RankingSnapshot.score,
                RankingSnapshot.components,
                RankingSnapshot.correlation_id,
            ).order_by(RankingSnapshot.project_id, RankingSnapshot.expert_id, RankingSnapshot.score)
        )
    ).all()
    requests = (
        await session.scalars(
            select(OutboxMessage.envelope["payload"])
            .where(OutboxMessage.seq > since_seq)
            .where(OutboxMessage.envelope["type"].astext == CallTaskRequested.message_type)
            .order_by(OutboxMessage.seq)
        )
    ).all()
    return [tuple(row) for row in snapshots], list(requests)


async def test_a_ranking_batch_has_the_effect_of_its_messages_one_by_one(
    session: AsyncSession,
) -> None:
    """Two projects, a duplicate, an unknown project, an expert without a lead in the project:
    the set-based batch writes the snapshots, scores and call-task requests the per-message
    handler writes."""
    first = await create_project(session, priority=3)
    second = await _create_project(session, priority=1, geography_iso_codes=["FR"])
    company = await create_company(session, project=first)
    await create_job_title(
        session, company=company, title="VP Payments", normalized_title="vp payments",
        relevance_score=0.9,
    )  # fmt: skip
    contacted = await _lead(session, "Alex Standard", project=first)
    await create_expert_contact(session, expert_id=contacted.expert_id, confidence=0.8)
    await create_expert_contact(
        session, expert_id=contacted.expert_id, type="PHONE", value="+12025550169",
        value_normalized="+12025550169", is_professional=None, confidence=0.7,
    )  # fmt: skip
    bare = await _lead(session, "Kim Nomatch", project=first, country="GB")
    elsewhere = await _lead(session, "Sam Standard", project=second, country="DE")
    requests = [
        RankingRequested(project_id=first.id, expert_id=contacted.expert_id),
        RankingRequested(project_id=first.id, expert_id=bare.expert_id),
        RankingRequested(project_id=uuid.uuid4(), expert_id=bare.expert_id),
        RankingRequested(project_id=second.id, expert_id=contacted.expert_id),  # no lead there
        RankingRequested(project_id=second.id, expert_id=elsewhere.expert_id),
        RankingRequested(project_id=first.id, expert_id=contacted.expert_id),
    ]
    items = [
        (Envelope.new(RankingRequested.message_type, p, correlation_id=f"c{i}"), p)
        for i, p in enumerate(requests)
    ]

    async def run(batch: bool) -> tuple[list[Any], list[Any], list[Any]]:
        async with session.begin_nested() as savepoint:
            since = await session.scalar(select(func.coalesce(func.max(OutboxMessage.seq), 0)))
            if batch:
                await handle_ranking_batch(session, items)
            else:
                for envelope, payload in items:
                    await handle_ranking_requested(session, envelope, payload)
            snapshots, staged = await _rankings(session, since or 0)
            scores = (
                await session.execute(select(Lead.id, Lead.ranking_score).order_by(Lead.id))
            ).all()
            await savepoint.rollback()
        return snapshots, staged, [tuple(row) for row in scores]

    one_by_one, batched = await run(batch=False), await run(batch=True)
    assert len(one_by_one[0]) == 4 and len(one_by_one[1]) == 4
    assert all(score is not None for _, score in one_by_one[2])
    assert batched == one_by_one


async def test_an_enrichment_result_with_a_phone_ends_in_one_pending_call_task(
    session: AsyncSession, deps: EnrichmentDeps, settings: Settings
) -> None:
    """The joint to allocation (issue 13): enrichment → ranking → ``call-task.requested.v1``
    → the allocation handler, each step's outbox message handed to the next handler."""
    project = await create_project(session, priority=4)
    lead = await _lead(session, "Alex Standard", project=project)
    await _enrich(session, lead, deps)
    [phone] = [c for c in await _contacts(session, lead) if c.type == "PHONE"]
    assert (phone.value_normalized, phone.is_dialable) == ("+12025550169", True)
    ranking = await _staged(session, "ranking", RankingRequested, lead.project_id)
    await handle_ranking_requested(session, *ranking)
    allocation = AllocationHandlers(settings)

    for _ in range(2):  # the request, then its replay
        envelope, request = await _staged(
            session, "call-allocation", CallTaskRequested, lead.expert_id
        )
        await allocation.handle_call_task_requested(session, envelope, request)

    await session.refresh(lead)
    tasks = (
        await session.scalars(select(CallTask).where(CallTask.expert_id == lead.expert_id))
    ).all()
    assert [(t.status, t.kind, t.priority, t.phone_number) for t in tasks] == [
        ("PENDING", "INITIAL", 4, "+12025550169")
    ]
    assert tasks[0].ranking_score == lead.ranking_score


async def _staged(
    session: AsyncSession, lane: str, model: type[P], key: uuid.UUID
) -> tuple[Envelope, P]:
    """The latest message of ``model`` staged for ``lane`` under ``key``."""
    row = await session.scalar(
        select(OutboxMessage.envelope)
        .where(OutboxMessage.topic == lane, OutboxMessage.key == str(key))
        .where(OutboxMessage.envelope["type"].astext == model.message_type)
        .order_by(OutboxMessage.seq.desc())
        .limit(1)
    )
    assert row is not None, f"no {model.message_type} staged for {lane}"
    envelope = Envelope.model_validate(row)
    return envelope, model.model_validate(envelope.payload)
