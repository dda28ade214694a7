"""The enrichment service's Faust app: the `enrichment` and `ranking` agents (thin; the work is
in :mod:`sourcing.enrichment.handlers` for a waterfall, :mod:`sourcing.enrichment.service` for a
ranking, a Zeliq callback and the callback timeout sweep, which share the `enrichment` lane).

``enrichment`` takes batches of up to ``ENRICHMENT_BATCH_SIZE`` messages, splits them by key
into ``ENRICHMENT_BATCH_CONCURRENCY`` shards of one transaction each, side by side, and runs a
shard's waterfalls concurrently (falling back to one message at a time when a shard fails);
``ranking`` handles its batches in one transaction too, set-based
(:func:`~sourcing.enrichment.service.handle_ranking_batch`).
One shared :class:`ExternalHttp` per process serves every provider adapter and is closed when
the app stops.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.events import Envelope
from sourcing.common.http import ExternalHttp
from sourcing.common.kafka.app import SourcingApp, create_app, reliable_agent
from sourcing.common.messages.enrichment import (
    EnrichmentCallbackSweepRequested,
    EnrichmentRequested,
    ZeliqCallbackReceived,
)
from sourcing.enrichment.handlers import (
    Handler,
    handle_enrichment_batch,
    handle_enrichment_requested,
)
from sourcing.enrichment.providers import build_providers
from sourcing.enrichment.service import (
    EnrichmentDeps,
    handle_ranking_batch,
    handle_ranking_requested,
    record_zeliq_callback,
    time_out_callbacks,
)
from sourcing.enrichment.settings import EnrichmentSettings

SERVICE_NAME = "enrichment"
ENRICHMENT_LANE = "enrichment"
RANKING_LANE = "ranking"
ENRICHMENT_CONSUMER = "enrichment-waterfall"
RANKING_CONSUMER = "ranking"


def build_http(settings: EnrichmentSettings) -> ExternalHttp:
    """The process's outbound client for the providers (per-request timeout from settings)."""
    return ExternalHttp(timeout_seconds=settings.PROVIDER_TIMEOUT_SECONDS)


def build_app(
    settings: EnrichmentSettings,
    *,
    http: ExternalHttp | None = None,
    deps: EnrichmentDeps | None = None,
    **create_app_options: Any,
) -> SourcingApp:
    """The enrichment service (``create_app_options`` go to
    :func:`~sourcing.common.kafka.app.create_app`: tests pass a sessionmaker, no web server)."""
    app = create_app(SERVICE_NAME, settings, **create_app_options)
    own_http = http is None and deps is None
    client = http or build_http(settings)
    deps = deps or EnrichmentDeps(settings=settings, providers=build_providers(settings, client))

    others: dict[str, Handler] = {
        ZeliqCallbackReceived.message_type: partial(record_zeliq_callback, deps=deps),
        EnrichmentCallbackSweepRequested.message_type: partial(time_out_callbacks, deps=deps),
    }
    handlers: dict[str, Handler] = {
        EnrichmentRequested.message_type: partial(handle_enrichment_requested, deps=deps),
        **others,
    }
    handle_batch: Callable[[AsyncSession, Sequence[tuple[Envelope, Any]]], Awaitable[None]] = (
        partial(handle_enrichment_batch, deps=deps, others=others)
    )
    reliable_agent(
        app,
        ENRICHMENT_LANE,
        handlers,
        consumer_name=ENRICHMENT_CONSUMER,
        batch=True,
        batch_handler=handle_batch,
        batch_size=settings.ENRICHMENT_BATCH_SIZE,
        batch_concurrency=settings.ENRICHMENT_BATCH_CONCURRENCY,
    )
    # Keyed by project: a project's rankings arrive on one partition, in batches of one
    # transaction (one commit and one dedup statement per batch, not per message), each read
    # and write one statement for the whole batch.
    reliable_agent(
        app,
        RANKING_LANE,
        handle_ranking_requested,
        consumer_name=RANKING_CONSUMER,
        batch=True,
        batch_handler=handle_ranking_batch,
    )

    if own_http:
        close_runtime = app.runtime.close

        async def close() -> None:
            await close_runtime()
            await client.aclose()

        # The runtime closes after Faust drained in-flight messages: close the client last.
        app.runtime.close = close  # type: ignore[method-assign]
    return app
