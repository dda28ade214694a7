"""Zeliq's callbacks on the real database and broker: the waterfall leaves Zeliq PENDING, the
gateway's signed receiver (``POST /webhooks/zeliq/{requestId}/{kind}``) publishes the callback
on the enrichment lane, and the enrichment consumer settles the attempt and completes the
expert's waterfall; the scheduler's sweep times out what never answers.

Only the vendors' HTTP is mocked (respx); the callbacks go through the gateway and are read back
from the broker before the consumer's handler takes them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import respx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.clock import utc_now
from sourcing.common.events import Envelope
from sourcing.common.messages.enrichment import (
    EnrichmentCallbackSweepRequested,
    EnrichmentRequested,
    ZeliqCallbackReceived,
)
from sourcing.common.models import (
    EnrichmentAttempt,
    Expert,
    ExpertContact,
    Lead,
    OutboxMessage,
    ProcessedWebhookEvent,
)
from sourcing.enrichment.handlers import handle_enrichment_requested
from sourcing.enrichment.providers import build_providers
from sourcing.enrichment.service import (
    EnrichmentDeps,
    record_zeliq_callback,
    time_out_callbacks,
)
from tests.factories import create_expert, create_lead, create_project, create_suppression
from tests.fixtures.kafka import read_topic
from tests.fixtures.settings import Settings
from tests.unit.enrichment.support import make_http

pytestmark = pytest.mark.integration

ZELIQ = "https://api.zeliq.com/api"
LEADMAGIC = "https://api.leadmagic.io"
RECEIVER = "https://hooks.example.test/webhooks/zeliq"
SECRET = "zeliq-callback-integration-secret"
TIMEOUT_SECONDS = 600
ServeApi = Callable[[Settings], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def settings(api_settings_factory: Callable[..., Settings], lane_topics: str) -> Settings:
    return api_settings_factory(
        KAFKA_TOPIC_PREFIX=lane_topics,
        SANDBOX_PROVIDERS=False,
        ZELIQ_API_KEY="sk-zeliq-test-key",
        LEADMAGIC_API_KEY="lm-test-key",
        ZELIQ_CALLBACK_URL=RECEIVER,
        ZELIQ_CALLBACK_SECRET=SECRET,
        ZELIQ_CALLBACK_TIMEOUT_SECONDS=TIMEOUT_SECONDS,
        ENRICHMENT_POLL_INTERVAL_SECONDS=0.0,
        ENRICHMENT_TIME_BUDGET_SECONDS=2.0,
        AGENT_ATTEMPT_TIMEOUT_SECONDS=20.0,
    )


@pytest.fixture
async def gateway(serve_api: ServeApi, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_api(settings) as client:
        yield client


@pytest.fixture
async def vendors() -> AsyncIterator[respx.MockRouter]:
    """Zeliq accepts both jobs; LeadMagic knows nobody unless a test says otherwise."""
    with respx.mock(assert_all_called=False) as router:
        for kind in ("email", "phone"):
            router.post(f"{ZELIQ}/contact/enrich/{kind}").mock(
                return_value=httpx.Response(202, json={"jobId": f"job-{kind}-{uuid.uuid4()}"})
            )
        router.post(f"{LEADMAGIC}/v1/people/email-finder").mock(
            return_value=httpx.Response(200, json={"email": None, "status": "not_found"})
        )
        router.post(f"{LEADMAGIC}/mobile-finder").mock(
            return_value=httpx.Response(200, json={"mobile_number": None})
        )
        yield router


@pytest.fixture
async def deps(settings: Settings, vendors: respx.MockRouter) -> AsyncIterator[EnrichmentDeps]:
    http = make_http(timeout_seconds=1.0)
    providers = build_providers(settings, http, keys=["leadmagic", "zeliq"])
    yield EnrichmentDeps(settings=settings, providers=providers)
    await http.aclose()


async def _lead(session: AsyncSession, *, country: str = "US") -> Lead:
    expert = await create_expert(
        session,
        full_name="Jane Doe",
        first_name="Jane",
        last_name="Doe",
        linkedin_url_normalized=f"https://www.linkedin.com/in/jane-doe-{uuid.uuid4().hex[:8]}",
        company_name="Stripe",
        company_domain="stripe.com",
        country_iso=country,
    )
    project = await create_project(session, auto_outreach_channel="email")
    return await create_lead(
        session,
        project=project,
        expert=expert,
        raw_name="Jane Doe",
        raw_company="Stripe",
        company_domain="stripe.com",
        country_iso=country,
        status="NEW",
    )


async def _enrich(session: AsyncSession, lead: Lead, deps: EnrichmentDeps) -> None:
    payload = EnrichmentRequested(
        lead_id=lead.id, expert_id=lead.expert_id, project_id=lead.project_id
    )
    envelope = Envelope.new(EnrichmentRequested.message_type, payload)
    await handle_enrichment_requested(session, envelope, payload, deps=deps)
    await session.flush()
    await session.refresh(lead)


def _callback_paths(vendors: respx.MockRouter) -> dict[str, str]:
    """The path and query of each callback URL the waterfall gave Zeliq, by kind."""
    paths: dict[str, str] = {}
    for call in vendors.calls:
        if call.request.url.host == "api.zeliq.com":
            url = urlsplit(json.loads(call.request.content)["callbackUrl"])
            assert f"{url.scheme}://{url.netloc}{url.path}".startswith(RECEIVER + "/")
            paths[url.path.rsplit("/", 1)[1]] = f"{url.path}?{url.query}"
    return paths


async def _attempts(session: AsyncSession, lead: Lead) -> dict[str, EnrichmentAttempt]:
    rows = await session.execute(
        select(EnrichmentAttempt)
        .where(EnrichmentAttempt.lead_id == lead.id)
        .execution_options(populate_existing=True)
    )
    return {row.provider: row for row in rows.scalars()}


async def _outbox_types(session: AsyncSession) -> list[str]:
    rows = await session.execute(select(OutboxMessage).order_by(OutboxMessage.seq))
    return [row.envelope["type"] for row in rows.scalars()]


async def _deliver(gateway: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    return await gateway.post(path, json=body)


async def _consume(
    session: AsyncSession, settings: Settings, deps: EnrichmentDeps, *, count: int
) -> list[Envelope]:
    """The enrichment lane's callbacks read back from the broker, handled in order."""
    records = await read_topic(settings, "enrichment", min_count=count, settle=0.3)
    envelopes = [record.envelope() for record in records]
    for envelope in envelopes[-count:]:
        payload = envelope.payload_model()
        assert isinstance(payload, ZeliqCallbackReceived)
        await record_zeliq_callback(session, envelope, payload, deps=deps)
    await session.flush()
    return envelopes


