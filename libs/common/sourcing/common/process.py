"""Process start-up shared by the gateway and the agent services: the checks that must pass
before anything is served, and heap tuning."""

from __future__ import annotations

import asyncio
import gc

import uvloop

from sourcing.common.config import Settings
from sourcing.common.kafka.producer import bootstrap_servers
from sourcing.common.kafka.security import KafkaAuthenticationError, check_broker_credentials
from sourcing.common.migrate import SchemaMismatch, check_schema


def use_uvloop() -> None:
    """Every event loop this process creates from now on is uvloop's: the agent's main loop
    and the Kafka client's thread alike (the gateway's uvicorn picks uvloop by itself).

    The agents' loops are busy with many small database and broker round trips, where
    uvloop's transports cost a fraction of asyncio's. Call before the worker is built.
    """
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def refuse_unsafe_start(service: str, settings: Settings) -> None:
    """Stop the process (non-zero exit, message on stderr) before it serves anything when the
    database is not at this code's schema head or the broker refuses our credentials."""
    try:
        asyncio.run(_startup_checks(settings))
    except (SchemaMismatch, KafkaAuthenticationError) as exc:
        raise SystemExit(f"{service}: refusing to start: {exc}") from exc


async def _startup_checks(settings: Settings) -> None:
    await check_schema(settings.DATABASE_URL, timeout=settings.DATABASE_COMMAND_TIMEOUT_SECONDS)
    await check_broker_credentials(
        settings, bootstrap_servers(settings), timeout=settings.BROKER_SEND_TIMEOUT_SECONDS
    )


# Net allocations of tracked objects that trigger a young-generation collection. At Python's
# default (700) the objects of the gateway's in-flight webhooks alone crossed it every ~15
# requests: some 200 collections a second that found nothing to free (6 % of the process's CPU)
# and promoted short-lived objects, whose older-generation collections made the latency tail.
# 10,000 is above a busy process's transient working set: collections then run on real growth.
YOUNG_GENERATION_THRESHOLD = 10_000


def freeze_startup_heap() -> None:
    """Exempt everything built at start-up (modules, models, routes, the app) from collection,
    and collect the young generation on real growth only (:data:`YOUNG_GENERATION_THRESHOLD`).

    A full collection otherwise walks those hundreds of thousands of long-lived objects every
    time; on the gateway that pause was the tail of the request latency. Call once, after the
    app is built and before serving.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)
