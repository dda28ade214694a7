"""The enrichment messages that need several service calls (:mod:`sourcing.enrichment.service`).

``enrichment.requested.v1`` prepares, runs and applies one lead's waterfall; a batch of them
runs its waterfalls concurrently in the batch's one transaction. The lane's other messages
(a Zeliq callback, the callback timeout sweep) are handled after them, one by one.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.events import Envelope
from sourcing.common.messages.enrichment import EnrichmentRequested
from sourcing.enrichment.service import (
    EnrichmentDeps,
    EnrichmentPlan,
    apply_enrichment,
    apply_enrichments,
    prepare_enrichment,
    prepare_enrichments,
    reuse_known_contacts,
    run_enrichment,
)

Handler = Callable[[AsyncSession, Envelope, Any], Awaitable[None]]


async def handle_enrichment_requested(
    session: AsyncSession,
    envelope: Envelope,
    payload: EnrichmentRequested,
    *,
    deps: EnrichmentDeps,
) -> None:
    """``enrichment.requested.v1``: the §9 waterfall for one lead (module docstring)."""
    plan = await prepare_enrichment(session, payload, deps, correlation_id=envelope.correlation_id)
    if plan is None:
        return
    outcome = await run_enrichment(plan, deps)
    await apply_enrichment(session, plan, outcome, deps)


async def handle_enrichment_batch(
    session: AsyncSession,
    items: Sequence[tuple[Envelope, Any]],
    *,
    deps: EnrichmentDeps,
    others: Mapping[str, Handler],
) -> None:
    """Several ``enrichment.requested.v1`` in one transaction: reads one after the other, the
    waterfalls concurrently, the writes together (:func:`apply_enrichments`), then a later
    lead of an expert enriched in the batch (same effect as one by one; a second request for
    a lead of the same batch is dropped). The lane's other messages follow, through
    ``others`` (message type → handler)."""
    requests = [(e, p) for e, p in items if isinstance(p, EnrichmentRequested)]
    await _handle_requests(session, requests, deps=deps)
    for envelope, payload in items:
        if not isinstance(payload, EnrichmentRequested):
            await others[envelope.type](session, envelope, payload)


async def _handle_requests(
    session: AsyncSession,
    items: Sequence[tuple[Envelope, EnrichmentRequested]],
    *,
    deps: EnrichmentDeps,
) -> None:
    requests: dict[uuid.UUID, tuple[EnrichmentRequested, str | None]] = {}
    for envelope, payload in items:  # a lead asked for twice in the batch: once
        requests.setdefault(payload.lead_id, (payload, envelope.correlation_id))
    plans = [
        plan
        for plan in await prepare_enrichments(session, list(requests.values()), deps)
        if plan is not None
    ]
    # Leads of one expert in one batch: the first run's contacts serve the others.
    first_of_expert: dict[uuid.UUID, EnrichmentPlan] = {}
    to_run: list[EnrichmentPlan] = []
    for plan in plans:
        if plan.reuse or plan.expert_id in first_of_expert:
            continue
        first_of_expert[plan.expert_id] = plan
        to_run.append(plan)
    outcomes = await asyncio.gather(*(run_enrichment(plan, deps) for plan in to_run))
    by_lead = {plan.lead_id: outcome for plan, outcome in zip(to_run, outcomes, strict=True)}
    applied = [plan for plan in plans if plan.lead_id in by_lead or plan.reuse]
    await apply_enrichments(session, [(plan, by_lead.get(plan.lead_id)) for plan in applied], deps)
    for plan in plans:
        if plan.lead_id in by_lead or plan.reuse:
            continue
        # A later lead of an expert enriched earlier in this batch: reuse when it succeeded.
        if await reuse_known_contacts(session, plan, deps):
            await apply_enrichment(session, plan, None, deps)
        else:
            await apply_enrichment(session, plan, await run_enrichment(plan, deps), deps)