EMAIL = {
    "jobId": "job-email",
    "contact": {
        "most_probable_email": "Jane.Doe@Stripe.com",
        "most_probable_email_status": "valid",
    },
}
PHONE = {"jobId": "job-phone", "contact": {"most_probable_phone": "+1 415 555 0122"}}


async def test_signed_callbacks_complete_the_attempt_and_the_experts_enrichment(
    session: AsyncSession,
    gateway: httpx.AsyncClient,
    settings: Settings,
    deps: EnrichmentDeps,
    vendors: respx.MockRouter,
) -> None:
    lead = await _lead(session)
    await _enrich(session, lead, deps)

    # Nobody else found anything: Zeliq is PENDING, not failed, and the lead waits.
    attempts = await _attempts(session, lead)
    zeliq = attempts["zeliq"]
    assert (attempts["leadmagic"].status, zeliq.status) == ("NO_MATCH", "PENDING")
    assert zeliq.callback_request_id is not None
    assert set(zeliq.callback_jobs or {}) == {"email", "phone"}
    assert lead.status == "ENRICHING"
    assert lead.status_reason == "waiting for the callback of zeliq (nothing found so far)"
    assert await _outbox_types(session) == []  # no ranking or outreach yet

    paths = _callback_paths(vendors)
    assert set(paths) == {"email", "phone"}
    assert str(zeliq.callback_request_id) in paths["email"]

    response = await _deliver(gateway, paths["email"], EMAIL)
    assert response.status_code == 202, response.text
    assert response.json()["eventId"] == f"{zeliq.callback_request_id}:email"
    [envelope] = await _consume(session, settings, deps, count=1)
    assert envelope.type == "zeliq.callback-received.v1"
    assert envelope.payload["expertId"] == str(lead.expert_id)
    # One job of two answered: the attempt still waits for the phone job.
    assert (await _attempts(session, lead))["zeliq"].status == "PENDING"

    response = await _deliver(gateway, paths["phone"], PHONE)
    assert response.status_code == 202, response.text
    await _consume(session, settings, deps, count=1)

    zeliq = (await _attempts(session, lead))["zeliq"]
    assert (zeliq.status, zeliq.confidence) == ("SUCCESS", 0.9)
    assert zeliq.answered_at is not None
    assert set(zeliq.response_payload["callbacks"]) == {"email", "phone"}  # type: ignore[index]
    await session.refresh(lead)
    assert lead.status == "ENRICHED" and lead.enriched_at is not None
    assert lead.status_reason == "zeliq found contacts at confidence 0.90"
    contacts = (
        await session.execute(
            select(ExpertContact).where(ExpertContact.expert_id == lead.expert_id)
        )
    ).scalars()
    assert {
        (c.type, c.value_normalized, c.provider, c.enrichment_attempt_id) for c in contacts
    } == {
        ("EMAIL", "jane.doe@stripe.com", "zeliq", zeliq.id),
        ("PHONE", "+14155550122", "zeliq", zeliq.id),
    }
    assert await _outbox_types(session) == [
        "ranking.requested.v1",
        "outreach.auto.v1",
        "google-sheets-sync.requested.v1",
    ]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda path: path.split("?")[0],  # no signature
        lambda path: path.split("=")[0] + "=" + "0" * 64,  # wrong signature
        lambda path: path.replace("/email?", "/phone?"),  # the email job's signature on phone
        lambda path: path.replace(path.split("/")[-2], str(uuid.uuid4())),  # another request
    ],
    ids=["missing", "wrong", "other-kind", "other-request"],
)
async def test_a_bad_signature_is_401_in_the_envelope_and_publishes_nothing(
    session: AsyncSession,
    gateway: httpx.AsyncClient,
    settings: Settings,
    deps: EnrichmentDeps,
    vendors: respx.MockRouter,
    tamper: Callable[[str], str],
) -> None:
    lead = await _lead(session)
    await _enrich(session, lead, deps)
    path = tamper(_callback_paths(vendors)["email"])

    response = await _deliver(gateway, path, EMAIL)

    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "unauthorized"
    assert "signature" in error["message"]
    assert await read_topic(settings, "enrichment", settle=0.3) == []


