"""Request and response bodies of the enrichment endpoints (camelCase on the wire)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import ConfigDict

from sourcing.common.web import ResponseModel


class ProviderCost(ResponseModel):
    provider: str
    attempts: int
    successes: int
    credits: float


class ProjectCosts(ResponseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "projectId": "2d934d30-c3bc-4e29-b238-62518bbb6442",
                    "providers": [
                        {"provider": "leadmagic", "attempts": 40, "successes": 31, "credits": 31},
                        {"provider": "prospeo", "attempts": 9, "successes": 4, "credits": 9},
                    ],
                    "totalCredits": 40,
                    "verifiedContacts": 33,
                    "costPerVerifiedContact": 1.21,
                    "budgetCredits": 500,
                    "remainingCredits": 460,
                }
            ]
        }
    )

    project_id: uuid.UUID
    providers: list[ProviderCost]
    total_credits: float
    # Contacts found by this project's lookups at or above the confidence threshold.
    verified_contacts: int
    cost_per_verified_contact: float | None
    budget_credits: float | None
    remaining_credits: float | None


class CircuitOut(ResponseModel):
    instance: str
    state: str
    failures: int
    open_until: datetime | None
    updated_at: datetime


class ProviderOut(ResponseModel):
    key: str
    name: str
    configured: bool
    credits_per_lookup: float
    misses_free: bool
    rate_limit_per_minute: float | None
    # The worst circuit state among the enrichment processes (CLOSED when none reported).
    breaker_state: str
    circuits: list[CircuitOut]
    attempts: int
    successes: int
    success_rate: float


class ProviderList(ResponseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "key": "leadmagic",
                            "name": "LeadMagic",
                            "configured": True,
                            "creditsPerLookup": 1.0,
                            "missesFree": True,
                            "rateLimitPerMinute": 3000.0,
                            "breakerState": "OPEN",
                            "circuits": [
                                {
                                    "instance": "enrichment-7d9f:1",
                                    "state": "OPEN",
                                    "failures": 5,
                                    "openUntil": "2026-12-07T10:00:30Z",
                                    "updatedAt": "2026-12-07T10:00:00Z",
                                }
                            ],
                            "attempts": 120,
                            "successes": 84,
                            "successRate": 0.69,
                        }
                    ]
                }
            ]
        }
    )

    items: list[ProviderOut]
