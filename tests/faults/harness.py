"""Fault-injection harness: a dedicated stack per test module, real service processes, load.

The stack is always embedded and private to the module (PostgreSQL + Apache Kafka, or Tansu
when the suite runs on Tansu): the tests stop and restart its servers, so the shared URLs of
``TEST_DATABASE_URL`` / ``TEST_KAFKA_BROKER_URL`` are never used. Services run as
``python -m sourcing.<service>`` children with their own log files (``Service``); the gateway
is sent signed Yay deliveries and Sales Nav lead batches (``Gateway``), every answer recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sourcing.allocation.app import CONSUMER as ALLOCATION_CONSUMER
from sourcing.calls.app import PERFORMANCE_CONSUMER, VALIDATION_CONSUMER, YAY_CONSUMER
from sourcing.common.db import create_engine, create_sessionmaker
from sourcing.common.kafka.app import app_id_for
from sourcing.common.migrate import upgrade
from sourcing.common.topics import DEAD_LETTER, lane
from sourcing.devstack import DevstackError, Stack, choose_test_broker, start_stack
from sourcing.devstack._process import ChildProcess, free_port
from sourcing.devstack.postgres import FAST_UNSAFE_SETTINGS
from sourcing.enrichment.app import ENRICHMENT_CONSUMER, RANKING_CONSUMER
from sourcing.ingestion.app import LEAD_CONSUMER, SALES_NAV_CONSUMER
from tests.factories import create_caller, create_project
from tests.fixtures.kafka import read_topic
from tests.fixtures.settings import Settings, load_settings

YAY_SECRET = "fault-suite-yay-secret"
SALES_NAV_SECRET = "fault-suite-sales-nav-secret"
FINAL_LEAD_STATES = ("ENRICHED", "ENRICHMENT_FAILED", "DISQUALIFIED")
YAY_CALL_EVENTS = ("call.started", "call.ringing", "call.answered", "call.ended")
START_TIMEOUT_SECONDS = 180.0

# The lanes each agent service consumes (its consumer group is the service's Faust app id).
SERVICE_LANES: dict[str, tuple[str, ...]] = {
    "ingestion": ("sales-nav-ingestion", "lead-ingestion", "job-title-discovery"),
    "enrichment": ("enrichment", "ranking"),
    "calls": ("yay-call-events", "call-validation", "performance"),
    "allocation": ("call-allocation",),
}


class Service:
    """``python -m sourcing.<name>`` (or the gateway / sandbox) with a log file; SIGKILL and
    restart at will. ``ready_url`` answers 200 once the process serves (agents: joined)."""

    def __init__(self, name: str, env: dict[str, str], workdir: Path, ready_url: str) -> None:
        self.name = name
        self.env = env
        self.ready_url = ready_url
        self.process = ChildProcess(
            name,
            [sys.executable, "-m", f"sourcing.{name}"],
            log_path=workdir / f"{name}.log",
            env=env,
            cwd=workdir,  # no stray .env is read
            parent_death_signal=signal.SIGKILL,
        )

    def start(self) -> None:
        self.process.spawn()

    def kill(self) -> None:
        """SIGKILL the process group: nothing is flushed, committed or drained."""
        self.process.kill()

    async def wait_ready(self, timeout: float = START_TIMEOUT_SECONDS) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=5.0) as client:
            while True:
                if not self.process.is_running():
                    raise self.process.failure(f"{self.name} exited before it was ready")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(self.ready_url)).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise self.process.failure(f"{self.name} not ready within {timeout:.0f} s")
                await asyncio.sleep(0.25)

    def assert_alive(self) -> None:
        if not self.process.is_running():
            raise self.process.failure(f"{self.name} died")


@dataclass
class Platform:
    """A dedicated stack with migrated database, lane topics under ``prefix``, the provider
    sandbox, and the service processes a test starts (all stopped by ``close``)."""

    stack: Stack
    prefix: str
    workdir: Path
    env: dict[str, str]
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    services: dict[str, Service] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.services['api'].env['PORT']}"

    def add(self, name: str) -> Service:
        """Declare a service (not started): the gateway (``api``), ``sandbox`` or an agent."""
        port = free_port()
        env = dict(self.env)
        if name == "api":
            env["PORT"] = str(port)
            ready = f"http://127.0.0.1:{port}/api/v1/system/ready"
        elif name == "sandbox":
            ready = f"http://127.0.0.1:{self.env['SANDBOX_PORT']}/health"
        else:
            env["METRICS_PORT"] = str(port)
            ready = f"http://127.0.0.1:{port}/health/ready"
        service = Service(name, env, self.workdir, ready)
        self.services[name] = service
        return service

    async def start(self, *names: str) -> None:
        """Start the named services side by side and wait until each is ready."""
        for name in names:
            self.services[name].start()
        await asyncio.gather(*(self.services[name].wait_ready() for name in names))

    def __getitem__(self, name: str) -> Service:
        return self.services[name]

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.sessions() as session:
            return (await session.execute(text(sql), params)).scalar()

    async def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        async with self.sessions() as session:
            return [tuple(row) for row in (await session.execute(text(sql), params)).all()]

    async def count(self, sql: str, **params: Any) -> int:
        """``scalar`` as an int, or -1 while the database is unreachable (progress polls)."""
        try:
            return int(await self.scalar(sql, **params))
        except Exception:
            return -1

    async def lag(self, service: str) -> int:
        """Messages on the service's lanes its consumer group has not committed yet (read with
        OffsetFetch by a consumer that never joins the group)."""
        partitions = [
            TopicPartition(self.settings.topic(name), p)
            for name in SERVICE_LANES[service]
            for p in range(lane(name).partitions)
        ]
        reader = AIOKafkaConsumer(
            bootstrap_servers=self.stack.bootstrap_servers,
            group_id=app_id_for(service, self.settings),
            enable_auto_commit=False,
        )
        await reader.start()
        try:
            lag = 0
            for tp, end in (await reader.end_offsets(partitions)).items():
                lag += max(end - max(await reader.committed(tp) or 0, 0), 0)
            return lag
        finally:
            await reader.stop()

    async def topic_size(self, lane_name: str) -> int:
        """Records ever written to a lane's topic (sum of its partitions' end offsets)."""
        partitions = [
            TopicPartition(self.settings.topic(lane_name), p)
            for p in range(lane(lane_name).partitions)
        ]
        reader = AIOKafkaConsumer(bootstrap_servers=self.stack.bootstrap_servers)
        await reader.start()
        try:
            return sum((await reader.end_offsets(partitions)).values())
        finally:
            await reader.stop()

    async def unprocessed(self, lane_name: str, consumer: str) -> set[str]:
        """Envelope ids on a lane's topic that ``consumer`` has no ``processed_events`` row for."""
        records = await read_topic(self.settings, lane_name, timeout=60)
        ids = {record.envelope().id for record in records}
        done = await self.rows(
            "SELECT event_id FROM processed_events WHERE consumer = :c", c=consumer
        )
        return ids - {row[0] for row in done}

    async def settled(self, *services: str) -> bool:
        """Every named service alive and its consumer group caught up on all its lanes."""
        for name in services:
            self[name].assert_alive()
        try:
            lags = [await self.lag(name) for name in services]
        except Exception:
            return False
        return not any(lags)

    async def quiescent(self, *services: str) -> bool:
        """Nothing left to do: every lane of ``services`` consumed and committed, the outbox
        drained, and no message processed meanwhile (so none was in flight)."""
        processed = "SELECT count(*) FROM processed_events"
        before = await self.count(processed)
        return (
            before >= 0
            and await self.settled(*services)
            and await self.count("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
            and await self.settled(*services)
            and await self.count(processed) == before
        )

    async def close(self) -> None:
        for service in self.services.values():
            service.kill()
        await self.engine.dispose()


def start_dedicated_stack() -> Stack:
    """PostgreSQL and a broker of our own (never the ``TEST_*`` URLs: the tests stop them);
    the test is skipped when they cannot be started here."""
    broker = choose_test_broker()
    try:
        return start_stack(broker=broker, postgres_settings=FAST_UNSAFE_SETTINGS)
    except DevstackError as exc:
        pytest.skip(f"fault injection needs a dedicated PostgreSQL and broker to stop: {exc}")


def _service_env(stack: Stack, prefix: str, workdir: Path) -> dict[str, str]:
    # Only settings named here reach the services: nothing from the caller's environment
    # (a shared DATABASE_URL, fast test retries) may change what is being proven.
    inherited = {k: v for k, v in os.environ.items() if k not in Settings.model_fields}
    sandbox_port = free_port()
    return inherited | {
        "APP_ENV": "test",
        "LOG_LEVEL": "info",
        "PYTHONUNBUFFERED": "1",
        "TMPDIR": str(workdir),  # Faust data directories
        "DATABASE_URL": stack.database_url,
        "KAFKA_BROKER_URL": stack.bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": prefix,
        # Tansu has no InitProducerId.
        "KAFKA_IDEMPOTENT_PRODUCER": "true" if stack.broker_kind == "kafka" else "false",
        # A restarted worker rejoins in seconds (the dead member's session expires quickly).
        "KAFKA_SESSION_TIMEOUT_SECONDS": "6",
        "KAFKA_REBALANCE_TIMEOUT_SECONDS": "4",
        "KAFKA_HEARTBEAT_INTERVAL_SECONDS": "1",
        "KAFKA_COMMIT_INTERVAL_SECONDS": "0.5",
        "OUTBOX_RELAY_INTERVAL_SECONDS": "0.05",
        "BROKER_SEND_TIMEOUT_SECONDS": "3",
        # Production's attempts and first backoff; waits capped at 4 s (not 30) so that a
        # recovered dependency is noticed within seconds.
        "AGENT_MAX_ATTEMPTS": "5",
        "AGENT_RETRY_BASE_SECONDS": "1",
        "AGENT_RETRY_MAX_SECONDS": "4",
        "AGENT_WEB_PORT": "0",
        "SANDBOX_PROVIDERS": "1",
        "SANDBOX_PORT": str(sandbox_port),
        "SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}",
        "SANDBOX_LATENCY_SECONDS": "0",
        "ENRICHMENT_POLL_INTERVAL_SECONDS": "0",
        "YAY_WEBHOOK_SECRET": YAY_SECRET,
        "SALES_NAV_WEBHOOK_SECRET": SALES_NAV_SECRET,
    }


@contextlib.asynccontextmanager
async def running_platform(workdir: Path) -> AsyncIterator[Platform]:
    """A dedicated stack, migrated, with every lane topic; everything stopped on exit."""
    stack = await asyncio.to_thread(start_dedicated_stack)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:  # Alembic runs its own event loop
            await asyncio.wrap_future(pool.submit(upgrade, stack.database_url))
        prefix = f"f{uuid.uuid4().hex[:8]}-"
        await stack.create_topics(prefix=prefix)
        settings = load_settings(
            APP_ENV="test",
            DATABASE_URL=stack.database_url,
            KAFKA_BROKER_URL=stack.bootstrap_servers,
            KAFKA_TOPIC_PREFIX=prefix,
            DATABASE_COMMAND_TIMEOUT_SECONDS=10.0,
        )
        engine = create_engine(settings)
        platform = Platform(
            stack=stack,
            prefix=prefix,
            workdir=workdir,
            env=_service_env(stack, prefix, workdir),
            settings=settings,
            engine=engine,
            sessions=create_sessionmaker(engine),
        )
        try:
            yield platform
        finally:
            await platform.close()
    finally:
        await stack.aclose()


async def wait_for(
    condition: Callable[[], Awaitable[bool]],
    *,
    timeout: float,  # noqa: ASYNC109 - bounds the polling loop
    message: str,
    interval: float = 0.25,
    state: Callable[[], Awaitable[str]] | None = None,
) -> None:
    """Poll ``condition``; on timeout fail naming ``message`` and, if given, the ``state``."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            seen = f" ({await state()})" if state is not None else ""
            raise AssertionError(f"{message}: not reached within {timeout:.0f} s{seen}")
        await asyncio.sleep(interval)


# --- load -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook request as the sender saw it (``status`` None: no HTTP answer)."""

    kind: str  # "yay" | "sales-nav"
    key: str  # Yay event id, or the Sales Nav batch id
    status: int | None
    sent_at: float  # monotonic
    answered_at: float

    @property
    def seconds(self) -> float:
        return self.answered_at - self.sent_at


@dataclass(frozen=True, slots=True)
class YayEvent:
    event_id: str
    body: bytes


def yay_calls(run: str, caller_emails: Sequence[str], calls: int) -> list[list[YayEvent]]:
    """``calls`` calls of 30+ s talk (not short), round robin over the callers, each four
    events in order; started a minute ago so they count in the rolling 60-minute window."""
    started = datetime.now(UTC) - timedelta(minutes=1)
    result: list[list[YayEvent]] = []
    for index in range(calls):
        call_id = f"{run}-call-{index}"
        talk = 30 + index % 30
        times = (0, 2, 6, 7 + talk)
        events = []
        for kind, offset in zip(YAY_CALL_EVENTS, times, strict=True):
            body: dict[str, Any] = {
                "event": kind,
                "callId": call_id,
                "occurredAt": (started + timedelta(seconds=offset)).isoformat(),
                "agentEmail": caller_emails[index % len(caller_emails)],
                "from": "+442071234567",
                "to": f"+1415555{index % 10_000:04d}",
                "direction": "outbound",
            }
            if kind == "call.ended":
                body |= {"durationSeconds": talk + 7, "talkSeconds": talk}
            events.append(YayEvent(f"{call_id}-{kind}", json.dumps(body).encode()))
        result.append(events)
    return result


def sales_nav_leads(run: str, start: int, count: int) -> list[dict[str, Any]]:
    """Distinct people; ``Standard`` in the name makes the sandbox answer fast and confident."""
    return [
        {
            "name": f"Lead{i} Standard",
            "company": f"Acme {i}",
            "title": "VP Payments",
            "linkedinUrl": f"https://www.linkedin.com/in/fault-{run}-{i}",
            "companyDomain": f"acme{i}.com",
            "countryIso": "US",
        }
        for i in range(start, start + count)
    ]


class Gateway:
    """Sends webhooks to the gateway and records every answer in ``deliveries``."""

    def __init__(self, base_url: str, *, connections: int = 32) -> None:
        self.client = httpx.AsyncClient(
            base_url=base_url,
            timeout=60.0,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )
        self.deliveries: list[Delivery] = []

    async def __aenter__(self) -> Gateway:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.client.aclose()

    async def _post(self, kind: str, key: str, **request: Any) -> Delivery:
        sent = time.monotonic()
        status: int | None
        try:
            status = (await self.client.post(**request)).status_code
        except httpx.HTTPError:
            status = None
        delivery = Delivery(kind, key, status, sent, time.monotonic())
        self.deliveries.append(delivery)
        return delivery

    async def yay(self, event: YayEvent) -> Delivery:
        headers = {
            "content-type": "application/json",
            "x-yay-signature": hmac.new(
                YAY_SECRET.encode(), event.body, hashlib.sha256
            ).hexdigest(),
            "x-yay-timestamp": str(int(time.time())),
            "x-yay-event-id": event.event_id,
        }
        return await self._post(
            "yay", event.event_id, url="/webhooks/yay", content=event.body, headers=headers
        )

    async def sales_nav(
        self, project_id: uuid.UUID, batch_id: str, leads: list[dict[str, Any]]
    ) -> Delivery:
        body = {
            "projectId": str(project_id),
            "searchUrl": f"https://linkedin.com/sales/search/{batch_id}",
            "leads": leads,
        }
        return await self._post(
            "sales-nav",
            batch_id,
            url="/webhooks/sales-nav",
            json=body,
            headers={"x-sales-nav-secret": SALES_NAV_SECRET},
        )

    async def yay_call(self, events: Sequence[YayEvent]) -> None:
        for event in events:
            await self.yay(event)

    def accepted(self, kind: str) -> set[str]:
        return {d.key for d in self.deliveries if d.kind == kind and d.status == 202}

    def refused(self, kind: str) -> set[str]:
        """Keys never answered 202 (a sender would deliver them again)."""
        return {d.key for d in self.deliveries if d.kind == kind} - self.accepted(kind)


Job = Callable[[], Awaitable[Any]]


async def run_jobs(
    jobs: Iterable[Job], *, concurrency: int, stop: asyncio.Event | None = None
) -> None:
    """Run ``jobs`` in order with at most ``concurrency`` at a time (no new one after ``stop``)."""
    queue: asyncio.Queue[Job] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)

    async def worker() -> None:
        while not queue.empty() and not (stop is not None and stop.is_set()):
            await (queue.get_nowait())()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def interleave(*streams: Sequence[Job]) -> list[Job]:
    """Jobs of several streams alternated in proportion, so each spans the whole run."""
    ordered = sorted(
        ((index + 0.5) / len(stream), n, job)
        for n, stream in enumerate(streams)
        for index, job in enumerate(stream)
    )
    return [job for _, _, job in ordered]