async def test_a_replayed_callback_is_deduplicated(
    session: AsyncSession,
    gateway: httpx.AsyncClient,
    settings: Settings,
    deps: EnrichmentDeps,
    vendors: respx.MockRouter,
) -> None:
    lead = await _lead(session)
    await _enrich(session, lead, deps)
    paths = _callback_paths(vendors)
    for body in (EMAIL, {"contact": {"most_probable_email": "other@stripe.com"}}):
        response = await _deliver(gateway, paths["email"], body)
        assert response.status_code == 202, response.text
    records = await read_topic(settings, "enrichment", min_count=2, settle=0.3)
    # Same request and kind: the same envelope id, so the reliability layer drops the second.
    assert len({record.envelope().id for record in records}) == 1
    # The webhook dedup holds even when each delivery reaches the handler.
    for record in records:
        envelope = record.envelope()
        payload = envelope.payload_model()
        assert isinstance(payload, ZeliqCallbackReceived)
        await record_zeliq_callback(session, envelope, payload, deps=deps)
    await session.flush()

    zeliq = (await _attempts(session, lead))["zeliq"]
    assert zeliq.response_payload["callbacks"] == {"email": EMAIL}  # type: ignore[index]
    claimed = await session.scalar(
        select(func.count())
        .select_from(ProcessedWebhookEvent)
        .where(ProcessedWebhookEvent.source == "zeliq")
    )
    assert claimed == 1


