"""The work of the ingestion agents, as plain async functions of (session, envelope, payload).

* :func:`handle_sales_nav_leads` (``sales-nav-ingestion``): links a delivery to its
  SalesNavSearch and fans out one ``lead-ingestion`` message per lead.
* :func:`handle_lead_received` (``lead-ingestion``): one Expert per person, one Lead per
  (person, search), initial contacts, then ``enrichment`` (or DISQUALIFIED when suppressed);
  a lead with a dialable phone also asks ``call-allocation`` for the expert's call task. A
  PAUSED project holds the lead NEW; a COMPLETED or ARCHIVED one refuses it. A lead of an
  erased person is DISQUALIFIED on their tombstone (refused by a closed project) and stores
  nothing of them.
* :class:`JobTitleDiscovery` (``job-title-discovery``): plans a run (one message per company),
  then per company Apollo → OpenAI → JobTitle upserts in one transaction.

Handlers never commit; the reliability wrapper does, together with the dedup row, and every
message they produce goes through the outbox in the same transaction.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.clock import Clock, utc_now
from sourcing.common.db import session_scope
from sourcing.common.events import Envelope, MessagePayload
from sourcing.common.kafka.consumer import correlation_scope
from sourcing.common.kafka.outbox import publish, publish_correlated, publish_many
from sourcing.common.kafka.retry import PermanentError, TransientError
from sourcing.common.messages.allocation import CallTaskTrigger
from sourcing.common.messages.enrichment import EnrichmentRequested
from sourcing.common.messages.sourcing import (
    JobTitleDiscoveryCompany,
    JobTitleDiscoveryRequested,
    LeadReceived,
    SalesNavLeadsReceived,
)
from sourcing.common.models import JobTitleDiscoveryRun
from sourcing.common.models.enums import (
    Channel,
    ContactSource,
    ContactType,
    JobStatus,
    JobTitleSource,
)
from sourcing.common.statemachines import LEAD, LeadStatus
from sourcing.ingestion import repository, service
from sourcing.ingestion.clients import ApolloTitle, ScoredTitle
from sourcing.people.contacts import (
    is_personal_email,
    normalize_country,
    requires_professional_email,
)
from sourcing.people.identity import (
    normalize_email,
    normalize_linkedin_url,
    person_identity,
)
from sourcing.people.phones import PhoneNumber, normalize_phone
from sourcing.people.suppression import (
    Person,
    erased_expert_id,
    erased_expert_ids,
    is_suppressed,
    suppressed_people,
)
from sourcing.people.timezones import timezone_for_country

logger = logging.getLogger(__name__)

SUPPRESSED_REASON: Final = "suppressed: the expert must never be contacted again"
# The actor of what the ingestion agents audit.
INGESTION_ACTOR: Final = "lead-ingestion"
# Lookup → insert rounds before giving up on a person (each lost round means another
# transaction committed that person meanwhile; the next lookup sees it).
_IDENTITY_ROUNDS: Final = 3


def _text(value: Any, limit: int = 500) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text[:limit] or None


# --- sales-nav-ingestion ------------------------------------------------------------------------


async def handle_sales_nav_leads(
    session: AsyncSession, envelope: Envelope, payload: SalesNavLeadsReceived
) -> None:
    """Register/refresh the delivery's SalesNavSearch and fan its leads out to lead-ingestion,
    each keyed by the normalised person identity."""
    if await repository.get_project(session, payload.project_id) is None:
        raise PermanentError(f"project {payload.project_id} does not exist")
    search_url = payload.search_url.strip()
    search_id = await repository.record_search_delivery(
        session,
        project_id=payload.project_id,
        search_url=search_url,
        leads=len(payload.leads),
        received_at=payload.received_at,
    )
    messages = [_lead_message(lead, payload=payload, search_id=search_id) for lead in payload.leads]
    fanned_out = [message for message in messages if message is not None]
    await publish_many(session, fanned_out)
    skipped = len(messages) - len(fanned_out)
    if skipped:
        logger.warning(
            "sales nav leads without a usable identity skipped",
            extra={"skipped": skipped, "searchId": str(search_id)},
        )


def _lead_message(
    lead: dict[str, Any], *, payload: SalesNavLeadsReceived, search_id: uuid.UUID
) -> LeadReceived | None:
    name = _text(lead.get("name"))
    company = _text(lead.get("company"))
    linkedin_url = _text(lead.get("linkedinUrl"), 2048)
    email = _text(lead.get("email"), 320)
    if not name or not company:
        return None
    if normalize_linkedin_url(linkedin_url) is None and normalize_email(email) is None:
        return None
    return LeadReceived(
        project_id=payload.project_id,
        search_id=search_id,
        name=name,
        company=company,
        title=_text(lead.get("title")),
        linkedin_url=linkedin_url,
        email=email,
        phone=_text(lead.get("phone"), 64),
        company_domain=_text(lead.get("companyDomain"), 253),
        country_iso=normalize_country(_text(lead.get("countryIso"), 8)),
        lead=lead,
        received_at=payload.received_at,
        identity=person_identity(linkedin_url, email),
    )


# --- lead-ingestion -----------------------------------------------------------------------------


def _split_name(full_name: str) -> tuple[str | None, str | None]:
    parts = full_name.split()
    if len(parts) < 2:
        return (parts[0] if parts else None), None
    return parts[0], " ".join(parts[1:])


async def resolve_expert(
    session: AsyncSession, *, linkedin_url: str | None, email: str | None, values: dict[str, Any]
) -> uuid.UUID:
    """The one Expert of this person, created when new.

    Lookup by LinkedIn identity, else email; when neither exists, ``INSERT ... ON CONFLICT DO
    NOTHING`` on the unique identity indexes: if a concurrent transaction inserted the same
    person first, the insert waits for it, does nothing, and the next lookup finds its row.
    """
    for _ in range(_IDENTITY_ROUNDS):
        expert_id = await repository.find_expert_id(session, linkedin_url=linkedin_url, email=email)
        if expert_id is not None:
            await _complete_identity(session, expert_id, linkedin_url=linkedin_url, email=email)
            return expert_id
        expert_id = await repository.insert_expert(
            session,
            {**values, "linkedin_url_normalized": linkedin_url, "primary_email": email},
        )
        if expert_id is not None:
            return expert_id
    raise TransientError("the person's expert row kept changing under concurrent ingestion")


async def _complete_identity(
    session: AsyncSession, expert_id: uuid.UUID, *, linkedin_url: str | None, email: str | None
) -> None:
    """Attach an identity the expert lacks. A concurrent insert may take it first (unique
    violation): then this message is retried and finds that row instead."""
    try:
        async with session.begin_nested():
            if linkedin_url is not None:
                await repository.attach_linkedin(session, expert_id, linkedin_url)
            if email is not None:
                await repository.attach_email(session, expert_id, email)
    except IntegrityError as exc:
        raise TransientError(f"identity taken concurrently: {exc.orig}") from exc


async def handle_lead_received(
    session: AsyncSession, envelope: Envelope, payload: LeadReceived, *, clock: Clock = utc_now
) -> None:
    """Lead + deduplicated Expert + initial contacts, then enrichment (lead NEW → ENRICHING),
    or DISQUALIFIED with a reason when the person is suppressed. The project's status decides
    first (:func:`sourcing.ingestion.service.lead_intake`): a PAUSED project holds the lead
    NEW with its contacts (no enrichment, no call task until it is ACTIVE again), a COMPLETED
    or ARCHIVED one refuses it (a ``lead.refused`` event, nothing else written). A redelivered
    lead (same person, same search) changes nothing."""
    incoming = _Incoming.of(envelope, payload)
    linkedin_url, email = incoming.linkedin_url, incoming.email
    if linkedin_url is None and email is None:
        raise PermanentError("the lead has neither a LinkedIn URL nor an email")
    if not await repository.search_exists(session, payload.search_id):
        raise PermanentError(f"sales nav search {payload.search_id} does not exist")
    # Share-locked: a status change waits for this lead, or this lead for the change.
    project_status = await repository.project_status_for_share(session, payload.project_id)
    if project_status is None:
        raise PermanentError(f"project {payload.project_id} does not exist")
    intake = service.lead_intake(project_status)
    erased = await erased_expert_id(session, linkedin_url=linkedin_url, email=email)
    if erased is not None:
        if intake is not service.LeadIntake.REFUSE:
            await _record_erased_lead(session, envelope, payload, erased, now=clock())
        return
    if intake is service.LeadIntake.REFUSE:
        refusal = service.refuse_lead(
            session,
            project_id=payload.project_id,
            project_status=project_status,
            search_id=payload.search_id,
            name=payload.name,
            linkedin_url=linkedin_url,
            email=email,
            actor=INGESTION_ACTOR,
            correlation_id=envelope.correlation_id,
        )
        logger.info("lead refused", extra={"projectId": str(payload.project_id), "reason": refusal})
        return
    held = intake is service.LeadIntake.HOLD
    expert_id = await resolve_expert(
        session, linkedin_url=linkedin_url, email=email, values=incoming.fields
    )
    await repository.fill_expert_blanks(session, expert_id, incoming.fields)
    suppressed = await is_suppressed(session, expert_id, linkedin_url=linkedin_url, email=email)
    lead_id = await repository.insert_lead(
        session, incoming.lead_row(expert_id, suppressed=suppressed, held=held, now=clock())
    )
    if lead_id is None or suppressed:
        return  # already ingested from this search, or never to be contacted
    await repository.add_contacts(session, incoming.contacts(expert_id))
    await publish_many(
        session,
        incoming.follow_ups(expert_id, lead_id, held=held),
        correlation_id=envelope.correlation_id,
    )


async def handle_lead_batch(
    session: AsyncSession,
    items: Sequence[tuple[Envelope, LeadReceived]],
    *,
    clock: Clock = utc_now,
) -> None:
    """Several leads in one transaction, with the effect of :func:`handle_lead_received` on
    each in order, but one statement per step for the whole batch: the searches, the
    projects (share-locked), the tombstones, the experts (looked up, inserted in identity
    order, their blanks filled), the suppressions, the leads, their contacts and the
    follow-ups.

    A lead off the common path goes through :func:`handle_lead_received` after the others:
    one sharing an identity or an expert with another lead of the batch (their order
    matters), one of an unknown search or project (it fails there, and the batch is retried
    one by one), of an erased person, refused by a closed project, whose expert needs an
    identity attached, or whose new expert another transaction inserted meanwhile. Such a
    lead has nothing in common with the leads handled together, so the order is kept where
    it matters."""
    leads = [_Incoming.of(envelope, payload) for envelope, payload in items]
    one_by_one = await _ingest_together(session, leads, now=clock())
    for lead in leads:
        if lead in one_by_one:
            with correlation_scope(lead.envelope.correlation_id):
                await handle_lead_received(session, lead.envelope, lead.payload, clock=clock)


async def _ingest_together(
    session: AsyncSession, leads: Sequence[_Incoming], *, now: datetime
) -> set[_Incoming]:
    """The set-based steps of :func:`handle_lead_batch`; returns the leads left to handle
    one by one."""
    uses = Counter(identity for lead in leads for identity in lead.identities)
    apart = {
        lead
        for lead in leads
        if not lead.identities or any(uses[identity] > 1 for identity in lead.identities)
    }
    together = [lead for lead in leads if lead not in apart]
    searches = await repository.existing_searches(
        session, {lead.payload.search_id for lead in together}
    )
    statuses = await repository.project_statuses_for_share(
        session, {lead.payload.project_id for lead in together}
    )
    intakes: dict[_Incoming, service.LeadIntake] = {}
    for lead in together:
        status = statuses.get(lead.payload.project_id)
        intake = service.lead_intake(status) if status is not None else None
        if lead.payload.search_id not in searches or intake in (None, service.LeadIntake.REFUSE):
            apart.add(lead)
        else:
            intakes[lead] = intake
    together = [lead for lead in together if lead not in apart]
    erased = await erased_expert_ids(session, [lead.person() for lead in together])
    apart.update(lead for lead, tombstone in zip(together, erased, strict=True) if tombstone)
    together = [lead for lead in together if lead not in apart]

    experts = await _resolve_experts(session, together, apart)
    together = [lead for lead in together if lead not in apart]
    suppressed = await suppressed_people(session, [lead.person(experts[lead]) for lead in together])
    rows = [
        lead.lead_row(
            experts[lead],
            suppressed=is_out,
            held=intakes[lead] is service.LeadIntake.HOLD,
            now=now,
        )
        for lead, is_out in zip(together, suppressed, strict=True)
    ]
    inserted = await repository.insert_leads(session, rows)
    contacts: list[dict[str, Any]] = []
    follow_ups: list[tuple[MessagePayload, str | None]] = []
    for lead, is_out in zip(together, suppressed, strict=True):
        expert_id = experts[lead]
        lead_id = inserted.get((expert_id, lead.payload.search_id))
        if lead_id is None or is_out:
            continue  # already ingested from this search, or never to be contacted
        contacts.extend(lead.contacts(expert_id))
        held = intakes[lead] is service.LeadIntake.HOLD
        correlation_id = lead.envelope.correlation_id
        follow_ups.extend(
            (message, correlation_id) for message in lead.follow_ups(expert_id, lead_id, held=held)
        )
    await repository.add_contacts(session, contacts)
    await publish_correlated(session, follow_ups)
    return apart


async def _resolve_experts(
    session: AsyncSession, leads: Sequence[_Incoming], apart: set[_Incoming]
) -> dict[_Incoming, uuid.UUID]:
    """Each lead's expert (found, or inserted in identity order), as :func:`resolve_expert`
    finds or makes it, the blanks of the found ones filled. Leads this cannot settle in one
    pass join ``apart``."""
    known = await repository.experts_of_identities(
        session,
        linkedin_urls=[lead.linkedin_url for lead in leads if lead.linkedin_url],
        emails=[lead.email for lead in leads if lead.email],
    )
    by_linkedin = {expert.linkedin_url: expert for expert in known if expert.linkedin_url}
    by_email = {expert.email: expert for expert in known if expert.email}
    found: dict[_Incoming, uuid.UUID] = {}
    new: list[_Incoming] = []
    for lead in leads:
        expert = by_linkedin.get(lead.linkedin_url) if lead.linkedin_url else None
        if expert is None and lead.email in by_email:
            expert = by_email[lead.email]
            if lead.linkedin_url is not None:
                apart.add(lead)  # the expert takes the LinkedIn identity first
                continue
        if expert is None:
            new.append(lead)
        elif expert.erased or (lead.email is not None and expert.email is None):
            apart.add(lead)  # racing an erasure, or the expert takes the email first
        else:
            found[lead] = expert.id
    shared = Counter(found.values())
    for lead, expert_id in list(found.items()):
        if shared[expert_id] > 1:
            apart.add(lead)
            del found[lead]
    await repository.fill_blanks_of_experts(
        session, [(expert_id, lead.fields) for lead, expert_id in found.items()]
    )
    new.sort(key=lambda lead: lead.payload.identity)
    rows = [
        {**lead.fields, "linkedin_url_normalized": lead.linkedin_url, "primary_email": lead.email}
        for lead in new
    ]
    inserted = {
        linkedin_url or email: expert_id
        for expert_id, linkedin_url, email in await repository.insert_experts(session, rows)
    }
    for lead in new:
        made = inserted.get(lead.linkedin_url or lead.email or "")
        if made is None:
            apart.add(lead)  # inserted by another transaction meanwhile: looked up again
        else:
            found[lead] = made
    return found


async def _record_erased_lead(
    session: AsyncSession,
    envelope: Envelope,
    payload: LeadReceived,
    expert_id: uuid.UUID,
    *,
    now: datetime,
) -> None:
    """A lead of an erased person: DISQUALIFIED on their tombstone, and nothing of the person
    stored again (no expert row, no contact, no raw lead)."""
    LEAD.assert_transition(LEAD.initial, LeadStatus.DISQUALIFIED)
    await repository.erased_lead(
        session,
        {
            "project_id": payload.project_id,
            "sales_nav_search_id": payload.search_id,
            "expert_id": expert_id,
            "status": LeadStatus.DISQUALIFIED.value,
            "status_reason": SUPPRESSED_REASON,
            "status_changed_at": now,
            "correlation_id": envelope.correlation_id,
        },
    )


@dataclass(eq=False, slots=True)
class _Incoming:
    """A ``lead.received.v1`` with what the steps of its ingestion read of it (normalised
    identities, country, phone, the expert's attributes)."""

    envelope: Envelope
    payload: LeadReceived
    linkedin_url: str | None
    email: str | None
    country: str | None
    phone: PhoneNumber | None
    fields: dict[str, Any]

    @classmethod
    def of(cls, envelope: Envelope, payload: LeadReceived) -> _Incoming:
        country = normalize_country(payload.country_iso)
        country = country if country and len(country) == 2 else None
        first_name, last_name = _split_name(payload.name)
        return cls(
            envelope=envelope,
            payload=payload,
            linkedin_url=normalize_linkedin_url(payload.linkedin_url),
            email=normalize_email(payload.email),
            country=country,
            phone=normalize_phone(payload.phone, country) if payload.phone else None,
            fields={
                "full_name": payload.name,
                "first_name": first_name,
                "last_name": last_name,
                "title": payload.title,
                "company_name": payload.company,
                "company_domain": payload.company_domain,
                "country_iso": country,
                "timezone": timezone_for_country(country),
            },
        )

    @property
    def identities(self) -> list[str]:
        return [value for value in (self.linkedin_url, self.email) if value is not None]

    def person(self, expert_id: uuid.UUID | None = None) -> Person:
        return Person(expert_id, linkedin_url=self.linkedin_url, email=self.email)

    def lead_row(
        self, expert_id: uuid.UUID, *, suppressed: bool, held: bool, now: datetime
    ) -> dict[str, Any]:
        """The lead: DISQUALIFIED when the person is suppressed, NEW while its project holds
        it, else ENRICHING."""
        reason: str | None
        if suppressed:
            status, reason = LeadStatus.DISQUALIFIED, SUPPRESSED_REASON
        elif held:
            status, reason = LeadStatus.NEW, service.HELD_REASON
        else:
            status, reason = LeadStatus.ENRICHING, None
        if status != LEAD.initial:
            LEAD.assert_transition(LEAD.initial, status)
        payload = self.payload
        return {
            "project_id": payload.project_id,
            "sales_nav_search_id": payload.search_id,
            "expert_id": expert_id,
            "status": status.value,
            "status_reason": reason,
            "status_changed_at": now,
            "raw_name": payload.name,
            "raw_company": payload.company,
            "raw_title": payload.title,
            "linkedin_url": payload.linkedin_url,
            "email": payload.email,
            "phone": payload.phone,
            "company_domain": payload.company_domain,
            "country_iso": self.country,
            "payload": payload.lead,
            "correlation_id": self.envelope.correlation_id,
        }

    def contacts(self, expert_id: uuid.UUID) -> list[dict[str, Any]]:
        """The contacts the lead itself carries (source SALES_NAV). A personal email of an
        expert under the region rule (§9) is not a contact: it stays only their identity. The
        phone is in E.164 (read in the lead's country), else kept as given and not dialable."""
        # Every row carries the same keys: one statement inserts the rows of many leads.
        base = {
            "expert_id": expert_id,
            "source": ContactSource.SALES_NAV.value,
            "is_professional": None,
            "is_dialable": None,
        }
        payload = self.payload
        rows: list[dict[str, Any]] = []
        if self.linkedin_url is not None and payload.linkedin_url:
            rows.append(
                {
                    **base,
                    "type": ContactType.LINKEDIN.value,
                    "channel": Channel.LINKEDIN.value,
                    "value": payload.linkedin_url,
                    "value_normalized": self.linkedin_url,
                }
            )
        if self.email is not None and payload.email:
            personal = is_personal_email(self.email)
            if not (personal and requires_professional_email(self.country)):
                rows.append(
                    {
                        **base,
                        "type": ContactType.EMAIL.value,
                        "channel": Channel.EMAIL.value,
                        "value": payload.email,
                        "value_normalized": self.email,
                        "is_professional": not personal,
                    }
                )
        if self.phone is not None:
            rows.append(
                {**base, **service.phone_contact(expert_id, self.phone, ContactSource.SALES_NAV)}
            )
        return rows

    def follow_ups(
        self, expert_id: uuid.UUID, lead_id: uuid.UUID, *, held: bool
    ) -> list[MessagePayload]:
        """Enrichment, after the call task a dialable phone asks for; nothing while held
        (released on resume: enrichment by :func:`service.release_held_leads`, the call task
        by the allocation service's reaction to ``project.changed.v1``)."""
        if held:
            return []
        project_id = self.payload.project_id
        messages: list[MessagePayload] = []
        if self.phone is not None and self.phone.dialable:
            messages.extend(
                service.call_task_requests(
                    expert_id=expert_id,
                    project_ids=[project_id],
                    trigger=CallTaskTrigger.SALES_NAV_LEAD,
                    lead_id=lead_id,
                )
            )
        messages.append(
            EnrichmentRequested(lead_id=lead_id, expert_id=expert_id, project_id=project_id)
        )
        return messages


# --- job-title discovery ------------------------------------------------------------------------


class TitlesSource(Protocol):
    async def titles_at_company(
        self,
        *,
        company_name: str,
        company_domain: str | None = None,
        organization_id: str | None = None,
        country_isos: Sequence[str] = (),
        max_pages: int = 1,
        per_page: int = 100,
    ) -> list[ApolloTitle]: ...


class TitleScorer(Protocol):
    async def score_titles(
        self,
        *,
        company_name: str,
        titles: Sequence[str],
        project_brief: str | None = None,
        geographies: Sequence[str] = (),
    ) -> list[ScoredTitle]: ...


DONE: Final = "DONE"
FAILED: Final = "FAILED"
PENDING: Final = "PENDING"


class JobTitleDiscovery:
    """Handlers of the ``job-title-discovery`` lane.

    ``sessionmaker`` is used only to record a failed attempt on the run row in its own
    transaction (the message's transaction rolls back, and the last failure is what operators
    need to see once the message is dead-lettered); a later successful attempt overwrites it.
    """

    def __init__(
        self,
        *,
        apollo: TitlesSource,
        scorer: Callable[[], TitleScorer],
        sessionmaker: async_sessionmaker[AsyncSession] | None = None,
        apollo_max_pages: int = 1,
        clock: Clock = utc_now,
    ) -> None:
        self.apollo = apollo
        self.clock = clock
        self._scorer = scorer
        self.sessionmaker = sessionmaker
        self.apollo_max_pages = apollo_max_pages

    async def handle_requested(
        self, session: AsyncSession, envelope: Envelope, payload: JobTitleDiscoveryRequested
    ) -> None:
        """Resolve the run's companies (creating named ones), fan out one message each."""
        run = await repository.get_run_for_update(session, payload.run_id)
        if run is None:
            raise PermanentError(f"job-title discovery run {payload.run_id} does not exist")
        if run.status != JobStatus.QUEUED.value:
            return  # already planned (a replay of the request)
        planned: list[dict[str, Any]] = []
        for requested in run.requested_companies:
            company_id = await self._company_id(session, run, requested)
            if any(entry["companyId"] == str(company_id) for entry in planned):
                continue  # the same company named twice
            planned.append(
                {
                    "companyName": requested.get("companyName"),
                    "companyId": str(company_id),
                    "status": PENDING,
                }
            )
        run.requested_companies = planned
        run.status = JobStatus.RUNNING.value
        now = self.clock()
        run.started_at = now
        for entry in planned:
            await publish(
                session,
                JobTitleDiscoveryCompany(
                    run_id=run.id,
                    project_id=run.project_id,
                    company_id=uuid.UUID(entry["companyId"]),
                    geography_iso_codes=list(run.geography_iso_codes),
                ),
            )
        if not planned:
            _finish(run, now=now)
        await session.flush()

    async def _company_id(
        self, session: AsyncSession, run: JobTitleDiscoveryRun, requested: dict[str, Any]
    ) -> uuid.UUID:
        given = requested.get("companyId")
        if given:
            company = await repository.get_company(session, uuid.UUID(str(given)))
            if company is None or company.project_id != run.project_id:
                raise PermanentError(
                    f"company {given} is not a company of project {run.project_id}"
                )
            return company.id
        name = _text(requested.get("companyName"))
        if not name:
            raise PermanentError("a requested company has neither companyId nor companyName")
        return await repository.upsert_company_by_name(
            session, project_id=run.project_id, name=name
        )

    async def handle_company(
        self, session: AsyncSession, envelope: Envelope, payload: JobTitleDiscoveryCompany
    ) -> None:
        """Apollo per geography, then the model; the company's JobTitle rows and the run's
        progress are written together, after the model answered."""
        company = await repository.get_company(session, payload.company_id)
        project = await repository.get_project(session, payload.project_id)
        if company is None or project is None or company.project_id != project.id:
            raise PermanentError(
                f"company {payload.company_id} of project {payload.project_id} is gone"
            )
        try:
            found = await self._apollo_titles(
                company_name=company.name,
                company_domain=company.domain,
                organization_id=company.apollo_organization_id,
                geographies=payload.geography_iso_codes,
            )
            scored = await self._scorer().score_titles(
                company_name=company.name,
                titles=[title.title for title in found],
                project_brief=_brief(project.name, project.description),
                geographies=payload.geography_iso_codes,
            )
        except Exception as exc:
            await self._record_failure(payload, exc)
            raise
        counts = {title.title.casefold(): title.count for title in found}
        rows = [
            {
                "project_id": project.id,
                "company_id": company.id,
                "discovery_run_id": payload.run_id,
                "title": item.title[:500],
                "normalized_title": item.normalized_title[:500],
                "relevance_score": item.relevance,
                "seniority": item.seniority.value,
                "source": (
                    JobTitleSource.APOLLO if item.source == "apollo" else JobTitleSource.OPENAI
                ).value,
                "rationale": item.rationale,
                "metadata": {
                    "apolloCount": counts.get(item.title.casefold(), 0),
                    "geographies": list(payload.geography_iso_codes),
                },
            }
            for item in scored
        ]
        written = await repository.upsert_job_titles(session, rows)
        run = await repository.get_run_for_update(session, payload.run_id)
        if run is not None:
            _mark_company(run, payload.company_id, status=DONE, titles=written, now=self.clock())
        await session.flush()

    async def _apollo_titles(
        self,
        *,
        company_name: str,
        company_domain: str | None,
        organization_id: str | None,
        geographies: Sequence[str],
    ) -> list[ApolloTitle]:
        """One Apollo search per geography (all locations at once when none), merged."""
        counts: Counter[str] = Counter()
        spelling: dict[str, str] = {}
        scopes: list[str | None] = [*geographies] or [None]
        for geography in scopes:
            titles = await self.apollo.titles_at_company(
                company_name=company_name,
                company_domain=company_domain,
                organization_id=organization_id,
                country_isos=[geography] if geography else (),
                max_pages=self.apollo_max_pages,
            )
            for title in titles:
                key = title.title.casefold()
                counts[key] += title.count
                spelling.setdefault(key, title.title)
        return [ApolloTitle(title=spelling[key], count=n) for key, n in counts.most_common()]

    async def _record_failure(self, payload: JobTitleDiscoveryCompany, exc: BaseException) -> None:
        if self.sessionmaker is None:
            return
        reason = str(exc) or type(exc).__name__
        try:
            async with session_scope(self.sessionmaker) as side:
                run = await repository.get_run_for_update(side, payload.run_id)
                if run is not None:
                    _mark_company(
                        run, payload.company_id, status=FAILED, error=reason, now=self.clock()
                    )
        except Exception:
            logger.warning("could not record the discovery failure on its run", exc_info=True)


def _brief(name: str, description: str | None) -> str:
    return f"{name}: {description}" if description else name


def _mark_company(
    run: JobTitleDiscoveryRun,
    company_id: uuid.UUID,
    *,
    status: str,
    titles: int | None = None,
    error: str | None = None,
    now: datetime,
) -> None:
    """Record one company's outcome on the run; the run finishes when every company has one."""
    entries = [dict(entry) for entry in run.requested_companies]
    for entry in entries:
        if entry.get("companyId") == str(company_id):
            previous = entry.get("titles") if entry.get("status") == DONE else None
            entry["status"] = status
            if titles is not None:
                entry["titles"] = titles
                entry.pop("error", None)
                run.titles_discovered = run.titles_discovered - int(previous or 0) + titles
            if error is not None:
                entry["error"] = error[:2000]
    run.requested_companies = entries
    if all(entry.get("status") in (DONE, FAILED) for entry in entries):
        _finish(run, now=now)


def _finish(run: JobTitleDiscoveryRun, *, now: datetime) -> None:
    failures = [e for e in run.requested_companies if e.get("status") == FAILED]
    run.status = (JobStatus.FAILED if failures else JobStatus.SUCCEEDED).value
    run.error = (
        "; ".join(
            f"{e.get('companyName') or e.get('companyId')}: {e.get('error')}" for e in failures
        )[:4000]
        or None
    )
    run.finished_at = now
