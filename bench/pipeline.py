"""Sourcing pipeline throughput: leads/s from the Sales Nav webhook to ``ENRICHED``.

``.venv/bin/python bench/pipeline.py [--leads 1000] [--per-webhook 100]``

Starts (or reuses, through ``TEST_DATABASE_URL`` / ``TEST_KAFKA_BROKER_URL``) the embedded
stack, creates the lane topics under a fresh prefix, runs the provider sandbox at zero latency
in a child process (``python -m sourcing.sandbox``), and in this process the gateway (in-process
ASGI client, real HTTP semantics) plus the ingestion and enrichment apps. Every lead's name
contains ``standard`` so the sandbox answers with its fast, high-confidence persona (no slow or
flaky vendor). The clock runs from the first webhook request to the moment every lead is
``ENRICHED``. A warm-up delivery runs first. The bench removes its rows and topics at the end
and is bounded in time (``--timeout``). Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import delete, func, select

from sourcing.api.app import create_app as create_gateway
from sourcing.common.config import Settings, load_settings
from sourcing.common.db import create_engine, create_sessionmaker
from sourcing.common.kafka.app import SourcingApp
from sourcing.common.migrate import upgrade
from sourcing.common.models import Expert, Lead, Project
from sourcing.devstack import create_topics, delete_topics, start_test_stack
from sourcing.enrichment.app import build_app as build_enrichment_app
from sourcing.ingestion.app import build_app as build_ingestion_app
from sourcing.sandbox.server import free_port

SECRET = "bench-sales-nav-secret"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


@contextlib.contextmanager
def _sandbox(port: int) -> Any:
    env = {
        **os.environ,
        "APP_ENV": "development",
        "SANDBOX_PORT": str(port),
        "SANDBOX_LATENCY_SECONDS": "0",
    }
    child = subprocess.Popen(
        [sys.executable, "-m", "sourcing.sandbox"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("provider sandbox did not start")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()


async def _start(app: SourcingApp, timeout: float = 90.0) -> None:  # noqa: ASYNC109
    await app.start()
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            if app.consumer.assignment():
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{app.conf.id}: no partitions assigned")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def _gateway(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_gateway(settings)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway.bench") as client,
    ):
        yield client


def _leads(run: str, start: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "name": f"Bench Standard{'x' * (i % 3)}",
            "company": f"Acme {i}",
            "title": "VP Payments",
            "linkedinUrl": f"https://www.linkedin.com/in/bench-{run}-{i}",
            "companyDomain": f"acme{i}.com",
            "countryIso": "US",
        }
        for i in range(start, start + count)
    ]


async def _deliver(
    api: httpx.AsyncClient, project_id: uuid.UUID, run: str, start: int, count: int, chunk: int
) -> None:
    for offset in range(start, start + count, chunk):
        size = min(chunk, start + count - offset)
        response = await api.post(
            "/webhooks/sales-nav",
            headers={"x-sales-nav-secret": SECRET},
            json={
                "projectId": str(project_id),
                "searchUrl": f"https://linkedin.com/sales/search/bench-{run}",
                "leads": _leads(run, offset, size),
            },
        )
        if response.status_code != 202:
            raise RuntimeError(f"webhook answered {response.status_code}: {response.text}")


async def bench(args: argparse.Namespace) -> None:
    stack = start_test_stack()
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:  # Alembic runs its own loop
            pool.submit(upgrade, stack.database_url).result()
        prefix = f"bench{uuid.uuid4().hex[:8]}-"
        await create_topics(stack.bootstrap_servers, prefix=prefix)
        try:
            with _sandbox(free_port()) as sandbox_url:
                await _run(args, stack.database_url, stack.bootstrap_servers, prefix, sandbox_url,
                           stack.broker_kind)  # fmt: skip
        finally:
            await delete_topics(stack.bootstrap_servers, prefix=prefix)
    finally:
        stack.close()


async def _run(
    args: argparse.Namespace,
    database_url: str,
    bootstrap: str,
    prefix: str,
    sandbox_url: str,
    broker_kind: str,
) -> None:
    settings = load_settings(
        APP_ENV="development",
        DATABASE_URL=database_url,
        KAFKA_BROKER_URL=bootstrap,
        KAFKA_TOPIC_PREFIX=prefix,
        KAFKA_IDEMPOTENT_PRODUCER=broker_kind == "kafka",
        KAFKA_SESSION_TIMEOUT_SECONDS=6.0,
        KAFKA_REBALANCE_TIMEOUT_SECONDS=4.0,
        KAFKA_HEARTBEAT_INTERVAL_SECONDS=1.0,
        KAFKA_COMMIT_INTERVAL_SECONDS=0.5,
        OUTBOX_RELAY_INTERVAL_SECONDS=0.02,
        AGENT_WEB_PORT=0,
        METRICS_PORT=0,
        SANDBOX_PROVIDERS=True,
        SANDBOX_URL=sandbox_url,
        SANDBOX_LATENCY_SECONDS=0.0,
        ZELIQ_CALLBACK_URL=None,
        SALES_NAV_WEBHOOK_SECRET=SECRET,
        ENRICHMENT_POLL_INTERVAL_SECONDS=0.0,
        DATABASE_POOL_SIZE=20,
    )
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    run = uuid.uuid4().hex[:8]
    async with sessionmaker() as session, session.begin():
        project = Project(
            name=f"bench {run}",
            target_threshold=100,
            geography_iso_codes=["US"],
            status="ACTIVE",
        )
        session.add(project)
    datadir = Path(tempfile.mkdtemp(prefix="bench-faust-"))
    ingestion = build_ingestion_app(
        settings, web_enabled=False, datadir=datadir / "ingestion", sessionmaker=sessionmaker
    )
    enrichment = build_enrichment_app(
        settings, web_enabled=False, datadir=datadir / "enrichment", sessionmaker=sessionmaker
    )

    async def enriched() -> int:
        async with sessionmaker() as session:
            statement = select(func.count()).where(
                Lead.project_id == project.id, Lead.status == "ENRICHED"
            )
            return int((await session.execute(statement)).scalar_one())

    async def by_status() -> dict[str, int]:
        async with sessionmaker() as session:
            statement = (
                select(Lead.status, func.count())
                .where(Lead.project_id == project.id)
                .group_by(Lead.status)
            )
            return {status: int(n) for status, n in await session.execute(statement)}

    async def wait_for(count: int, deadline: float) -> None:
        last_report = time.monotonic()
        while (done := await enriched()) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{done}/{count} leads enriched before the time limit")
            if args.verbose and time.monotonic() - last_report > 1:
                last_report = time.monotonic()
                print("  progress:", await by_status(), flush=True)
            await asyncio.sleep(0.05)

    try:
        await _start(ingestion)
        await _start(enrichment)
        async with _gateway(settings) as api:
            deadline = time.monotonic() + args.timeout
            await _deliver(api, project.id, run, 0, args.warmup, args.per_webhook)
            await wait_for(args.warmup, deadline)

            started = time.perf_counter()
            await _deliver(api, project.id, run, args.warmup, args.leads, args.per_webhook)
            accepted = time.perf_counter() - started
            await wait_for(args.warmup + args.leads, deadline)
            elapsed = time.perf_counter() - started
    finally:
        for app in (enrichment, ingestion):
            with contextlib.suppress(Exception):
                await app.stop()
        async with sessionmaker() as session, session.begin():
            await session.execute(
                delete(Expert).where(Expert.linkedin_url_normalized.like(f"%bench-{run}-%"))
            )
            await session.execute(delete(Project).where(Project.id == project.id))
        await engine.dispose()

    print(f"machine: {os.cpu_count()} cores ({_cpu_model()}), Python {platform.python_version()}")
    print(f"broker: {broker_kind} at {bootstrap}; PostgreSQL at loopback")
    print(
        f"setup: gateway + ingestion + enrichment apps in one process, sandbox (0 s latency) in "
        f"another; ENRICHMENT_BATCH_SIZE={settings.ENRICHMENT_BATCH_SIZE}, "
        f"ENRICHMENT_PARALLEL_PROVIDERS={settings.ENRICHMENT_PARALLEL_PROVIDERS}"
    )
    print(f"leads: {args.leads} in webhooks of {args.per_webhook} (after {args.warmup} warm-up)")
    print(f"webhooks accepted (202) in {accepted:.2f} s")
    print(f"webhook -> ENRICHED: {elapsed:.2f} s = {args.leads / elapsed:.1f} leads/s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leads", type=int, default=1000)
    parser.add_argument("--per-webhook", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--verbose", action="store_true", help="print progress every second")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds, warm-up included")
    args = parser.parse_args()
    asyncio.run(bench(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