async def test_an_unknown_request_id_is_a_clear_404_and_bad_input_is_never_500(
    session: AsyncSession,
    gateway: httpx.AsyncClient,
    settings: Settings,
    deps: EnrichmentDeps,
    vendors: respx.MockRouter,
) -> None:
    lead = await _lead(session)
    await _enrich(session, lead, deps)
    path = _callback_paths(vendors)["email"]
    request_id = path.split("/")[-2]
    # A validly signed URL whose attempt is gone (the expert was deleted since).
    await session.execute(
        EnrichmentAttempt.__table__.delete().where(EnrichmentAttempt.lead_id == lead.id)
    )
    await session.flush()

    response = await _deliver(gateway, path, EMAIL)
    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert request_id in error["message"]
    assert error["details"] == {"requestId": request_id}

    not_json = await gateway.post(
        path, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400 and "error" in not_json.json()
    not_object = await gateway.post(path, json=["a list"])
    assert not_object.status_code == 400 and "error" in not_object.json()
    for bad in (
        f"/webhooks/zeliq/not-a-uuid/email?signature={'0' * 64}",
        f"/webhooks/zeliq/{request_id}/fax?signature={'0' * 64}",
    ):
        refused = await gateway.post(bad, json=EMAIL)
        assert 400 <= refused.status_code < 500 and "error" in refused.json(), bad
    assert await read_topic(settings, "enrichment", settle=0.3) == []


async def test_the_timeout_sweep_fails_the_silent_attempt_and_completes_the_expert(
    session: AsyncSession, deps: EnrichmentDeps
) -> None:
    lead = await _lead(session)
    await _enrich(session, lead, deps)
    assert lead.status == "ENRICHING"

    async def sweep(at_seconds: float) -> None:
        tick = EnrichmentCallbackSweepRequested(
            requested_at=utc_now() + timedelta(seconds=at_seconds)
        )
        envelope = Envelope.new(EnrichmentCallbackSweepRequested.message_type, tick)
        await time_out_callbacks(session, envelope, tick, deps=deps)
        await session.flush()
        await session.refresh(lead)

    await sweep(TIMEOUT_SECONDS - 60)  # not yet
    assert (await _attempts(session, lead))["zeliq"].status == "PENDING"
    assert lead.status == "ENRICHING"

    await sweep(TIMEOUT_SECONDS + 60)
    zeliq = (await _attempts(session, lead))["zeliq"]
    assert zeliq.status == "TIMEOUT"
    assert zeliq.error == "no callback within ZELIQ_CALLBACK_TIMEOUT_SECONDS"
    assert lead.status == "ENRICHMENT_FAILED"
    assert lead.status_reason == (
        "no provider found a contact (2 tried); provider failures: TIMEOUT"
    )
    assert await _outbox_types(session) == [
        "ranking.requested.v1",
        "google-sheets-sync.requested.v1",
    ]
    # A sweep later finds nothing left to time out.
    await sweep(TIMEOUT_SECONDS + 120)
    assert await _outbox_types(session) == [
        "ranking.requested.v1",
        "google-sheets-sync.requested.v1",
    ]


async def test_a_confident_answer_does_not_wait_and_a_late_callback_still_stores_contacts(
    session: AsyncSession,
    gateway: httpx.AsyncClient,
    settings: Settings,
    deps: EnrichmentDeps,
    vendors: respx.MockRouter,
) -> None:
    vendors.post(f"{LEADMAGIC}/v1/people/email-finder").mock(
        return_value=httpx.Response(200, json={"email": "jane@stripe.com", "status": "valid"})
    )
    lead = await _lead(session)
    await _enrich(session, lead, deps)
    assert lead.status == "ENRICHED"  # LeadMagic was confident: nobody is waited for
    assert (await _attempts(session, lead))["zeliq"].status == "PENDING"
    outbox = await _outbox_types(session)
    assert outbox[0] == "ranking.requested.v1"

    paths = _callback_paths(vendors)
    for kind, body in (("email", EMAIL), ("phone", PHONE)):
        assert (await _deliver(gateway, paths[kind], body)).status_code == 202
    await _consume(session, settings, deps, count=2)

    assert (await _attempts(session, lead))["zeliq"].status == "SUCCESS"
    phones = (
        await session.execute(
            select(ExpertContact.value_normalized).where(
                ExpertContact.expert_id == lead.expert_id, ExpertContact.type == "PHONE"
            )
        )
    ).scalars()
    assert list(phones) == ["+14155550122"]
    assert await _outbox_types(session) == outbox  # the expert was complete already


async def test_the_region_rule_applies_to_a_callback(
    session: AsyncSession,
    gateway: httpx.AsyncClient,
    settings: Settings,
    deps: EnrichmentDeps,
    vendors: respx.MockRouter,
) -> None:
    lead = await _lead(session, country="DE")
    await _enrich(session, lead, deps)
    paths = _callback_paths(vendors)
    personal = {"contact": {"most_probable_email": "jane.doe@gmail.com"}}
    for kind, body in (("email", personal), ("phone", {"contact": {}})):
        assert (await _deliver(gateway, paths[kind], body)).status_code == 202
    await _consume(session, settings, deps, count=2)

    zeliq = (await _attempts(session, lead))["zeliq"]
    assert zeliq.status == "FILTERED"  # a personal mailbox for an expert in Germany
    await session.refresh(lead)
    assert lead.status == "ENRICHMENT_FAILED"
    assert "professional email required for DE" in (lead.status_reason or "")
    stored = await session.scalar(
        select(func.count())
        .select_from(ExpertContact)
        .where(ExpertContact.expert_id == lead.expert_id)
    )
    assert stored == 0


async def test_an_expert_suppressed_while_waiting_is_disqualified_when_the_callback_lands(
    session: AsyncSession,
    gateway: httpx.AsyncClient,
    settings: Settings,
    deps: EnrichmentDeps,
    vendors: respx.MockRouter,
) -> None:
    lead = await _lead(session)
    await _enrich(session, lead, deps)
    assert lead.status == "ENRICHING"
    expert = await session.get(Expert, lead.expert_id)
    await create_suppression(session, expert=expert)
    paths = _callback_paths(vendors)
    for kind, body in (("email", EMAIL), ("phone", PHONE)):
        assert (await _deliver(gateway, paths[kind], body)).status_code == 202
    await _consume(session, settings, deps, count=2)

    await session.refresh(lead)
    assert lead.status == "DISQUALIFIED"
    assert lead.status_reason == "expert is suppressed (never contact)"
    assert "outreach.auto.v1" not in await _outbox_types(session)
