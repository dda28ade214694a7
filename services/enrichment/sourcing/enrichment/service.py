"""The rules of the enrichment context, as plain async functions over a session.

Enrichment (``enrichment.requested.v1``) runs in three steps so that no row lock is held while
providers are called: :func:`prepare_enrichment` reads the lead without locks,
:func:`run_enrichment` calls the providers (no database), :func:`apply_enrichment` locks the
lead, re-checks its status and writes attempts, contacts, the new status and the follow-up
messages (outbox) in the message's transaction. The reliability layer opens that transaction
before the handler runs (its dedup row is written first), so it stays open, idle and holding
only the dedup row, during the lookups; a batch of messages runs its waterfalls concurrently
(:func:`sourcing.enrichment.handlers.handle_enrichment_batch`), which bounds how many
connections sit idle that way.

Every attempt records the credits it cost. A project with an enrichment budget
(``projects.enrichment_budget_credits``) that its attempts have spent holds its leads: they
stay as they are, with the reason (:func:`budget_hold`), and ingestion asks for them again when
the budget is raised (:func:`sourcing.ingestion.service.release_held_leads`).

A provider answering by callback (Zeliq) leaves its attempt PENDING. Without a confident answer
meanwhile the lead stays ENRICHING: :func:`record_zeliq_callback` (``zeliq.callback-received.v1``)
or the timeout sweep :func:`time_out_callbacks` (``enrichment.callback-sweep.v1``) settles the
attempt, stores its contacts and :func:`complete_run` settles the lead and sends the follow-ups.

Ranking (``ranking.requested.v1``) recomputes one expert's score in a project
(:mod:`sourcing.enrichment.ranking`), writes a RankingSnapshot and the leads' score, and
asks the allocation service for the expert's call task (``call-task.requested.v1``).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.clock import utc_now
from sourcing.common.errors import NotFound
from sourcing.common.events import Envelope, MessagePayload
from sourcing.common.kafka.outbox import publish_correlated, publish_many
from sourcing.common.messages.allocation import CallTaskRequested, CallTaskTrigger
from sourcing.common.messages.enrichment import (
    EnrichmentCallbackSweepRequested,
    EnrichmentRequested,
    RankingRequested,
    ZeliqCallbackReceived,
)
from sourcing.common.messages.outreach import AutoOutreachRequested, SheetSyncRequested
from sourcing.common.models import (
    EnrichmentAttempt,
    Lead,
    Project,
    ProviderCircuit,
)
from sourcing.common.models.enums import (
    Channel,
    CircuitState,
    ContactSource,
    ContactType,
    EnrichmentAttemptStatus,
    EnrichmentPhase,
    SuppressedContactKind,
)
from sourcing.common.statemachines import LeadStatus, ProjectStatus
from sourcing.common.transitions import move
from sourcing.common.webhook_events import body_sha256, claim_webhook_event
from sourcing.enrichment import repository
from sourcing.enrichment.guard import BreakerPolicy, ProviderGuard, instance_name
from sourcing.enrichment.providers import (
    PROVIDERS,
    EmailKind,
    EnrichmentProvider,
    PersonQuery,
    ProviderResult,
    ResultStatus,
    declared_credits,
    rate_limit_per_minute,
    registered_keys,
)
from sourcing.enrichment.ranking import ContactSignal, RankingInput, score_expert
from sourcing.enrichment.schemas import (
    CircuitOut,
    ProjectCosts,
    ProviderCost,
    ProviderList,
    ProviderOut,
)
from sourcing.enrichment.settings import EnrichmentSettings
from sourcing.enrichment.waterfall import (
    Attempt,
    Clock,
    ProviderStats,
    WaterfallOutcome,
    attempt_status,
    best_attempt,
    regional_stats,
    run_waterfall,
    success_rate,
)
from sourcing.people.contacts import normalize_country
from sourcing.people.phones import normalize_phone
from sourcing.people.suppression import suppressed_addresses

logger = logging.getLogger(__name__)

# Statuses in which a lead still wants enrichment; anything else means it was done already.
ENRICHABLE = frozenset({LeadStatus.NEW, LeadStatus.ENRICHING, LeadStatus.ENRICHMENT_FAILED})
# What the attempt transaction needs after the waterfall (flushes, outbox rows, commit).
DB_RESERVE_FRACTION = 0.2
DB_RESERVE_MIN_SECONDS = 2.0
MIN_WATERFALL_SECONDS = 0.1
STATS_TTL_SECONDS = 30.0
SUPPRESSED_REASON = "expert is suppressed (never contact)"
# Where an attempt's response_payload keeps the callbacks received, by kind.
CALLBACKS_KEY = "callbacks"
# processed_webhook_events.source of Zeliq's callbacks.
ZELIQ_SOURCE = "zeliq"
# Timed-out attempts settled per sweep tick (the next tick takes the rest).
CALLBACK_SWEEP_BATCH = 500


CountryStats = dict[str | None, dict[str, ProviderStats]]


def breaker_policy(settings: EnrichmentSettings) -> BreakerPolicy:
    return BreakerPolicy(
        failures=settings.ENRICHMENT_BREAKER_FAILURES,
        window_seconds=settings.ENRICHMENT_BREAKER_WINDOW_SECONDS,
        cooldown_seconds=settings.ENRICHMENT_BREAKER_COOLDOWN_SECONDS,
    )


@dataclass
class EnrichmentDeps:
    """What the enrichment handlers share in one process: settings, adapters, clocks, the
    providers' limiters and breakers, and a short-lived cache of provider success statistics
    (one aggregate query per 30 s, not per message)."""

    settings: EnrichmentSettings
    providers: Mapping[str, EnrichmentProvider]
    clock: Clock = time.monotonic
    now: Callable[[], datetime] = utc_now
    stats_ttl_seconds: float = STATS_TTL_SECONDS
    guard: ProviderGuard | None = None
    _stats: tuple[float, CountryStats] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.guard is None:
            self.guard = ProviderGuard(
                self.providers.values(), breaker_policy(self.settings), self.clock
            )

    def waterfall_budget(self) -> float:
        """``ENRICHMENT_WATERFALL_BUDGET_SECONDS`` capped so the writes still fit in
        ``AGENT_ATTEMPT_TIMEOUT_SECONDS`` (a reserve of 20 %, at least 2 s, is kept)."""
        attempt = self.settings.AGENT_ATTEMPT_TIMEOUT_SECONDS
        reserve = max(DB_RESERVE_MIN_SECONDS, DB_RESERVE_FRACTION * attempt)
        cap = max(attempt - reserve, MIN_WATERFALL_SECONDS)
        return min(self.settings.ENRICHMENT_WATERFALL_BUDGET_SECONDS, cap)

    async def provider_stats(
        self, session: AsyncSession, country_iso: str | None = None
    ) -> dict[str, ProviderStats]:
        """Each provider's recent history for an expert of ``country_iso``: its region's when
        large enough, else the global one (:func:`waterfall.regional_stats`)."""
        now = self.clock()
        if self._stats is None or now - self._stats[0] >= self.stats_ttl_seconds:
            since = self.now() - timedelta(days=self.settings.ENRICHMENT_HISTORY_DAYS)
            self._stats = (now, await repository.provider_stats_by_country(session, since=since))
        return regional_stats(
            self._stats[1],
            country_iso,
            min_attempts=self.settings.ENRICHMENT_REGION_MIN_ATTEMPTS,
        )

    def forget_stats(self) -> None:
        self._stats = None


@dataclass(slots=True)
class EnrichmentPlan:
    """What :func:`prepare_enrichment` decided for one message."""

    lead_id: uuid.UUID
    expert_id: uuid.UUID
    project_id: uuid.UUID
    person: PersonQuery
    stats: dict[str, ProviderStats]
    # Contacts already known at this confidence (another lead of the same expert): no calls.
    known_confidence: float | None = None
    correlation_id: str | None = None
    # The project's enrichment budget is spent: the lead is held with this reason, no calls.
    hold_reason: str | None = None

    @property
    def reuse(self) -> bool:
        return self.known_confidence is not None


# --- enrichment ---------------------------------------------------------------------------------


def _person(context: repository.LeadContext) -> PersonQuery:
    lead, expert = context.lead, context.expert
    return PersonQuery(
        full_name=expert.full_name or lead.raw_name,
        first_name=expert.first_name,
        last_name=expert.last_name,
        company_name=lead.raw_company or expert.company_name,
        company_domain=lead.company_domain or expert.company_domain,
        linkedin_url=lead.linkedin_url or expert.linkedin_url_normalized,
        email=lead.email or expert.primary_email,
        country_iso=lead.country_iso or expert.country_iso,
    )


async def prepare_enrichment(
    session: AsyncSession,
    payload: EnrichmentRequested,
    deps: EnrichmentDeps,
    *,
    correlation_id: str | None = None,
) -> EnrichmentPlan | None:
    """:func:`prepare_enrichments` of one lead."""
    (plan,) = await prepare_enrichments(session, [(payload, correlation_id)], deps)
    return plan


async def prepare_enrichments(
    session: AsyncSession,
    requests: Sequence[tuple[EnrichmentRequested, str | None]],
    deps: EnrichmentDeps,
) -> list[EnrichmentPlan | None]:
    """Read what the waterfalls need (no locks; one statement for all the requests), a plan
    per request (with its correlation id), in order. None: nothing to do (lead gone or
    already enriched, or its project not ACTIVE: a PAUSED project's lead waits, unchanged,
    for the project to resume, when ingestion asks again). A suppressed expert still gets a
    plan: :func:`apply_enrichments` disqualifies the lead without calling any provider."""
    planning = await repository.get_planning_contexts(
        session, [payload.lead_id for payload, _ in requests]
    )
    return [
        await _plan(session, planning.get(payload.lead_id), payload, deps, correlation_id)
        for payload, correlation_id in requests
    ]


async def _plan(
    session: AsyncSession,
    planning: repository.PlanningContext | None,
    payload: EnrichmentRequested,
    deps: EnrichmentDeps,
    correlation_id: str | None,
) -> EnrichmentPlan | None:
    if planning is None:
        logger.warning("enrichment requested for unknown lead %s; ignored", payload.lead_id)
        return None
    context = planning.context
    if context.lead.status not in ENRICHABLE:
        logger.info("lead %s is %s; not re-enriched", context.lead.id, context.lead.status)
        return None
    if context.project.status != ProjectStatus.ACTIVE:
        logger.info(
            "lead %s: project %s is %s; not enriched",
            context.lead.id,
            context.project.id,
            context.project.status,
        )
        return None
    if planning.pending:
        logger.info("lead %s waits for a callback; not re-enriched meanwhile", context.lead.id)
        return None
    person = _person(context)
    plan = EnrichmentPlan(
        lead_id=context.lead.id,
        expert_id=context.expert.id,
        project_id=context.project.id,
        person=person,
        stats=await deps.provider_stats(session, person.country_iso),
        correlation_id=correlation_id,
    )
    if context.suppressed:
        return plan  # apply_enrichments disqualifies without calling anyone
    if not _reuse(plan, planning.best_confidence, deps):
        plan.hold_reason = await budget_hold(session, context.project)
    return plan


async def budget_hold(session: AsyncSession, project: Project) -> str | None:
    """Why the project's leads wait for enrichment: its budget is spent (None: it is not, or it
    has none). Checked before each waterfall, so concurrent waterfalls of one batch may
    overshoot the budget by what they spend together."""
    budget = project.enrichment_budget_credits
    if budget is None:
        return None
    spent = await repository.project_credits_spent(session, project.id)
    if spent < budget:
        return None
    return budget_reason(budget, spent)


def budget_reason(budget: float, spent: float) -> str:
    return (
        f"enrichment budget of {budget:g} credits spent ({spent:g} used); "
        "enriched when the project's budget is raised"
    )


async def reuse_known_contacts(
    session: AsyncSession, plan: EnrichmentPlan, deps: EnrichmentDeps
) -> bool:
    """Mark the plan to reuse the expert's contacts found by enrichment before (another lead
    of the same expert) when they reach the confidence threshold: no provider is called."""
    return _reuse(plan, await repository.best_enriched_confidence(session, plan.expert_id), deps)


def _reuse(plan: EnrichmentPlan, known: float | None, deps: EnrichmentDeps) -> bool:
    if known is not None and known >= deps.settings.ENRICHMENT_CONFIDENCE_THRESHOLD:
        plan.known_confidence = known
        return True
    return False


async def run_enrichment(plan: EnrichmentPlan, deps: EnrichmentDeps) -> WaterfallOutcome | None:
    """The provider calls (no database). None when the plan reuses known contacts or holds the
    lead for the project's budget."""
    if plan.reuse or plan.hold_reason is not None:
        return None
    settings = deps.settings
    return await run_waterfall(
        deps.providers,
        plan.person,
        stats=plan.stats,
        threshold=settings.ENRICHMENT_CONFIDENCE_THRESHOLD,
        parallel=settings.ENRICHMENT_PARALLEL_PROVIDERS,
        budget_seconds=deps.waterfall_budget(),
        per_lookup_seconds=settings.ENRICHMENT_TIME_BUDGET_SECONDS,
        prior=settings.ENRICHMENT_SUCCESS_PRIOR,
        clock=deps.clock,
        guard=deps.guard,
    )


