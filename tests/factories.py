"""Typed async factories: ``await create_caller(session, timezone="Europe/London")``.

Each builds a valid row with unique defaults, applies the keyword overrides (any model
attribute), adds it, flushes (so ids and server defaults are set) and returns the model.
Missing parents are created on the way: ``create_lead(session)`` makes a project, a search and
an expert too; pass ``project=...`` (or ``project_id=...``) to reuse one.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import (
    Caller,
    CallerPerformanceMetric,
    CallLog,
    CallTask,
    Company,
    DeadLetterJob,
    EnrichmentAttempt,
    Expert,
    ExpertContact,
    ExpertSuppression,
    JobTitle,
    Lead,
    OutboxMessage,
    OutreachMessage,
    OutreachThread,
    ProcessedWebhookEvent,
    Project,
    RankingSnapshot,
    SalesNavSearch,
    ScreeningQuestion,
    ScreeningResponse,
    SignupChase,
    SystemEvent,
)
from sourcing.common.models.base import Base
from sourcing.common.models.enums import (
    CallOutcome,
    CallTaskKind,
    Channel,
    ContactSource,
    ContactType,
    EnrichmentAttemptStatus,
    EnrichmentPhase,
    SuppressionReason,
)
from sourcing.common.statemachines import CALL_TASK_ACTIVE_STATUSES, CallerAllocationStatus

ModelT = TypeVar("ModelT", bound=Base)

_counter = itertools.count(1)


def _n() -> int:
    return next(_counter)


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def _save(session: AsyncSession, instance: ModelT) -> ModelT:
    session.add(instance)
    await session.flush()
    return instance


def _build(model: type[ModelT], defaults: dict[str, Any], overrides: dict[str, Any]) -> ModelT:
    fields = {**defaults, **overrides}
    return model(**fields)


# --- projects -------------------------------------------------------------------------------


async def create_project(session: AsyncSession, **overrides: Any) -> Project:
    n = _n()
    defaults: dict[str, Any] = {
        "name": f"Project {n}",
        "description": "Source senior experts",
        "target_threshold": 50,
        "geography_iso_codes": ["US"],
        "priority": 0,
        "override_cooldown": False,
        "region_config": {},
    }
    return await _save(session, _build(Project, defaults, overrides))


async def _project_id(
    session: AsyncSession, project: Project | None, overrides: dict[str, Any]
) -> uuid.UUID:
    if "project_id" in overrides:
        return uuid.UUID(str(overrides.pop("project_id")))
    if project is None:
        project = await create_project(session)
    return project.id


async def create_company(
    session: AsyncSession, *, project: Project | None = None, **overrides: Any
) -> Company:
    project_id = await _project_id(session, project, overrides)
    n = _n()
    defaults: dict[str, Any] = {
        "project_id": project_id,
        "name": f"Company {n}",
        "domain": f"company{n}.example.com",
        "country_iso": "US",
    }
    return await _save(session, _build(Company, defaults, overrides))


async def create_job_title(
    session: AsyncSession, *, company: Company | None = None, **overrides: Any
) -> JobTitle:
    if company is None and "company_id" not in overrides:
        company = await create_company(session)
    n = _n()
    defaults: dict[str, Any] = {
        "company_id": company.id if company else None,
        "project_id": company.project_id if company else None,
        "title": f"VP Payments {n}",
        "normalized_title": f"vp payments {n}",
        "relevance_score": 0.8,
        "source": "OPENAI",
    }
    return await _save(session, _build(JobTitle, defaults, overrides))


async def create_sales_nav_search(
    session: AsyncSession, *, project: Project | None = None, **overrides: Any
) -> SalesNavSearch:
    project_id = await _project_id(session, project, overrides)
    url = f"https://linkedin.com/sales/search/{_n()}"
    defaults: dict[str, Any] = {"project_id": project_id, "source_url": url, "normalized_url": url}
    return await _save(session, _build(SalesNavSearch, defaults, overrides))


async def create_screening_question(
    session: AsyncSession, *, project: Project | None = None, **overrides: Any
) -> ScreeningQuestion:
    project_id = await _project_id(session, project, overrides)
    n = _n()
    defaults: dict[str, Any] = {
        "project_id": project_id,
        "prompt": f"How many years of experience do you have? ({n})",
        "display_order": n,
        "required": True,
    }
    return await _save(session, _build(ScreeningQuestion, defaults, overrides))


# --- experts --------------------------------------------------------------------------------


async def create_expert(session: AsyncSession, **overrides: Any) -> Expert:
    n = _n()
    defaults: dict[str, Any] = {
        "full_name": f"Jane Doe {n}",
        "first_name": "Jane",
        "last_name": f"Doe {n}",
        "linkedin_url_normalized": f"https://www.linkedin.com/in/janedoe-{n}-{uuid.uuid4().hex[:6]}",
        "primary_email": None,
        "title": "VP Payments",
        "company_name": "Stripe",
        "country_iso": "US",
        "timezone": "America/New_York",
        "language_codes": ["en"],
        "preferred_channel": Channel.EMAIL.value,
    }
    return await _save(session, _build(Expert, defaults, overrides))


async def _expert_id(
    session: AsyncSession, expert: Expert | None, overrides: dict[str, Any]
) -> uuid.UUID:
    if "expert_id" in overrides:
        return uuid.UUID(str(overrides.pop("expert_id")))
    if expert is None:
        expert = await create_expert(session)
    return expert.id


async def create_expert_contact(
    session: AsyncSession, *, expert: Expert | None = None, **overrides: Any
) -> ExpertContact:
    expert_id = await _expert_id(session, expert, overrides)
    email = f"expert{_n()}@company.example.com"
    defaults: dict[str, Any] = {
        "expert_id": expert_id,
        "type": ContactType.EMAIL.value,
        "value": email,
        "value_normalized": email,
        "is_professional": True,
        "source": ContactSource.ENRICHMENT.value,
        "provider": "prospeo",
        "confidence": 0.9,
    }
    return await _save(session, _build(ExpertContact, defaults, overrides))


async def create_suppression(
    session: AsyncSession, *, expert: Expert | None = None, **overrides: Any
) -> ExpertSuppression:
    """Suppress an expert (never contact again); also stamps ``expert.suppressed_at``."""
    if expert is None and "expert_id" not in overrides:
        expert = await create_expert(session)
    if expert is not None:
        expert.suppressed_at = overrides.get("created_at") or _utcnow()
    defaults: dict[str, Any] = {
        "expert_id": expert.id if expert else None,
        "reason": SuppressionReason.NEVER_CONTACT_AGAIN.value,
        "linkedin_url_normalized": expert.linkedin_url_normalized if expert else None,
        "email": expert.primary_email if expert else None,
    }
    return await _save(session, _build(ExpertSuppression, defaults, overrides))


async def create_lead(
    session: AsyncSession,
    *,
    project: Project | None = None,
    expert: Expert | None = None,
    search: SalesNavSearch | None = None,
    **overrides: Any,
) -> Lead:
    project_id = await _project_id(session, project, overrides)
    expert_id = await _expert_id(session, expert, overrides)
    if "sales_nav_search_id" in overrides:
        search_id = uuid.UUID(str(overrides.pop("sales_nav_search_id")))
    else:
        if search is None:
            search = await create_sales_nav_search(session, project_id=project_id)
        search_id = search.id
    defaults: dict[str, Any] = {
        "project_id": project_id,
        "expert_id": expert_id,
        "sales_nav_search_id": search_id,
        "raw_name": "Jane Doe",
        "raw_company": "Stripe",
        "raw_title": "VP Payments",
        "country_iso": "US",
        "payload": {},
    }
    return await _save(session, _build(Lead, defaults, overrides))


async def create_enrichment_attempt(
    session: AsyncSession, *, expert: Expert | None = None, **overrides: Any
) -> EnrichmentAttempt:
    expert_id = await _expert_id(session, expert, overrides)
    defaults: dict[str, Any] = {
        "expert_id": expert_id,
        "run_id": uuid.uuid4(),
        "provider": "prospeo",
        "phase": EnrichmentPhase.PARALLEL.value,
        "status": EnrichmentAttemptStatus.SUCCESS.value,
        "confidence": 0.9,
        "latency_ms": 120,
    }
    return await _save(session, _build(EnrichmentAttempt, defaults, overrides))


async def create_ranking_snapshot(
    session: AsyncSession,
    *,
    project: Project | None = None,
    expert: Expert | None = None,
    **overrides: Any,
) -> RankingSnapshot:
    project_id = await _project_id(session, project, overrides)
    expert_id = await _expert_id(session, expert, overrides)
    defaults: dict[str, Any] = {
        "project_id": project_id,
        "expert_id": expert_id,
        "score": 0.5,
        "components": {},
        "formula_version": "v1",
    }
    return await _save(session, _build(RankingSnapshot, defaults, overrides))


# --- outreach and screening -----------------------------------------------------------------


async def create_outreach_thread(
    session: AsyncSession,
    *,
    project: Project | None = None,
    expert: Expert | None = None,
    **overrides: Any,
) -> OutreachThread:
    project_id = await _project_id(session, project, overrides)
    expert_id = await _expert_id(session, expert, overrides)
    defaults: dict[str, Any] = {
        "project_id": project_id,
        "expert_id": expert_id,
        "channel": Channel.EMAIL.value,
        "recipient": f"expert{_n()}@company.example.com",
    }
    return await _save(session, _build(OutreachThread, defaults, overrides))


async def create_outreach_message(
    session: AsyncSession, *, thread: OutreachThread | None = None, **overrides: Any
) -> OutreachMessage:
    if thread is None and "thread_id" not in overrides:
        thread = await create_outreach_thread(session)
    defaults: dict[str, Any] = {
        "thread_id": thread.id if thread else None,
        "expert_id": thread.expert_id if thread else None,
        "job_id": str(uuid.uuid4()),
        "recipient": thread.recipient if thread else None,
        "body": "Hi, we would like to invite you to participate in our research project.",
    }
    return await _save(session, _build(OutreachMessage, defaults, overrides))


async def create_screening_response(
    session: AsyncSession,
    *,
    question: ScreeningQuestion | None = None,
    expert: Expert | None = None,
    **overrides: Any,
) -> ScreeningResponse:
    if question is None and "question_id" not in overrides:
        if "project_id" in overrides:
            question = await create_screening_question(session, project_id=overrides["project_id"])
        else:
            question = await create_screening_question(session)
    expert_id = await _expert_id(session, expert, overrides)
    defaults: dict[str, Any] = {
        "project_id": question.project_id if question else None,
        "question_id": question.id if question else None,
        "expert_id": expert_id,
    }
    return await _save(session, _build(ScreeningResponse, defaults, overrides))


# --- callers and calls ----------------------------------------------------------------------


async def create_caller(session: AsyncSession, **overrides: Any) -> Caller:
    n = _n()
    defaults: dict[str, Any] = {
        "email": f"caller{n}-{uuid.uuid4().hex[:6]}@example.com",
        "name": f"Caller {n}",
        "timezone": "America/New_York",
        "language_codes": ["en"],
        "region_iso_codes": ["US"],
        "metadata_": {},
        "allocation_status": CallerAllocationStatus.ACTIVE.value,
    }
    return await _save(session, _build(Caller, defaults, overrides))


async def create_performance_metric(
    session: AsyncSession, *, caller: Caller | None = None, **overrides: Any
) -> CallerPerformanceMetric:
    if caller is None and "caller_id" not in overrides:
        caller = await create_caller(session)
    defaults: dict[str, Any] = {
        "caller_id": caller.id if caller else None,
        "rolling_60_minute_dials": 0,
        "rolling_60_minute_connections": 0,
        "short_calls_last_hour": 0,
        "timezone_mismatches_last_hour": 0,
        "allocation_status": caller.allocation_status if caller else "ACTIVE",
        "performance_score": 0.0,
    }
    return await _save(session, _build(CallerPerformanceMetric, defaults, overrides))


async def create_call_task(
    session: AsyncSession,
    *,
    project: Project | None = None,
    expert: Expert | None = None,
    caller: Caller | None = None,
    **overrides: Any,
) -> CallTask:
    """A PENDING task by default; an ASSIGNED/DIALING one gets a caller if none is given."""
    project_id = await _project_id(session, project, overrides)
    expert_id = await _expert_id(session, expert, overrides)
    status = str(overrides.get("status", "PENDING"))
    if caller is None and "caller_id" not in overrides and status in CALL_TASK_ACTIVE_STATUSES:
        caller = await create_caller(session)
    defaults: dict[str, Any] = {
        "project_id": project_id,
        "expert_id": expert_id,
        "caller_id": caller.id if caller else None,
        "kind": CallTaskKind.INITIAL.value,
        "priority": project.priority if project else 0,
        "ranking_score": 0.5,
        "region_iso": "US",
        "language_code": "en",
        "phone_number": f"+1415555{_n() % 10000:04d}",
    }
    if status in CALL_TASK_ACTIVE_STATUSES:
        defaults["assigned_at"] = _utcnow()
    return await _save(session, _build(CallTask, defaults, overrides))


async def create_signup_chase(
    session: AsyncSession,
    *,
    source_task: CallTask | None = None,
    chase_task: CallTask | None = None,
    **overrides: Any,
) -> SignupChase:
    """A chase of ``source_task`` (a task whose outcome sent a signup link) by ``chase_task``
    (a new PENDING SIGNUP_CHASE task unless given)."""
    if source_task is None:
        source_task = await create_call_task(
            session,
            status="COMPLETED",
            outcome=CallOutcome.INTERESTED_SIGNUP_LINK_SENT.value,
            outcome_at=_utcnow(),
        )
    if chase_task is None:
        chase_task = await create_call_task(
            session,
            project_id=source_task.project_id,
            expert_id=source_task.expert_id,
            kind=CallTaskKind.SIGNUP_CHASE.value,
            chase_of_task_id=source_task.id,
        )
    defaults: dict[str, Any] = {
        "expert_id": source_task.expert_id,
        "project_id": source_task.project_id,
        "source_call_task_id": source_task.id,
        "chase_call_task_id": chase_task.id,
        "chase_date": datetime.now(UTC).date(),
        "chase_number": 1,
    }
    return await _save(session, _build(SignupChase, defaults, overrides))


async def create_call_log(
    session: AsyncSession,
    *,
    caller: Caller | None = None,
    call_task: CallTask | None = None,
    **overrides: Any,
) -> CallLog:
    if caller is None and "caller_id" not in overrides:
        caller = await create_caller(session)
    now = _utcnow()
    defaults: dict[str, Any] = {
        "yay_call_id": f"yay-call-{uuid.uuid4().hex[:12]}",
        "caller_id": caller.id if caller else None,
        "call_task_id": call_task.id if call_task else None,
        "expert_id": call_task.expert_id if call_task else None,
        "agent_email": caller.email if caller else None,
        "direction": "OUTBOUND",
        "from_number": "+442071234567",
        "to_number": "+14155550100",
        "status": "ENDED",
        "started_at": now,
        "answered_at": now,
        "ended_at": now,
        "duration_seconds": 42,
        "talk_seconds": 38,
    }
    return await _save(session, _build(CallLog, defaults, overrides))


# --- reliability and operations -------------------------------------------------------------


async def create_processed_webhook_event(
    session: AsyncSession, **overrides: Any
) -> ProcessedWebhookEvent:
    defaults: dict[str, Any] = {"source": "yay", "event_id": f"evt-{uuid.uuid4().hex}"}
    return await _save(session, _build(ProcessedWebhookEvent, defaults, overrides))


async def create_dead_letter_job(session: AsyncSession, **overrides: Any) -> DeadLetterJob:
    job_id = str(uuid.uuid4())
    defaults: dict[str, Any] = {
        "origin_topic": "enrichment",
        "origin_partition": 0,
        "origin_offset": _n(),
        "message_key": "key",
        "job_id": job_id,
        "message_type": "enrichment.requested.v1",
        "payload": {"id": job_id, "type": "enrichment.requested.v1", "payload": {}},
        "error": "RuntimeError: provider exploded",
        "error_type": "RuntimeError",
        "stack": "Traceback (most recent call last): ...",
        "attempts": 5,
        "correlation_id": str(uuid.uuid4()),
    }
    return await _save(session, _build(DeadLetterJob, defaults, overrides))


async def create_outbox_message(session: AsyncSession, **overrides: Any) -> OutboxMessage:
    envelope_id = str(uuid.uuid4())
    defaults: dict[str, Any] = {
        "topic": "ranking",
        "key": str(uuid.uuid4()),
        "envelope": {"id": envelope_id, "type": "ranking.requested.v1", "payload": {}},
    }
    return await _save(session, _build(OutboxMessage, defaults, overrides))


async def create_system_event(session: AsyncSession, **overrides: Any) -> SystemEvent:
    defaults: dict[str, Any] = {"type": "test.event", "actor": "tests", "data": {}}
    return await _save(session, _build(SystemEvent, defaults, overrides))
