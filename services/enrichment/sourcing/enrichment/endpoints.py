"""The enrichment context's HTTP endpoints, mounted by the gateway: what enrichment spent on a
project (``GET /api/v1/projects/{projectId}/costs``) and the providers' configuration, costs
and circuit breakers (``GET /api/v1/providers``).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from sourcing.common.web import NowDep, SessionDep, StaffPrincipal, error_responses, settings_of
from sourcing.enrichment import service
from sourcing.enrichment.schemas import ProjectCosts, ProviderList
from sourcing.enrichment.settings import (
    EnrichmentSettings as EnrichmentSettings,  # the gateway's settings build on it
)

costs_router = APIRouter(prefix="/api/v1/projects", tags=["projects"])
providers_router = APIRouter(prefix="/api/v1/providers", tags=["providers"])

_READ_ERRORS = error_responses(400, 401, 403, 404)

EnrichmentSettingsDep = Annotated[EnrichmentSettings, Depends(settings_of(EnrichmentSettings))]


@costs_router.get(
    "/{project_id}/costs",
    response_model=ProjectCosts,
    responses=_READ_ERRORS,
    summary="What enrichment spent on a project: credits by provider, per verified contact, budget",
)
async def get_project_costs(
    project_id: uuid.UUID,
    session: SessionDep,
    settings: EnrichmentSettingsDep,
    _: StaffPrincipal,
) -> ProjectCosts:
    """Credits are counted per attempt: as the provider reported them, else its declared cost
    per lookup (a miss is free where the provider says so; a failed request costs nothing)."""
    return await service.project_costs(session, project_id, settings)


@providers_router.get(
    "",
    response_model=ProviderList,
    responses=error_responses(401, 403),
    summary="The enrichment providers: configured, cost per lookup, rate limit, circuit breaker",
)
async def list_providers(
    session: SessionDep, settings: EnrichmentSettingsDep, now: NowDep, _: StaffPrincipal
) -> ProviderList:
    """Each enrichment process keeps its own breaker per provider and reports it as it changes;
    ``breakerState`` is the worst of them (an OPEN one past its cool-down shows HALF_OPEN)."""
    return await service.provider_overview(session, settings, now)
