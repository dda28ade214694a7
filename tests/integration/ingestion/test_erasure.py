"""Erasure of a person (POST /api/v1/experts/{expertId}/erasure, GDPR Art. 17 / CCPA deletion).

One person is seeded through every table of the schema; after the erasure, every text, JSON
and array column of every table (read generically from the metadata) is scanned for anything
that identifies them: name, emails, phones, LinkedIn profile, messenger handle, and their
company and title together. Nothing may be left, except the hashes that keep them suppressed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import ARRAY, JSON, String, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import (
    Base,
    CallerStatusHistory,
    CallLogRaw,
    ContactSuppression,
    CooldownLog,
    DeadLetterJob,
    DeadLetterReplay,
    DocumentationJob,
    Expert,
    GoogleSheetExport,
    GoogleSheetRowMap,
    IdempotencyKey,
    JobTitleDiscoveryRun,
    Lead,
    OutboxMessage,
    ProcessedEvent,
    ProviderCircuit,
    SchedulerCycle,
    ScreeningReminder,
    SystemEvent,
)
from sourcing.common.models.enums import ContactType, SuppressedContactKind, SuppressionReason
from sourcing.ingestion import repository
from sourcing.ingestion.handlers import SUPPRESSED_REASON, handle_lead_received
from sourcing.ingestion.service import erase_expert
from sourcing.people.suppression import suppress_contact, value_hash
from tests.factories import (
    create_call_log,
    create_call_task,
    create_caller,
    create_company,
    create_dead_letter_job,
    create_enrichment_attempt,
    create_expert,
    create_expert_contact,
    create_job_title,
    create_lead,
    create_outbox_message,
    create_outreach_message,
    create_outreach_thread,
    create_performance_metric,
    create_processed_webhook_event,
    create_project,
    create_ranking_snapshot,
    create_sales_nav_search,
    create_screening_question,
    create_screening_response,
    create_signup_chase,
    create_suppression,
    create_system_event,
)
from tests.factories_sourcing import envelope_of, lead_received, sales_nav_lead

pytestmark = pytest.mark.integration

ERASURE = "/api/v1/experts/{}/erasure"


@dataclass(frozen=True)
class Person:
    """Everything that identifies the seeded person, in the spellings the tables hold."""

    handle: str

    @property
    def name(self) -> str:
        return f"Ottoline Brindlecombe {self.handle}"

    @property
    def linkedin(self) -> str:
        return f"https://www.linkedin.com/in/ottoline-{self.handle}"

    @property
    def linkedin_as_delivered(self) -> str:
        return f"https://uk.linkedin.com/in/Ottoline-{self.handle.upper()}/?trk=search"

    @property
    def work_email(self) -> str:
        return f"ottoline.{self.handle}@quillfeather.example"

    @property
    def personal_email(self) -> str:
        return f"otto.{self.handle}@gmail.com"

    @property
    def phone(self) -> str:
        return f"+4420718{int(self.handle, 16) % 100000:05d}"

    @property
    def phone_as_given(self) -> str:
        digits = self.phone.removeprefix("+44")
        return f"0{digits[:2]} {digits[2:6]} {digits[6:]}"

    @property
    def whatsapp(self) -> str:
        return f"ottoline_wa_{self.handle}"

    title = "Head of Zymurgy Research"

    @property
    def company(self) -> str:
        return f"Quillfeather Analytics {self.handle}"

    def needles(self) -> list[str]:
        return [
            self.name,
            f"Brindlecombe {self.handle}",
            self.work_email,
            self.personal_email,
            self.phone,
            self.phone_as_given,
            f"ottoline-{self.handle}",  # the LinkedIn slug, whatever the URL's spelling
            self.whatsapp,
        ]


def _searchable(table: Any) -> list[Any]:
    return [c for c in table.columns if isinstance(c.type, String | JSON | ARRAY)]


async def traces_of(session: AsyncSession, person: Person) -> dict[str, set[str]]:
    """Per table, what identifies the person in any text, JSON or array column of any row."""
    needles = [needle.lower() for needle in person.needles()]
    found: dict[str, set[str]] = {}
    for table in Base.metadata.sorted_tables:
        columns = _searchable(table)
        if not columns:
            continue
        for row in await session.execute(select(*columns)):
            text = json.dumps(list(row), default=str, ensure_ascii=False).lower()
            hits = {needle for needle in needles if needle in text}
            if person.title.lower() in text and person.company.lower() in text:
                hits.add("company+title")
            if hits:
                found.setdefault(table.name, set()).update(hits)
    return found


async def seed_person(session: AsyncSession, person: Person) -> Expert:
    """One person through every table (the tables that never hold a person get a row too)."""
    now = datetime.now(UTC)
    project = await create_project(session, name=f"Fermentation {person.handle}")
    company = await create_company(session, project=project)
    await create_job_title(session, company=company)
    session.add(
        JobTitleDiscoveryRun(
            project_id=project.id, geography_iso_codes=["GB"], requested_companies=[]
        )
    )
    search = await create_sales_nav_search(session, project=project)
    question = await create_screening_question(session, project=project)
    expert = await create_expert(
        session,
        full_name=person.name,
        first_name="Ottoline",
        last_name=f"Brindlecombe {person.handle}",
        linkedin_url_normalized=person.linkedin,
        primary_email=person.work_email,
        primary_phone=person.phone,
        title=person.title,
        company_name=person.company,
        company_domain="quillfeather.example",
        country_iso="GB",
        timezone="Europe/London",
        metadata_={"headline": f"{person.title} at {person.company}"},
    )
    contacts = [
        (ContactType.LINKEDIN, person.linkedin_as_delivered, person.linkedin),
        (ContactType.EMAIL, person.work_email, person.work_email),
        (ContactType.EMAIL, person.personal_email, person.personal_email),
        (ContactType.PHONE, person.phone_as_given, person.phone),
        (ContactType.HANDLE, person.whatsapp, person.whatsapp),
    ]
    for kind, value, normalized in contacts:
        await create_expert_contact(
            session, expert=expert, type=kind.value, value=value, value_normalized=normalized
        )
    raw_lead = sales_nav_lead(
        name=person.name,
        company=person.company,
        title=person.title,
        linkedinUrl=person.linkedin_as_delivered,
        email=person.work_email,
        phone=person.phone_as_given,
        countryIso="GB",
    )
    lead = await create_lead(
        session,
        project=project,
        expert=expert,
        search=search,
        raw_name=person.name,
        raw_company=person.company,
        raw_title=person.title,
        linkedin_url=person.linkedin_as_delivered,
        email=person.work_email,
        phone=person.phone_as_given,
        payload=raw_lead,
        status="ENRICHED",
        status_reason=f"recipient {person.personal_email} refused by the region rule",
    )
    await create_enrichment_attempt(
        session,
        expert=expert,
        lead_id=lead.id,
        response_payload={"person": {"name": person.name, "phones": [person.phone]}},
        error=f"no match for {person.work_email}",
    )
    await create_ranking_snapshot(session, project=project, expert=expert, lead_id=lead.id)
    thread = await create_outreach_thread(
        session,
        project=project,
        expert=expert,
        recipient=person.work_email,
        external_thread_id=f"<{person.work_email}.thread>",
        last_error=f"mailbox {person.work_email} full",
    )
    message = await create_outreach_message(
        session,
        thread=thread,
        body=f"Dear {person.name}, as {person.title} at {person.company} ...",
        error=f"550 {person.work_email} unknown",
    )
    session.add(
        CooldownLog(
            project_id=project.id,
            expert_id=expert.id,
            outreach_message_id=message.id,
            channel="email",
            action="ENFORCED",
            reason=f"{person.work_email} contacted 3 days ago",
        )
    )
    response = await create_screening_response(
        session,
        question=question,
        expert=expert,
        response_text=f"I'm {person.name}, call me on {person.phone_as_given}",
    )
    session.add(ScreeningReminder(screening_response_id=response.id, reminder_number=1))
    caller = await create_caller(session)
    metric = await create_performance_metric(session, caller=caller)
    session.add(
        CallerStatusHistory(
            caller_id=caller.id, from_status="ACTIVE", to_status="AT_RISK", metric_id=metric.id
        )
    )
    task = await create_call_task(
        session,
        project=project,
        expert=expert,
        caller=caller,
        lead_id=lead.id,
        status="COMPLETED",
        outcome="INTERESTED_SIGNUP_LINK_SENT",
        outcome_at=now,
        phone_number=person.phone,
        outcome_notes=f"{person.name} prefers {person.personal_email}",
    )
    chase = await create_call_task(
        session,
        project=project,
        expert=expert,
        kind="SIGNUP_CHASE",
        chase_of_task_id=task.id,
        phone_number=person.phone,
    )
    await create_signup_chase(session, source_task=task, chase_task=chase)
    log = await create_call_log(
        session,
        caller=caller,
        call_task=task,
        to_number=person.phone,
        recording_url=f"https://recordings.example/{person.phone}.mp3",
        metadata_={"contactName": person.name},
        fraud_flags=[{"flag": "SHORT_CALL", "detail": f"{person.phone} hung up"}],
    )
    session.add(
        CallLogRaw(
            event_id=f"evt-{person.handle}",
            event_type="call.ended",
            yay_call_id=log.yay_call_id,
            call_log_id=log.id,
            payload={"to": person.phone, "contact": {"name": person.name}},
            signature_valid=True,
        )
    )
    await create_processed_webhook_event(session)
    session.add(ProcessedEvent(consumer="lead-ingestion", event_id=str(uuid.uuid4())))
    row_map = GoogleSheetRowMap(
        project_id=project.id,
        entity_type="expert",
        entity_id=expert.id,
        spreadsheet_id="sheet-1",
        sheet_tab="Fermentation",
        row_number=2,
        row_hash="a" * 64,
    )
    session.add(row_map)
    await session.flush()
    session.add(
        GoogleSheetExport(
            project_id=project.id,
            row_map_id=row_map.id,
            entity_type="expert",
            entity_id=expert.id,
            operation="APPEND",
            status="SUCCEEDED",
            row_values={"Name": person.name, "Emails": person.work_email},
        )
    )
    await create_suppression(
        session, expert=expert, reason="OPT_OUT", note=f"{person.name} asked by phone"
    )
    await suppress_contact(
        session,
        SuppressedContactKind.EMAIL,
        person.personal_email,
        reason=SuppressionReason.OPT_OUT,
        actor="ops:user-2",
        note=f"unsubscribed {person.personal_email}",
    )
    dead = await create_dead_letter_job(
        session,
        origin_topic="lead-ingestion",
        message_key=person.linkedin,
        payload={"type": "lead.received.v1", "payload": {"name": person.name}},
    )
    session.add(DeadLetterReplay(dead_letter_job_id=dead.id, target_topic="lead-ingestion"))
    await create_dead_letter_job(
        session,
        payload={"type": "enrichment.requested.v1", "payload": {"expertId": str(expert.id)}},
    )
    await create_dead_letter_job(
        session,
        payload={"type": "ranking.requested.v1", "note": f"no score for {person.name}"},
        stack=f"ValueError: {person.name} has no title",
    )
    await create_outbox_message(
        session,
        topic="lead-ingestion",
        key=person.linkedin,
        envelope={"type": "lead.received.v1", "payload": {"lead": raw_lead}},
        published_at=now,
    )
    await create_outbox_message(
        session,
        topic="outreach",
        envelope={"type": "outreach.auto.v1", "payload": {"expertId": str(expert.id)}},
    )
    await create_system_event(
        session,
        type="contact.added",
        entity_type="expert",
        entity_id=expert.id,
        data={"value": person.phone_as_given, "by": "ops:user-2", "count": 1},
    )
    session.add(
        IdempotencyKey(
            owner="ops-1",
            key=f"add-contact-{person.handle}",
            fingerprint="f",
            status_code=201,
            content_type="application/json",
            response_body=json.dumps({"expertId": str(expert.id), "value": person.work_email}),
        )
    )
    session.add(DocumentationJob(status="SUCCEEDED"))
    session.add(SchedulerCycle(slot_started_at=now, holder="scheduler-1:42"))
    session.add(ProviderCircuit(provider="leadmagic", instance="enrichment-1:7", state="CLOSED"))
    await session.flush()
    return expert


EXPECTED_BEFORE = {
    "experts",
    "expert_contacts",
    "leads",
    "enrichment_attempts",
    "outreach_threads",
    "outreach_messages",
    "cooldown_logs",
    "screening_responses",
    "call_tasks",
    "call_logs",
    "call_logs_raw",
    "google_sheet_exports",
    "expert_suppressions",
    "contact_suppressions",
    "dead_letter_jobs",
    "outbox",
    "system_events",
    "idempotency_keys",
}


async def _rows(session: AsyncSession, model: Any, *where: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_an_erased_person_leaves_nothing_readable_in_any_table(
    api: httpx.AsyncClient,
    auth_headers: Callable[..., dict[str, str]],
    session: AsyncSession,
) -> None:
    person = Person(uuid.uuid4().hex[:8])
    expert = await seed_person(session, person)
    for table in Base.metadata.sorted_tables:
        assert await session.scalar(select(func.count()).select_from(table)), table.name
    assert set(await traces_of(session, person)) == EXPECTED_BEFORE

    correlation_id = f"erasure-{person.handle}"
    response = await api.post(
        ERASURE.format(expert.id),
        headers={**auth_headers("admin"), "x-correlation-id": correlation_id},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ERASED"
    assert body["expertId"] == str(expert.id)
    assert body["suppressions"] == 4  # the LinkedIn URL, both emails, the phone
    assert body["sheetRowsCleared"] == 1
    assert body["tables"]["experts"] == 1
    assert body["tables"]["expert_contacts"] == 5
    # Two name the person by address or id and go; one names them only by name: redacted.
    assert body["tables"]["dead_letter_jobs"] == 3
    assert await traces_of(session, person) == {}
    redacted = await session.scalar(select(DeadLetterJob).where(DeadLetterJob.stack == "[erased]"))
    assert redacted is not None
    assert redacted.payload == {"type": "ranking.requested.v1", "note": "[erased]"}

    kept = (
        await session.scalars(
            select(ContactSuppression).where(ContactSuppression.expert_id == expert.id)
        )
    ).all()
    assert {(row.kind, row.value_hash) for row in kept} == {
        ("LINKEDIN_URL", value_hash(person.linkedin)),
        ("EMAIL", value_hash(person.work_email)),
        ("EMAIL", value_hash(person.personal_email)),
        ("PHONE", value_hash(person.phone)),
    }
    assert {row.value for row in kept} == {None}
    # The opt-out recorded before keeps its reason and hash; its plain value is gone.
    assert {row.reason for row in kept} == {"ERASED", "OPT_OUT"}

    tombstone = await session.get(Expert, expert.id, populate_existing=True)
    assert tombstone is not None
    assert tombstone.erased_at is not None
    assert tombstone.suppressed_at is not None
    # Callers' history keeps its ids: the call task and its log still point at the expert.
    assert await _rows(session, Lead, Lead.expert_id == expert.id) == 1

    audit = (
        await session.scalars(
            select(SystemEvent).where(
                SystemEvent.type == "expert.erased", SystemEvent.entity_id == expert.id
            )
        )
    ).one()
    assert audit.actor == "admin:user-1"
    assert audit.correlation_id == correlation_id
    assert audit.data["tables"] == body["tables"]
    assert set(audit.data) == {"erasedAt", "tables", "suppressions", "sheetRowsCleared"}

    queued = (
        await session.scalars(
            select(OutboxMessage).where(OutboxMessage.topic == "google-sheets-sync")
        )
    ).all()
    assert [row.envelope["payload"] for row in queued] == [
        {"projectId": str(row_project), "entityType": "expert", "entityId": str(expert.id)}
        for row_project in await session.scalars(
            select(GoogleSheetRowMap.project_id).where(GoogleSheetRowMap.entity_id == expert.id)
        )
    ]

    [suppression] = (
        await session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.topic == "call-allocation",
                OutboxMessage.envelope["type"].astext == "expert.suppression-requested.v1",
            )
        )
    ).all()
    assert suppression.envelope["payload"]["expertId"] == str(expert.id)
    assert suppression.envelope["payload"]["reason"] == "ERASED"

    gone = await api.get(f"/api/v1/experts/{expert.id}", headers=auth_headers("ops"))
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "gone"


async def test_a_second_erasure_answers_the_same_summary_and_changes_nothing(
    api: httpx.AsyncClient,
    auth_headers: Callable[..., dict[str, str]],
    session: AsyncSession,
) -> None:
    person = Person(uuid.uuid4().hex[:8])
    expert = await seed_person(session, person)
    first = await api.post(ERASURE.format(expert.id), headers=auth_headers("admin"))
    assert first.status_code == 200, first.text
    events = await _rows(session, SystemEvent)
    outbox = await _rows(session, OutboxMessage)

    again = await api.post(ERASURE.format(expert.id), headers=auth_headers("admin"))

    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert await _rows(session, SystemEvent) == events
    assert await _rows(session, OutboxMessage) == outbox


async def test_only_admins_erase_and_an_unknown_expert_is_404(
    api: httpx.AsyncClient,
    auth_headers: Callable[..., dict[str, str]],
    session: AsyncSession,
) -> None:
    expert = await create_expert(session)
    caller = await create_caller(session)
    for role, user in (("ops", "user-2"), ("caller", caller.email)):
        refused = await api.post(ERASURE.format(expert.id), headers=auth_headers(role, user))
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden"
    untouched = await session.get(Expert, expert.id, populate_existing=True)
    assert untouched is not None
    assert untouched.erased_at is None

    unknown = uuid.uuid4()
    missing = await api.post(ERASURE.format(unknown), headers=auth_headers("admin"))
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "code": "not_found",
        "message": f"expert {unknown} not found",
        "details": {"expertId": str(unknown)},
    }


@pytest.mark.parametrize("identity", ["linkedin", "email"])
async def test_the_erased_person_coming_back_is_disqualified_and_stored_nowhere(
    api: httpx.AsyncClient,
    auth_headers: Callable[..., dict[str, str]],
    session: AsyncSession,
    identity: str,
) -> None:
    person = Person(uuid.uuid4().hex[:8])
    expert = await seed_person(session, person)
    assert (await api.post(ERASURE.format(expert.id), headers=auth_headers("admin"))).is_success
    experts = await _rows(session, Expert)
    project = await create_project(session)
    search = await create_sales_nav_search(session, project=project)
    returning = sales_nav_lead(
        name=person.name,
        company=person.company,
        title=person.title,
        linkedinUrl=person.linkedin_as_delivered if identity == "linkedin" else None,
        email=person.work_email.upper() if identity == "email" else None,
        phone=person.phone_as_given,
    )
    message = lead_received(project.id, search.id, returning)

    await handle_lead_received(session, envelope_of(message), message)
    await session.flush()

    lead = await session.scalar(select(Lead).where(Lead.sales_nav_search_id == search.id))
    assert lead is not None
    assert (lead.status, lead.status_reason) == ("DISQUALIFIED", SUPPRESSED_REASON)
    assert lead.expert_id == expert.id
    assert await _rows(session, Expert) == experts
    assert await traces_of(session, person) == {}


async def test_a_lead_racing_the_erasure_fills_nothing_back_into_the_tombstone(
    session: AsyncSession,
) -> None:
    """A lead that found the expert by identity before the erasure committed waits for the
    erasure's row lock, then writes none of the person's fields back."""
    person = Person(uuid.uuid4().hex[:8])
    expert = await seed_person(session, person)
    await erase_expert(session, expert.id, actor="admin:user-1", now=datetime.now(UTC))

    await repository.fill_expert_blanks(
        session, expert.id, {"title": person.title, "company_name": person.company}
    )
    await repository.attach_linkedin(session, expert.id, person.linkedin)
    await repository.attach_email(session, expert.id, person.work_email)

    assert await traces_of(session, person) == {}