def _settle(
    session: AsyncSession, lead: Lead, target: LeadStatus, *, reason: str | None, now: datetime
) -> None:
    """Move the lead to ``target`` (a NEW or failed lead settles via ENRICHING)."""
    current = lead.status
    retry_or_new = current in (LeadStatus.NEW, LeadStatus.ENRICHMENT_FAILED)
    settles = target in (LeadStatus.ENRICHED, LeadStatus.ENRICHMENT_FAILED)
    via = (
        [LeadStatus.ENRICHING]
        if settles and retry_or_new and not (current == target == LeadStatus.ENRICHMENT_FAILED)
        else []
    )
    move(
        session,
        lead,
        target,
        actor="enrichment",
        reason=reason,
        now=now,
        via=via,
        allow_same=True,
    )


def _contact_rows(
    result: ProviderResult,
    expert_id: uuid.UUID,
    attempt_id: uuid.UUID,
    *,
    country_iso: str | None,
) -> list[dict[str, Any]]:
    """A result's contacts (region rule already applied); phones in E.164 (national formats
    read in the expert's country), a number that cannot be read kept as given and not
    dialable."""
    rows: list[dict[str, Any]] = []
    for email in result.emails:
        rows.append(
            {
                "id": uuid.uuid4(),
                "expert_id": expert_id,
                "type": ContactType.EMAIL.value,
                "channel": Channel.EMAIL.value,
                "value": email.address,
                "value_normalized": email.address.strip().lower(),
                "is_primary": False,
                "is_professional": None
                if email.kind is EmailKind.UNKNOWN
                else email.kind is EmailKind.PROFESSIONAL,
                "is_dialable": None,
                "source": ContactSource.ENRICHMENT.value,
                "provider": result.provider,
                "confidence": email.confidence,
                "enrichment_attempt_id": attempt_id,
            }
        )
    for phone in result.phones:
        number = normalize_phone(phone.e164 or phone.number, country_iso)
        rows.append(
            {
                "id": uuid.uuid4(),
                "expert_id": expert_id,
                "type": ContactType.PHONE.value,
                "channel": Channel.PHONE.value,
                "value": number.given,
                "value_normalized": number.normalized,
                "is_primary": False,
                "is_professional": None,
                "is_dialable": number.dialable,
                "source": ContactSource.ENRICHMENT.value,
                "provider": result.provider,
                "confidence": phone.confidence,
                "enrichment_attempt_id": attempt_id,
            }
        )
    return rows


