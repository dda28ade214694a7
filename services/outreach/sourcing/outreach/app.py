"""The outreach service's Faust app: three thin agents over the handlers and the service.

* ``outreach`` lane: ``outreach.send.v1`` (deliver a queued message through its channel
  adapter), ``outreach.auto.v1`` (enrichment asks for outreach on the project's channel),
  ``project.closed.v1`` (a COMPLETED or ARCHIVED project's queued messages are cancelled) and
  ``outreach.inbound.v1`` (a reply, delivery report, bounce or opt-out from a webhook);
* ``screening`` lane: ``screening.follow-up-sweep.v1`` (the scheduler's tick: one follow-up
  per screening due) and ``screening.follow-up.v1`` (reminder, or escalation);
* ``google-sheets-sync`` lane: ``google-sheets-sync.requested.v1`` (one row per expert).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.clock import Clock, utc_now
from sourcing.common.events import Envelope
from sourcing.common.kafka.app import SourcingApp, create_app, reliable_agent
from sourcing.common.messages.outreach import (
    ScreeningFollowUpRequested,
    ScreeningFollowUpSweepRequested,
    SheetSyncRequested,
)
from sourcing.common.models.enums import Channel
from sourcing.outreach import service
from sourcing.outreach.channels import OutreachChannel, build_channel_http, build_channels
from sourcing.outreach.handlers import (
    OutreachHandlers,
    ScreeningHandlers,
    SheetSyncHandlers,
)
from sourcing.outreach.settings import OutreachSettings
from sourcing.outreach.sheets import GoogleSheetsClient

SERVICE_NAME = "outreach"


def build_app(
    settings: OutreachSettings,
    *,
    channels: Mapping[Channel, OutreachChannel] | None = None,
    sheets: GoogleSheetsClient | None = None,
    clock: Clock = utc_now,
    **create_app_options: Any,
) -> SourcingApp:
    """The outreach app (``channels`` / ``sheets`` default to the real adapters)."""
    app = create_app(SERVICE_NAME, settings, **create_app_options)
    if channels is None:
        channels = build_channels(settings, build_channel_http(settings))
    outreach = OutreachHandlers(
        settings=settings,
        sessionmaker=app.runtime.sessionmaker,
        channels=channels,
        clock=clock,
    )
    screening = ScreeningHandlers(settings=settings, clock=clock)
    sheet_sync = SheetSyncHandlers(
        settings=settings, sheets=sheets or GoogleSheetsClient(settings), clock=clock
    )

    async def sweep_follow_ups(
        session: AsyncSession, envelope: Envelope, payload: ScreeningFollowUpSweepRequested
    ) -> None:
        await service.publish_due_follow_ups(
            session,
            sweep=envelope,
            requested_at=payload.requested_at,
            idle_minutes=settings.SCREENING_FOLLOW_UP_IDLE_MINUTES,
            limit=settings.SCREENING_FOLLOW_UP_BATCH_SIZE,
        )

    reliable_agent(app, "outreach", outreach.handlers(), consumer_name="outreach")
    reliable_agent(
        app,
        "screening",
        {
            ScreeningFollowUpSweepRequested.message_type: sweep_follow_ups,
            ScreeningFollowUpRequested.message_type: screening.follow_up,
        },
        consumer_name="screening",
    )
    reliable_agent(
        app,
        "google-sheets-sync",
        {SheetSyncRequested.message_type: sheet_sync.sync},
        consumer_name="google-sheets-sync",
    )
    return app
