"""The provider sandbox: one FastAPI app answering the real request shapes of the third-party
APIs with deterministic fake data (development and tests only; never production).

Every vendor is mounted under ``/<vendor>`` followed by its real path (``provider_base_url``
builds the matching base URLs when ``SANDBOX_PROVIDERS=1``). To add vendors, append their
router to :data:`ROUTERS`.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI

from sourcing.sandbox import apollo, channels, enrichment, openai_chat
from sourcing.sandbox import sheets as google_sheets
from sourcing.sandbox.inbound import InboundPoster
from sourcing.sandbox.state import (
    SandboxState,
    VendorError,
    simulate_latency,
    vendor_error_response,
)

ROUTERS: list[APIRouter] = [
    *enrichment.ROUTERS,
    apollo.router,
    openai_chat.router,
    channels.router,
    google_sheets.router,
]

# Beyond the default adapter timeout (8 s), so "slow" answers time out.
DEFAULT_SLOW_SECONDS = 30.0


def create_sandbox_app(
    latency_seconds: float = 0.0,
    *,
    slow_seconds: float = DEFAULT_SLOW_SECONDS,
    webhook_url: str | None = None,
    inbound_delay_seconds: float = 1.0,
) -> FastAPI:
    """The sandbox app; `latency_seconds` delays every answer, `slow_seconds` the slow ones.
    With `webhook_url` (the gateway), sends are followed by the provider's signed events
    (:mod:`sourcing.sandbox.inbound`)."""
    app = FastAPI(
        title="Provider sandbox",
        description="Deterministic stand-ins for third-party providers (development only).",
        dependencies=[Depends(simulate_latency)],
    )
    app.state.sandbox = SandboxState(latency_seconds=latency_seconds, slow_seconds=slow_seconds)
    app.state.inbound = InboundPoster(webhook_url, inbound_delay_seconds)
    app.add_exception_handler(VendorError, vendor_error_response)
    for router in ROUTERS:
        app.include_router(router)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