_SUPPRESSED_KIND: Final = {
    ContactType.EMAIL.value: SuppressedContactKind.EMAIL,
    ContactType.PHONE.value: SuppressedContactKind.PHONE,
}


async def _unsuppressed(session: AsyncSession, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The found contacts without those a suppression names: a suppressed (or bounced) address
    is never stored again as a way to reach the expert."""
    by_kind = {
        kind: [row["value_normalized"] for row in rows if row["type"] == type_]
        for type_, kind in _SUPPRESSED_KIND.items()
    }
    refused = await suppressed_addresses(session, by_kind)
    return [row for row in rows if row["value_normalized"] not in refused]


async def _store_contacts(
    session: AsyncSession,
    result: ProviderResult,
    *,
    expert_id: uuid.UUID,
    attempt_id: uuid.UUID,
    country_iso: str | None,
) -> None:
    """A result's contacts (region rule applied), without any a suppression names."""
    rows = _contact_rows(result, expert_id, attempt_id, country_iso=country_iso)
    await repository.upsert_contacts(session, await _unsuppressed(session, rows))


def _result_payload(result: ProviderResult) -> dict[str, Any]:
    """An attempt's ``response_payload``: the result (region rule applied) and the vendor's
    answers under ``response``."""
    payload = result.model_dump(mode="json", exclude={"raw"})
    payload["response"] = result.raw
    return payload


def _attempt_row(plan: EnrichmentPlan, run_id: uuid.UUID, attempt: Attempt) -> EnrichmentAttempt:
    result = attempt.result
    return EnrichmentAttempt(
        id=attempt.attempt_id,
        expert_id=plan.expert_id,
        lead_id=plan.lead_id,
        run_id=run_id,
        provider=result.provider,
        phase=attempt.phase.value,
        status=attempt.status.value,
        confidence=result.confidence,
        latency_ms=max(result.latency_ms, 0),
        http_status=result.http_status,
        error=result.error,
        response_payload=_result_payload(result),
        correlation_id=plan.correlation_id,
        callback_request_id=result.callback_request_id,
        callback_jobs=result.callback_jobs or None,
        credits=result.credits,
    )


@dataclass
class _Writes:
    """What applying waterfalls writes besides the leads' moves (those are in the session):
    the attempts, the found contacts and the follow-up messages, each in one statement for
    all the leads applied together (:meth:`write`)."""

    attempts: list[EnrichmentAttempt] = field(default_factory=list)
    contacts: list[dict[str, Any]] = field(default_factory=list)
    follow_ups: list[tuple[MessagePayload, str | None]] = field(default_factory=list)

    def add_contacts(self, best: Attempt, *, expert_id: uuid.UUID, country_iso: str | None) -> None:
        self.contacts.extend(
            _contact_rows(best.result, expert_id, best.attempt_id, country_iso=country_iso)
        )

    async def write(self, session: AsyncSession) -> None:
        # The attempts first: a contact names the attempt that found it.
        await repository.add_attempts(session, self.attempts)
        if self.contacts:
            await repository.upsert_contacts(session, await _unsuppressed(session, self.contacts))
        await session.flush()
        await publish_correlated(session, self.follow_ups)


def _conclude(
    session: AsyncSession,
    writes: _Writes,
    lead: Lead,
    outcome: WaterfallOutcome,
    *,
    expert_id: uuid.UUID,
    country_iso: str | None,
    now: datetime,
) -> bool:
    """Settle the lead from a complete run: ENRICHED with the best answer's contacts, else
    ENRICHMENT_FAILED. Returns whether it is confident enough for auto outreach."""
    if outcome.best is None:
        _settle(session, lead, LeadStatus.ENRICHMENT_FAILED, reason=outcome.failure_reason, now=now)
        return False
    writes.add_contacts(outcome.best, expert_id=expert_id, country_iso=country_iso)
    _settle(session, lead, LeadStatus.ENRICHED, reason=outcome.summary, now=now)
    lead.enriched_at = now
    # A contact below the confidence target is kept, but not written to automatically.
    return outcome.met_threshold


def _follow_ups(
    context: repository.LeadContext, *, auto_outreach: bool, correlation_id: str | None
) -> list[tuple[MessagePayload, str | None]]:
    """Ranking, auto outreach (when asked for and the project wants it) and the sheet row."""
    project_id, expert_id = context.project.id, context.expert.id
    messages: list[tuple[MessagePayload, str | None]] = [
        (RankingRequested(project_id=project_id, expert_id=expert_id), correlation_id)
    ]
    if auto_outreach and context.project.auto_outreach_channel:
        messages.append(
            (
                AutoOutreachRequested(
                    project_id=project_id, expert_id=expert_id, lead_id=context.lead.id
                ),
                correlation_id,
            )
        )
    messages.append(
        (SheetSyncRequested.for_expert(project_id=project_id, expert_id=expert_id), None)
    )
    return messages


async def apply_enrichment(
    session: AsyncSession,
    plan: EnrichmentPlan,
    outcome: WaterfallOutcome | None,
    deps: EnrichmentDeps,
) -> None:
    """:func:`apply_enrichments` of one lead."""
    await apply_enrichments(session, [(plan, outcome)], deps)


async def apply_enrichments(
    session: AsyncSession,
    runs: Sequence[tuple[EnrichmentPlan, WaterfallOutcome | None]],
    deps: EnrichmentDeps,
) -> None:
    """Lock the runs' leads, re-check, write attempts/contacts/statuses and the follow-up
    messages: one statement per step for all the runs (distinct leads; what one run writes,
    no other run reads).

    A run still waiting for a callback (:attr:`WaterfallOutcome.waiting`) keeps the lead
    ENRICHING, stores what it found so far and sends nothing yet: :func:`complete_run` does
    when the last provider answers or times out."""
    await save_circuit_changes(session, deps)
    contexts = await repository.lock_lead_contexts(session, [plan.lead_id for plan, _ in runs])
    now = deps.now()
    writes = _Writes()
    for plan, outcome in runs:
        context = contexts.get(plan.lead_id)
        if context is None or context.lead.status not in ENRICHABLE:
            continue  # finished meanwhile by another delivery
        _apply_run(session, writes, plan, outcome, context, now=now)
    await writes.write(session)


def _apply_run(
    session: AsyncSession,
    writes: _Writes,
    plan: EnrichmentPlan,
    outcome: WaterfallOutcome | None,
    context: repository.LeadContext,
    *,
    now: datetime,
) -> None:
    """One lead's part of :func:`apply_enrichments`: its move (in the session) and its rows."""
    lead = context.lead
    if plan.hold_reason is not None and not context.suppressed:
        if lead.status_reason != plan.hold_reason:
            move(
                session,
                lead,
                lead.status,
                actor="enrichment",
                reason=plan.hold_reason,
                now=now,
                allow_same=True,
                event="enrichment_held",
            )
        return
    auto_outreach = False
    if context.suppressed:
        _settle(session, lead, LeadStatus.DISQUALIFIED, reason=SUPPRESSED_REASON, now=now)
    elif outcome is None:
        _settle(
            session,
            lead,
            LeadStatus.ENRICHED,
            reason=f"contacts already known (confidence {plan.known_confidence:.2f})",
            now=now,
        )
        lead.enriched_at = now
        auto_outreach = True
    else:
        run_id = uuid.uuid4()
        writes.attempts.extend(_attempt_row(plan, run_id, a) for a in outcome.attempts)
        country = plan.person.country_iso
        if outcome.waiting:
            if outcome.best is not None:
                writes.add_contacts(outcome.best, expert_id=plan.expert_id, country_iso=country)
            _settle(session, lead, LeadStatus.ENRICHING, reason=outcome.waiting_reason, now=now)
            return
        auto_outreach = _conclude(
            session, writes, lead, outcome, expert_id=plan.expert_id, country_iso=country, now=now
        )
    writes.follow_ups.extend(
        _follow_ups(context, auto_outreach=auto_outreach, correlation_id=plan.correlation_id)
    )


async def save_circuit_changes(session: AsyncSession, deps: EnrichmentDeps) -> None:
    """Write the breakers that changed since the last write to ``provider_circuits``."""
    if deps.guard is None:
        return
    changes = deps.guard.drain_changes()
    if changes:
        await repository.save_circuits(session, changes, instance=instance_name(), now=deps.now())


# --- callbacks (Zeliq) --------------------------------------------------------------------------


def _stored_result(row: EnrichmentAttempt) -> ProviderResult:
    """The region-filtered result an attempt row was written with."""
    payload = row.response_payload or {}
    fields = {name: value for name, value in payload.items() if name in ProviderResult.model_fields}
    fields.setdefault("provider", row.provider)
    fields.setdefault("status", ResultStatus.ERROR.value)
    return ProviderResult.model_validate(fields)


def _run_outcome(
    rows: list[EnrichmentAttempt], *, threshold: float, country_iso: str | None
) -> WaterfallOutcome:
    """A finished run's outcome, rebuilt from its attempt rows."""
    attempts = [
        Attempt(EnrichmentPhase(row.phase), _stored_result(row), attempt_id=row.id) for row in rows
    ]
    return WaterfallOutcome(
        attempts=attempts,
        best=best_attempt(attempts),
        threshold=threshold,
        available=len(attempts),
        country_iso=normalize_country(country_iso),
    )


async def complete_run(session: AsyncSession, run_id: uuid.UUID, deps: EnrichmentDeps) -> bool:
    """Complete a waterfall that waited for a callback, once no attempt of it is PENDING: the
    lead settles from the run's best answer and the follow-ups go out. True when it did."""
    rows = await repository.run_attempts(session, run_id)
    if not rows or any(row.status == EnrichmentAttemptStatus.PENDING for row in rows):
        return False
    lead_id = rows[0].lead_id
    contexts = await repository.lock_lead_contexts(session, [lead_id] if lead_id else [])
    context = contexts.get(lead_id) if lead_id else None
    if context is None or context.lead.status != LeadStatus.ENRICHING:
        return False  # the run did not wait (a confident answer), or the lead moved on
    lead = context.lead
    now = deps.now()
    writes = _Writes()
    auto_outreach = False
    if context.suppressed:
        _settle(session, lead, LeadStatus.DISQUALIFIED, reason=SUPPRESSED_REASON, now=now)
    else:
        country = lead.country_iso or context.expert.country_iso
        outcome = _run_outcome(
            rows, threshold=deps.settings.ENRICHMENT_CONFIDENCE_THRESHOLD, country_iso=country
        )
        auto_outreach = _conclude(
            session,
            writes,
            lead,
            outcome,
            expert_id=context.expert.id,
            country_iso=country,
            now=now,
        )
    writes.follow_ups.extend(
        _follow_ups(context, auto_outreach=auto_outreach, correlation_id=rows[0].correlation_id)
    )
    await writes.write(session)
    return True


async def _answer_attempt(
    session: AsyncSession, attempt: EnrichmentAttempt, deps: EnrichmentDeps, *, answered_all: bool
) -> None:
    """Settle a PENDING attempt from the callbacks it received (``answered_all`` False: the
    rest timed out): its status and result, and its contacts through the region rule."""
    context = (
        await repository.get_lead_context(session, attempt.lead_id) if attempt.lead_id else None
    )
    expert = context.expert if context else await repository.get_expert(session, attempt.expert_id)
    person = _person(context) if context else None
    country = person.country_iso if person else (expert.country_iso if expert else None)
    payload = dict(attempt.response_payload or {})
    callbacks: dict[str, Any] = payload.get(CALLBACKS_KEY) or {}
    now = deps.now()
    result = (
        deps.providers[attempt.provider]
        .callback_result(
            callbacks.values(),
            person,
            answered_all=answered_all,
            latency_ms=max(0, round((now - attempt.created_at).total_seconds() * 1000)),
        )
        .for_region(country)
    )
    attempt.status = attempt_status(result).value
    attempt.confidence = result.confidence
    attempt.latency_ms = result.latency_ms
    attempt.error = result.error
    attempt.answered_at = now
    attempt.response_payload = {
        **_result_payload(result),
        "response": payload.get("response"),
        CALLBACKS_KEY: callbacks,
    }
    await session.flush()
    if result.has_contacts:
        await _store_contacts(
            session, result, expert_id=attempt.expert_id, attempt_id=attempt.id, country_iso=country
        )


async def record_zeliq_callback(
    session: AsyncSession,
    envelope: Envelope,
    payload: ZeliqCallbackReceived,
    *,
    deps: EnrichmentDeps,
) -> None:
    """``zeliq.callback-received.v1``: keep the callback on its attempt; once every job of the
    attempt answered, settle it (its contacts stored) and complete the expert's waterfall if
    it waited. A replayed callback changes nothing; one for an attempt that timed out meanwhile
    is kept on it, unread."""
    fresh = await claim_webhook_event(
        session,
        source=ZELIQ_SOURCE,
        event_id=payload.event_id,
        event_type=f"enrich.{payload.kind}",
        payload_sha256=body_sha256(payload.body),
        received_at=payload.received_at,
        correlation_id=envelope.correlation_id,
    )
    if not fresh:
        logger.info("Zeliq callback %s replayed: ignored", payload.event_id)
        return
    attempt = await repository.lock_callback_attempt(session, payload.request_id)
    if attempt is None:
        logger.warning("Zeliq callback for unknown request %s: ignored", payload.request_id)
        return
    stored = dict(attempt.response_payload or {})
    stored[CALLBACKS_KEY] = {**(stored.get(CALLBACKS_KEY) or {}), payload.kind: payload.body}
    attempt.response_payload = stored
    await session.flush()  # the next callback re-reads the row (populate_existing)
    if attempt.status != EnrichmentAttemptStatus.PENDING:
        logger.info("Zeliq callback %s after the attempt settled: kept", payload.event_id)
        return
    if not set(attempt.callback_jobs or {payload.kind: None}) <= set(stored[CALLBACKS_KEY]):
        return  # the attempt's other job has not answered yet
    await _answer_attempt(session, attempt, deps, answered_all=True)
    await complete_run(session, attempt.run_id, deps)


async def time_out_callbacks(
    session: AsyncSession,
    envelope: Envelope,
    payload: EnrichmentCallbackSweepRequested,
    *,
    deps: EnrichmentDeps,
) -> None:
    """``enrichment.callback-sweep.v1`` (the scheduler's callback-timeout tick): attempts
    PENDING for longer than ``ZELIQ_CALLBACK_TIMEOUT_SECONDS`` settle with what arrived
    (TIMEOUT when nothing did), and the waterfalls they held open complete."""
    cutoff = payload.requested_at - timedelta(seconds=deps.settings.ZELIQ_CALLBACK_TIMEOUT_SECONDS)
    attempts = await repository.lock_pending_attempts(
        session, created_before=cutoff, limit=CALLBACK_SWEEP_BATCH
    )
    for attempt in attempts:
        await _answer_attempt(session, attempt, deps, answered_all=False)
    completed = 0
    for run_id in dict.fromkeys(attempt.run_id for attempt in attempts):
        completed += await complete_run(session, run_id, deps)
    if attempts:
        logger.info(
            "%d callback attempt(s) timed out, %d run(s) completed", len(attempts), completed
        )


# --- costs and providers (the endpoints' read side) --------------------------------------------

# The circuit states, worst last (a provider's state across processes is the worst).
CIRCUIT_SEVERITY: Final = (CircuitState.CLOSED, CircuitState.HALF_OPEN, CircuitState.OPEN)


async def project_costs(
    session: AsyncSession, project_id: uuid.UUID, settings: EnrichmentSettings
) -> ProjectCosts:
    """What enrichment spent on a project: by provider, in total, per verified contact (a
    contact found at or above ``ENRICHMENT_CONFIDENCE_THRESHOLD``), against its budget."""
    project = await repository.get_project(session, project_id)
    if project is None:
        raise NotFound(f"project {project_id} not found", details={"projectId": str(project_id)})
    providers = [
        ProviderCost(provider=provider, attempts=attempts, successes=successes, credits=credits)
        for provider, attempts, successes, credits in await repository.project_costs(
            session, project_id
        )
    ]
    total = sum(row.credits for row in providers)
    verified = await repository.verified_contacts(
        session, project_id, settings.ENRICHMENT_CONFIDENCE_THRESHOLD
    )
    budget = project.enrichment_budget_credits
    return ProjectCosts(
        project_id=project_id,
        providers=providers,
        total_credits=total,
        verified_contacts=verified,
        cost_per_verified_contact=round(total / verified, 4) if verified else None,
        budget_credits=budget,
        remaining_credits=max(budget - total, 0.0) if budget is not None else None,
    )


def circuit_state(circuit: ProviderCircuit, now: datetime) -> CircuitState:
    """A reported breaker's state now: OPEN past its cool-down lets a probe through."""
    state = CircuitState(circuit.state)
    if state is CircuitState.OPEN and circuit.open_until is not None and circuit.open_until <= now:
        return CircuitState.HALF_OPEN
    return state


async def provider_overview(
    session: AsyncSession, settings: EnrichmentSettings, now: datetime
) -> ProviderList:
    """Every registered provider: configuration, declared cost and rate limit, the breakers
    the enrichment processes reported, and the recent global success rate."""
    since = now - timedelta(days=settings.ENRICHMENT_HISTORY_DAYS)
    history = regional_stats(
        await repository.provider_stats_by_country(session, since=since), None, min_attempts=1
    )
    circuits: dict[str, list[ProviderCircuit]] = {}
    for circuit in await repository.provider_circuits(session):
        circuits.setdefault(circuit.provider, []).append(circuit)
    items = []
    for key in registered_keys():
        adapter = PROVIDERS[key]
        reported = circuits.get(key, [])
        states = [circuit_state(circuit, now) for circuit in reported]
        stats = history.get(key, ProviderStats())
        items.append(
            ProviderOut(
                key=key,
                name=adapter.display_name,
                configured=adapter.is_available(settings),
                credits_per_lookup=declared_credits(settings, key),
                misses_free=adapter.misses_free,
                rate_limit_per_minute=rate_limit_per_minute(settings, key),
                breaker_state=max(states, key=CIRCUIT_SEVERITY.index, default=CircuitState.CLOSED),
                circuits=[
                    CircuitOut(
                        instance=circuit.instance,
                        state=state,
                        failures=circuit.failures,
                        open_until=circuit.open_until,
                        updated_at=circuit.updated_at,
                    )
                    for circuit, state in zip(reported, states, strict=True)
                ],
                attempts=stats.attempts,
                successes=stats.successes,
                success_rate=round(success_rate(stats, prior=settings.ENRICHMENT_SUCCESS_PRIOR), 4),
            )
        )
    return ProviderList(items=items)


# --- ranking ------------------------------------------------------------------------------------


async def handle_ranking_requested(
    session: AsyncSession,
    envelope: Envelope,
    payload: RankingRequested,
    *,
    now: Callable[[], datetime] = utc_now,
) -> None:
    """``ranking.requested.v1``: :func:`handle_ranking_batch` for one message."""
    await handle_ranking_batch(session, [(envelope, payload)], now=now)


async def handle_ranking_batch(
    session: AsyncSession,
    items: Sequence[tuple[Envelope, Any]],
    *,
    now: Callable[[], datetime] = utc_now,
) -> None:
    """``ranking.requested.v1`` messages: score each expert in its project, store a
    RankingSnapshot and the leads' ``ranking_score``, then ask allocation for the expert's call
    task. Unknown project or expert (deleted since), or no lead: nothing. One statement per
    read and per write for the whole batch; the effect is that of the messages one by one (a
    ranking reads nothing a ranking writes)."""
    requests: list[tuple[Envelope, RankingRequested]] = [
        (envelope, payload) for envelope, payload in items if isinstance(payload, RankingRequested)
    ]
    if not requests:
        return
    projects = await repository.projects_by_id(
        session, list({payload.project_id for _, payload in requests})
    )
    experts = await repository.experts_by_id(
        session, list({payload.expert_id for _, payload in requests})
    )
    known = [
        (envelope, projects[payload.project_id], experts[payload.expert_id])
        for envelope, payload in requests
        if payload.project_id in projects and payload.expert_id in experts
    ]
    if len(known) < len(requests):
        logger.warning("ranking requested for a missing project/expert; ignored")
    latest = await repository.latest_leads(
        session, [(project.id, expert.id) for _, project, expert in known]
    )
    ranked = [
        (envelope, project, expert, latest[(project.id, expert.id)])
        for envelope, project, expert in known
        if (project.id, expert.id) in latest
    ]
    if not ranked:
        return
    signals = await repository.contact_signals(
        session, list({expert.id for _, _, expert, _ in ranked})
    )
    job_titles = await repository.project_job_titles(
        session, list({project.id for _, project, _, _ in ranked})
    )
    snapshots: list[dict[str, Any]] = []
    for envelope, project, expert, lead in ranked:
        result = score_expert(
            RankingInput(
                title=expert.title or lead.raw_title,
                seniority_label=expert.seniority,
                country_iso=expert.country_iso or lead.country_iso,
                contacts=tuple(
                    ContactSignal(
                        kind="email" if kind == ContactType.EMAIL else "phone",
                        confidence=confidence,
                        personal=professional is False,
                    )
                    for kind, confidence, professional in signals.get(expert.id, ())
                ),
                project_geographies=tuple(project.geography_iso_codes or ()),
                project_priority=project.priority,
                job_titles=tuple(job_titles.get(project.id, ())),
            )
        )
        snapshots.append(
            {
                "id": uuid.uuid4(),
                "project_id": project.id,
                "expert_id": expert.id,
                "lead_id": lead.id,
                "score": result.score,
                "components": dict(result.components),
                "formula_version": result.formula_version,
                "computed_at": now(),
                "correlation_id": envelope.correlation_id,
            }
        )
    await repository.save_rankings(session, snapshots)
    # The allocation service creates the expert's call task once a dialable phone is known,
    # or gives their pending tasks this score.
    await publish_many(
        session,
        [
            CallTaskRequested(
                project_id=project.id,
                expert_id=expert.id,
                lead_id=lead.id,
                trigger=CallTaskTrigger.RANKING,
            )
            for _, project, expert, lead in ranked
        ],
    )
