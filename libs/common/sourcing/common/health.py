"""Health and metrics endpoint of an agent service, on ``METRICS_PORT``.

``GET /health/live``  200 while the worker makes progress (``SourcingRuntime.liveness``: no
                      handler stuck longer than ``AGENT_STALL_SECONDS``, no lag without
                      commits for that long), else 503. For liveness probes: a restart helps.
``GET /health/ready`` 200 when the database answers ``SELECT 1``, the broker answers a metadata
                      request (each within ``READINESS_TIMEOUT_SECONDS``) and the consumer has
                      received its assignment from the group (partitions per topic are
                      reported; an idle replica with none is ready), else 503 naming what
                      failed. For readiness probes and rollouts: a restart does not help a
                      database outage.
``GET /metrics``      Prometheus text format: the process's registry, with the per-topic
                      consumer lag and assignment gauges refreshed on each scrape.

One small asyncio server in the worker's event loop (no thread, no extra dependency): a probe
that times out means the loop itself is blocked, which is what liveness should catch. Started
by :func:`sourcing.common.kafka.app.run_worker` before the Faust app, stopped after it.

The scheduler's process also counts callers by allocation status, call tasks waiting in the
pool and the last hour's enrichment attempts by provider and status on each scrape (at most every
``STATE_REFRESH_SECONDS``; one replica's cheap indexed queries instead of a counter per writer).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from mode import Service
from prometheus_client import Gauge
from sqlalchemy import text

from sourcing.common.metrics import render_metrics
from sourcing.common.statemachines import CallTaskStatus

if TYPE_CHECKING:
    from sourcing.common.kafka.app import SourcingApp

logger = logging.getLogger(__name__)

CONSUMER_LAG = Gauge(
    "sourcing_consumer_lag_messages",
    "Messages waiting in a topic's partitions assigned to this process (end offset minus "
    "committed or read position), refreshed on each scrape.",
    ["topic"],
)
ASSIGNED_PARTITIONS = Gauge(
    "sourcing_consumer_assigned_partitions",
    "Partitions of a topic assigned to this process's consumer, refreshed on each scrape.",
    ["topic"],
)
CALLERS = Gauge(
    "sourcing_callers",
    "Active callers by allocation status (counted by the scheduler on each scrape).",
    ["status"],
)
CALL_TASKS_PENDING = Gauge(
    "sourcing_call_tasks_pending",
    "PENDING call tasks available now (available_after passed): the pool callers draw from "
    "(counted by the scheduler on each scrape).",
)
ENRICHMENT_ATTEMPTS_RECENT = Gauge(
    "sourcing_enrichment_attempts_last_hour",
    "Enrichment provider attempts of the last hour by provider and status (SUCCESS is a hit; "
    "counted by the scheduler on each scrape).",
    ["provider", "status"],
)

# The service whose /metrics also carries the database-derived gauges above.
STATE_GAUGE_SERVICE = "scheduler"
STATE_REFRESH_SECONDS = 15.0
# A probe sends a few short lines; anything slower is not a probe.
_REQUEST_READ_TIMEOUT_SECONDS = 5.0
_MAX_HEADER_LINES = 100

_CALLERS_BY_STATUS = text(
    "SELECT allocation_status, count(*) FROM callers WHERE is_active GROUP BY allocation_status"
)
# Served by the partial index of the PENDING pool (ix_call_tasks_pending_allocation).
_PENDING_CALL_TASKS = text(
    f"SELECT count(*) FROM call_tasks WHERE status = '{CallTaskStatus.PENDING.value}' "  # noqa: S608 - a constant, no input
    "AND (available_after IS NULL OR available_after <= now())"
)
_RECENT_ENRICHMENT_ATTEMPTS = text(
    "SELECT provider, status, count(*) FROM enrichment_attempts "
    "WHERE created_at > now() - interval '1 hour' GROUP BY provider, status"
)

Response = tuple[int, bytes, str]
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
_JSON = "application/json"


class HealthServer(Service):
    """``/health/live``, ``/health/ready`` and ``/metrics`` of one Faust app (see module doc).

    ``port`` defaults to ``METRICS_PORT``; 0 picks a free port (read :attr:`port` after start).
    ``clock`` is the monotonic clock throttling the database-derived gauges.
    """

    def __init__(
        self,
        app: SourcingApp,
        *,
        port: int | None = None,
        host: str = "0.0.0.0",  # noqa: S104 - probes and scrapes come from the cluster
        state_gauges: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> None:
        self.sourcing_app = app
        self.runtime = app.runtime
        settings = self.runtime.settings
        self._requested_port = settings.METRICS_PORT if port is None else port
        self._host = host
        self._state_gauges = (
            self.runtime.service_name == STATE_GAUGE_SERVICE
            if state_gauges is None
            else state_gauges
        )
        self._clock = clock
        self._state_refreshed_at: float | None = None
        self._server: asyncio.Server | None = None
        self.port = 0
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, host=self._host, port=self._requested_port
        )
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info("health and metrics on port %d", self.port)

    async def on_stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    # --- checks ---------------------------------------------------------------------------

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        report = self.runtime.liveness()
        return bool(report["ok"]), report

    def assignment(self) -> dict[str, int]:
        """Assigned partitions per agent topic of this app (all 0 before the app started)."""
        counts = dict.fromkeys((c.topic for c in self.runtime.consumers.values()), 0)
        app = self.sourcing_app
        if not app.started:
            return counts
        try:
            assigned = app.consumer.assignment()
        except Exception:  # the consumer is being (re)created
            return counts
        for tp in assigned:
            if tp.topic in counts:
                counts[tp.topic] += 1
        return counts

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        budget = self.runtime.settings.READINESS_TIMEOUT_SECONDS

        async def ping_database() -> None:
            async with self.runtime.sessionmaker() as session:
                await session.execute(text("SELECT 1"))

        async def ping_broker() -> None:
            await self.runtime.producer.ping(budget_seconds=budget)

        database, broker = await asyncio.gather(
            _check(ping_database, budget), _check(ping_broker, budget)
        )
        assignment = self.assignment()
        # Joined the group = received an assignment, possibly empty: a replica beyond the
        # partition count (say during a rolling update at maxReplicas) idles but is healthy.
        joined = (
            self.sourcing_app.started
            and getattr(self.sourcing_app, "_assignment", None) is not None
        )
        consumer = "ok" if joined else "not yet assigned by the consumer group"
        checks: dict[str, Any] = {"database": database, "broker": broker, "consumer": consumer}
        ok = all(value == "ok" for value in checks.values())
        return ok, {
            "status": "ready" if ok else "not_ready",
            "checks": checks,
            "partitions": assignment,
        }

    # --- metrics --------------------------------------------------------------------------

    async def refresh_gauges(self) -> None:
        """Set the per-topic lag and assignment gauges (and, in the scheduler, the state ones)."""
        for topic, lag in self.runtime.lag_by_topic().items():
            CONSUMER_LAG.labels(topic).set(lag)
        for topic, count in self.assignment().items():
            ASSIGNED_PARTITIONS.labels(topic).set(count)
        if self._state_gauges:
            now = self._clock()
            due = self._state_refreshed_at is None or (
                now - self._state_refreshed_at >= STATE_REFRESH_SECONDS
            )
            if due:
                self._state_refreshed_at = now
                try:
                    async with asyncio.timeout(self.runtime.settings.READINESS_TIMEOUT_SECONDS):
                        await self._refresh_state_gauges()
                except Exception:  # a scrape never fails because the database is slow
                    logger.warning("could not refresh the state gauges", exc_info=True)

    async def _refresh_state_gauges(self) -> None:
        async with self.runtime.sessionmaker() as session:
            callers = (await session.execute(_CALLERS_BY_STATUS)).all()
            pending = (await session.execute(_PENDING_CALL_TASKS)).scalar_one()
            attempts = (await session.execute(_RECENT_ENRICHMENT_ATTEMPTS)).all()
        CALL_TASKS_PENDING.set(pending)
        CALLERS.clear()
        for status, count in callers:
            CALLERS.labels(status).set(count)
        ENRICHMENT_ATTEMPTS_RECENT.clear()
        for provider, status, count in attempts:
            ENRICHMENT_ATTEMPTS_RECENT.labels(provider, status).set(count)

    # --- HTTP -----------------------------------------------------------------------------

    async def respond(self, method: str, path: str) -> Response:
        """The answer to one request (status, body, content type)."""
        if method not in ("GET", "HEAD"):
            return 405, _json({"error": "method not allowed"}), _JSON
        if path == "/health/live":
            ok, report = self.liveness()
            return (
                (200 if ok else 503),
                _json({"status": "ok" if ok else "stalled", **report}),
                _JSON,
            )
        if path == "/health/ready":
            ok, report = await self.readiness()
            return (200 if ok else 503), _json(report), _JSON
        if path == "/metrics":
            await self.refresh_gauges()
            body, content_type = render_metrics()
            return 200, body, content_type
        return 404, _json({"error": "not found"}), _JSON

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_REQUEST_READ_TIMEOUT_SECONDS):
                request_line = await reader.readline()
                for _ in range(_MAX_HEADER_LINES):
                    if (await reader.readline()) in (b"\r\n", b"\n", b""):
                        break
            parts = request_line.decode("latin-1").split()
            if len(parts) < 2:
                return
            method, path = parts[0].upper(), parts[1].split("?", 1)[0]
            status, body, content_type = await self.respond(method, path)
            head = (
                f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"
                f"Content-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            ).encode("latin-1")
            writer.write(head if method == "HEAD" else head + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        except Exception:
            logger.exception("health endpoint failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _check(ping: Callable[[], Awaitable[None]], budget: float) -> str:
    """``"ok"`` or a short error for one dependency ping bounded by ``budget`` seconds."""
    try:
        async with asyncio.timeout(budget):
            await ping()
    except TimeoutError:
        return f"timeout after {budget:g}s"
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    return "ok"


def _json(value: Any) -> bytes:
    return json.dumps(value, default=str).encode()