# --- the two webhook pipelines, end to end -------------------------------------------------

PIPELINE_AGENTS = ("ingestion", "enrichment", "calls", "allocation")
# (lane, consumer) of every agent on the Sales Nav and Yay paths.
PIPELINE_LANES = (
    ("sales-nav-ingestion", SALES_NAV_CONSUMER),
    ("lead-ingestion", LEAD_CONSUMER),
    ("enrichment", ENRICHMENT_CONSUMER),
    ("ranking", RANKING_CONSUMER),
    ("yay-call-events", YAY_CONSUMER),
    ("call-validation", VALIDATION_CONSUMER),
    ("performance", PERFORMANCE_CONSUMER),
    ("call-allocation", ALLOCATION_CONSUMER),
)
FINAL_LEADS_SQL = "SELECT count(*) FROM leads WHERE status IN ({})".format(  # noqa: S608 - constants
    ", ".join(f"'{state}'" for state in FINAL_LEAD_STATES)
)
VALIDATED_CALLS_SQL = "SELECT count(*) FROM call_logs WHERE validated_at IS NOT NULL"


@dataclass
class PipelineLoad:
    """Sales Nav lead deliveries for one project and Yay calls for seeded callers."""

    project_id: uuid.UUID
    callers: int
    calls: list[list[YayEvent]]
    lead_batches: list[tuple[str, list[dict[str, Any]]]]

    @property
    def events(self) -> int:
        return sum(len(call) for call in self.calls)

    @property
    def leads(self) -> int:
        return sum(len(leads) for _, leads in self.lead_batches)

    def call_jobs(self, gateway: Gateway) -> list[Job]:
        return [partial(gateway.yay_call, events) for events in self.calls]

    def lead_jobs(self, gateway: Gateway) -> list[Job]:
        return [
            partial(gateway.sales_nav, self.project_id, batch_id, leads)
            for batch_id, leads in self.lead_batches
        ]


async def seed_pipeline(
    platform: Platform, *, callers: int, calls: int, leads: int, leads_per_delivery: int
) -> PipelineLoad:
    """A project (US) and ``callers`` callers in the database; the load to send them."""
    run = uuid.uuid4().hex[:8]
    async with platform.sessions() as session, session.begin():
        project = await create_project(session, geography_iso_codes=["US"])
        emails = [(await create_caller(session)).email for _ in range(callers)]
        project_id = project.id
    return PipelineLoad(
        project_id=project_id,
        callers=callers,
        calls=yay_calls(run, emails, calls),
        lead_batches=[
            (f"{run}-{start}", sales_nav_leads(run, start, leads_per_delivery))
            for start in range(0, leads, leads_per_delivery)
        ],
    )


async def wait_pipeline_done(
    platform: Platform,
    load: PipelineLoad,
    *,
    timeout: float,  # noqa: ASYNC109 - bounds the polling loop
) -> None:
    """Until every agent is caught up with nothing in flight, then every lead must be final
    and every call validated; fails at once when anything reaches the dead-letter lane."""

    async def done() -> bool:
        dead = await platform.topic_size(DEAD_LETTER)
        assert dead == 0, f"{dead} message(s) dead-lettered; see {platform.workdir}/*.log"
        if not await platform.quiescent(*PIPELINE_AGENTS):
            return False
        leads = await platform.count(FINAL_LEADS_SQL)
        calls = await platform.count(VALIDATED_CALLS_SQL)
        assert (leads, calls) == (load.leads, len(load.calls)), (
            f"every lane consumed and committed, yet only {leads}/{load.leads} leads final and "
            f"{calls}/{len(load.calls)} calls validated: messages were lost"
        )
        return True

    async def state() -> str:
        lags = {name: await platform.lag(name) for name in PIPELINE_AGENTS}
        unpublished = await platform.count("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        return (
            f"{await platform.count(FINAL_LEADS_SQL)}/{load.leads} leads final, "
            f"{await platform.count(VALIDATED_CALLS_SQL)}/{len(load.calls)} calls validated, "
            f"{unpublished} outbox rows unpublished, lag {lags}"
        )

    await wait_for(
        done, timeout=timeout, message="every lead final and every call validated", state=state
    )


async def assert_pipeline_complete(platform: Platform, load: PipelineLoad) -> None:
    """Every lead and event of ``load`` processed exactly once, down every lane."""
    leads, events, calls = load.leads, load.events, len(load.calls)
    # Leads: one expert and one lead per person, each final after ONE waterfall and ONE
    # ranking (a message handled twice would leave a second run or snapshot).
    assert await platform.rows(
        "SELECT count(*), count(DISTINCT linkedin_url_normalized) FROM experts"
    ) == [(leads, leads)]
    assert await platform.rows(
        FINAL_LEADS_SQL.replace("count(*)", "count(*), count(DISTINCT expert_id)")
    ) == [(leads, leads)]
    assert await platform.rows(
        "SELECT count(DISTINCT lead_id), count(DISTINCT run_id) FROM enrichment_attempts"
    ) == [(leads, leads)]
    assert await platform.rows(
        "SELECT count(*), count(DISTINCT lead_id) FROM ranking_snapshots"
    ) == [(leads, leads)]

    # Calls: every event stored once and folded once into its call, every call validated.
    assert await platform.rows("SELECT count(*), count(DISTINCT event_id) FROM call_logs_raw") == [
        (events, events)
    ]
    assert await platform.scalar("SELECT count(*) FROM processed_webhook_events") == events
    assert await platform.rows(
        "SELECT count(*), min(event_count), max(event_count) FROM call_logs"
        " WHERE status = 'ENDED' AND validated_at IS NOT NULL AND caller_id IS NOT NULL"
    ) == [(calls, 4, 4)]
    # Performance: each caller's metrics were recomputed after its last call.
    per_caller = await platform.rows(
        "SELECT l.caller_id, count(DISTINCT l.id),"
        " (SELECT max(m.rolling_60_minute_dials) FROM caller_performance_metrics m"
        "  WHERE m.caller_id = l.caller_id)"
        " FROM call_logs l GROUP BY l.caller_id"
    )
    assert len(per_caller) == load.callers
    assert all(count == dials for _, count, dials in per_caller), per_caller

    # Every message of every lane was processed by its consumer; none was dead-lettered.
    for lane_name, consumer in PIPELINE_LANES:
        assert await platform.unprocessed(lane_name, consumer) == set(), lane_name
    assert await platform.topic_size(DEAD_LETTER) == 0
