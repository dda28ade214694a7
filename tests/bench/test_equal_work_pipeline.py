"""The pipeline benchmark's baseline does the platform's work: the same Sales Nav delivery, sent
through the platform (gateway → ingestion → enrichment waterfall → ranking, the agents running
in-process) and through the bare ``python -m bench.baseline pipeline`` consumer into a second
database, against the same provider sandbox, leaves the same rows in the same tables (ids,
timestamps, latencies and correlation ids aside; experts, leads and attempts matched by the
person's LinkedIn identity and the provider).

The delivery mixes the sandbox personas so that every branch of the waterfall writes rows: a
confident parallel phase (``standard``), a fallback through every provider (``lowconf``), a
failed run (``nomatch``), the region rule filtering personal emails (``personal`` in GB), and
one person sent twice (one lead).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.migrate import upgrade
from sourcing.common.models import Base
from sourcing.common.topics import lane as lane_named
from sourcing.enrichment.app import build_app as build_enrichment_app
from sourcing.ingestion.app import build_app as build_ingestion_app
from sourcing.sandbox.server import serve_sandbox
from tests.e2e.stack import sandboxed_settings
from tests.fixtures.api import serve_gateway
from tests.fixtures.database import _run_in_thread
from tests.fixtures.kafka import running_app, settings_env, wait_until
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SECRET = "equal-work-sales-nav-secret"
PROJECT_ID = uuid.UUID("5f0c8a52-3c1e-4c51-9d57-0b6f9a1de001")
PERSONAS = (
    ("standard", "US"),
    ("standard", "US"),
    ("standard", "GB"),
    ("standard", "DE"),
    ("lowconf", "US"),
    ("nomatch", "US"),
    ("personal", "GB"),
    ("personal", "US"),
)
# What the baseline process reads of the platform's settings (the waterfall's and the sandbox's).
SHARED_SETTINGS = (
    "PROVIDER_TIMEOUT_SECONDS",
    "ENRICHMENT_POLL_INTERVAL_SECONDS",
    "ENRICHMENT_TIME_BUDGET_SECONDS",
    "ENRICHMENT_CONFIDENCE_THRESHOLD",
    "ENRICHMENT_PARALLEL_PROVIDERS",
    "ENRICHMENT_BATCH_SIZE",
    "AGENT_ATTEMPT_TIMEOUT_SECONDS",
)
# Lanes the settled leads' follow-ups leave the path on (the others are the platform's hops).
LEAVING_LANES = {"call-allocation", "google-sheets-sync", "outreach"}
# What differs between two runs of the same lookup: its latency, the sandbox's request ids, and
# the profile URL of RocketReach's status poll (the sandbox keys it by name: namesakes looked up
# at the same time see each other's).
GENERATED_ANSWER_FIELDS = ("latency_ms", "requestId", "linkedin_url")
# Plumbing of the reliability contract: one dedup row per consumer and message, so their
# number follows the number of hops (the baseline has one consumer).
PER_HOP_TABLES = {"processed_events"}


def _delivery() -> dict[str, Any]:
    leads = []
    for index, (persona, country) in enumerate(PERSONAS):
        leads.append(
            {
                "name": f"Equal {persona.title()}{'x' * index}",
                "company": f"Acme {index}",
                "title": "VP Payments",
                "linkedinUrl": f"https://www.linkedin.com/in/equal-{persona}-{index}x",
                "companyDomain": f"acme{index}.com",
                "countryIso": country,
                "email": None,
                "phone": None,
            }
        )
    leads.append(dict(leads[0]))  # the same person twice in one delivery: one lead
    return {
        "projectId": str(PROJECT_ID),
        "searchUrl": "https://linkedin.com/sales/search/equal-work",
        "leads": leads,
    }


PROJECT = """
INSERT INTO projects (id, name, target_threshold, geography_iso_codes, status, priority)
VALUES ($1, 'Equal work', 50, ARRAY['US', 'GB', 'DE'], 'ACTIVE', 2)
"""


async def _connect(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))


async def _settled(url: str, leads: int) -> bool:
    """Every lead settled, ranked and its follow-ups published."""
    connection = await _connect(url)
    try:
        done = await connection.fetchval(
            "SELECT count(*) FROM leads WHERE status <> 'ENRICHING' AND ranking_score IS NOT NULL"
        )
        ranked = await connection.fetchval("SELECT count(*) FROM ranking_snapshots")
        leaving = await connection.fetchval(
            "SELECT count(*) FROM outbox WHERE topic = 'call-allocation'"
            " AND published_at IS NOT NULL"
        )
        return bool(done == ranked == leaving == leads)
    finally:
        await connection.close()


def _without(payload: Any, *names: str) -> Any:
    if isinstance(payload, dict):
        return {k: _without(v, *names) for k, v in payload.items() if k not in names}
    if isinstance(payload, list):
        return [_without(v, *names) for v in payload]
    return payload


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def _contents(url: str) -> dict[str, Counter[Any]]:
    """The meaningful columns of every table the path writes, per table (a multiset)."""
    connection = await _connect(url)
    try:
        person = {
            row["id"]: row["linkedin_url_normalized"]
            for row in await connection.fetch("SELECT id, linkedin_url_normalized FROM experts")
        }
        lead_person = {
            row["id"]: person[row["expert_id"]]
            for row in await connection.fetch("SELECT id, expert_id FROM leads")
        }
        attempt_provider = {
            row["id"]: row["provider"]
            for row in await connection.fetch("SELECT id, provider FROM enrichment_attempts")
        }
        tables: dict[str, Counter[Any]] = {}

        async def table(name: str, query: str, shape: Any) -> None:
            tables[name] = Counter(shape(row) for row in await connection.fetch(query))

        await table(
            "sales_nav_searches",
            "SELECT * FROM sales_nav_searches",
            lambda r: (r["project_id"], r["source_url"], r["normalized_url"], r["leads_received"]),
        )
        await table(
            "experts",
            "SELECT * FROM experts",
            lambda r: (
                r["linkedin_url_normalized"], r["full_name"], r["first_name"], r["last_name"],
                r["title"], r["company_name"], r["company_domain"], r["country_iso"],
                r["timezone"], r["primary_email"], r["seniority"], r["suppressed_at"],
            ),
        )  # fmt: skip
        await table(
            "leads",
            "SELECT * FROM leads",
            lambda r: (
                person[r["expert_id"]], r["project_id"], r["status"], r["status_reason"],
                r["raw_name"], r["raw_company"], r["raw_title"], r["linkedin_url"], r["email"],
                r["phone"], r["company_domain"], r["country_iso"],
                json.dumps(_json(r["payload"]), sort_keys=True),
                r["enriched_at"] is not None, r["ranking_score"],
            ),
        )  # fmt: skip
        await table(
            "expert_contacts",
            "SELECT * FROM expert_contacts",
            lambda r: (
                person[r["expert_id"]], r["type"], r["channel"], r["value"],
                r["value_normalized"], r["is_primary"], r["is_professional"], r["is_dialable"],
                r["source"], r["provider"], r["confidence"],
                attempt_provider.get(r["enrichment_attempt_id"]),
            ),
        )  # fmt: skip
        await table(
            "enrichment_attempts",
            "SELECT * FROM enrichment_attempts",
            lambda r: (
                person[r["expert_id"]], lead_person[r["lead_id"]], r["provider"], r["phase"],
                r["status"], r["confidence"], r["http_status"], r["error"],
                json.dumps(
                    _without(_json(r["response_payload"]), *GENERATED_ANSWER_FIELDS),
                    sort_keys=True,
                ),
                r["callback_request_id"], r["callback_jobs"], r["answered_at"], r["credits"],
            ),
        )  # fmt: skip
        await table(
            "system_events",
            "SELECT * FROM system_events",
            lambda r: (
                r["type"], r["entity_type"], lead_person.get(r["entity_id"]), r["actor"],
                json.dumps(_json(r["data"]), sort_keys=True),
            ),
        )  # fmt: skip
        await table(
            "ranking_snapshots",
            "SELECT * FROM ranking_snapshots",
            lambda r: (
                r["project_id"], person[r["expert_id"]], lead_person[r["lead_id"]], r["score"],
                json.dumps(_json(r["components"]), sort_keys=True), r["formula_version"],
            ),
        )  # fmt: skip

        def named(value: Any) -> Any:
            """An expert or lead id as its person's identity (other values unchanged)."""
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                key = uuid.UUID(value)
                return person.get(key) or lead_person.get(key) or value
            return value

        outbox = []
        for row in await connection.fetch("SELECT * FROM outbox"):
            if row["topic"] in LEAVING_LANES:
                envelope = _json(row["envelope"])
                payload = {name: named(value) for name, value in envelope["payload"].items()}
                outbox.append(
                    (
                        row["topic"],
                        envelope["type"],
                        named(row["key"]),
                        json.dumps(payload, sort_keys=True),
                        row["published_at"] is not None,
                    )
                )
        tables["outbox (lanes leaving the path)"] = Counter(outbox)
        written = set()
        for name in Base.metadata.tables:
            if await connection.fetchval(f'SELECT EXISTS (SELECT FROM "{name}")'):  # noqa: S608
                written.add(name)
        tables["tables written"] = Counter(written - PER_HOP_TABLES)
        return tables
    finally:
        await connection.close()


@pytest.fixture
async def baseline_database(empty_database_url: str) -> str:
    _run_in_thread(upgrade, empty_database_url)
    return empty_database_url


@contextlib.asynccontextmanager
async def _baseline(env: dict[str, str]) -> AsyncIterator[None]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.baseline", "pipeline",
        env=env, cwd=REPO, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        yield
    finally:
        if process.returncode is None:
            process.terminate()
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode in (0, -15), stderr.decode()[-3000:]


async def test_the_baseline_writes_what_the_platform_writes(
    infra: Any,
    kafka_settings: Settings,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    create_lane_topics: Any,
    baseline_database: str,
    tmp_path: Path,
) -> None:
    delivery = _delivery()
    people = len(PERSONAS)
    async with serve_sandbox() as sandbox_url:
        settings = sandboxed_settings(
            kafka_settings, infra, sandbox_url, SALES_NAV_WEBHOOK_SECRET=SECRET
        )
        # The platform: gateway, ingestion and enrichment agents (ranking included).
        platform_url = settings.DATABASE_URL
        connection = await _connect(platform_url)
        await connection.execute(PROJECT, PROJECT_ID)
        await connection.close()
        ingestion = build_ingestion_app(
            settings, sessionmaker=kafka_sessionmaker, web_enabled=False,
            datadir=tmp_path / "faust-ingestion",
        )  # fmt: skip
        enrichment = build_enrichment_app(
            settings, sessionmaker=kafka_sessionmaker, web_enabled=False,
            datadir=tmp_path / "faust-enrichment",
        )  # fmt: skip
        async with running_app(ingestion), running_app(enrichment), serve_gateway(settings) as api:
            response = await api.post(
                "/webhooks/sales-nav", headers={"x-sales-nav-secret": SECRET}, json=delivery
            )
            assert response.status_code == 202, response.text
            await wait_until(
                lambda: _settled(platform_url, people), timeout=90, message="platform settled"
            )

        # The baseline: the same delivery on its lane, into its own database.
        connection = await _connect(baseline_database)
        await connection.execute(PROJECT, PROJECT_ID)
        await connection.close()
        prefix = await create_lane_topics(
            f"b{uuid.uuid4().hex[:10]}-",
            lanes=[lane_named(name) for name in ("sales-nav-ingestion", *LEAVING_LANES)],
        )
        env = {
            **os.environ,
            **settings_env(settings),
            **{name: str(getattr(settings, name)) for name in SHARED_SETTINGS},
            "APP_ENV": "development",
            "DATABASE_URL": baseline_database,
            "KAFKA_TOPIC_PREFIX": prefix,
            "SANDBOX_PROVIDERS": "1",
            "SANDBOX_URL": sandbox_url,
            "PYTHONPATH": str(REPO),
        }
        env.pop("ZELIQ_CALLBACK_URL", None)
        async with _baseline(env):
            producer = AIOKafkaProducer(bootstrap_servers=settings.KAFKA_BROKER_URL)
            await producer.start()
            try:
                await producer.send_and_wait(
                    f"{prefix}sales-nav-ingestion",
                    json.dumps(delivery).encode(),
                    key=str(PROJECT_ID).encode(),
                )
            finally:
                await producer.stop()
            await wait_until(
                lambda: _settled(baseline_database, people), timeout=90,
                message="baseline settled",
            )  # fmt: skip

    platform = await _contents(platform_url)
    baseline = await _contents(baseline_database)
    assert sum(platform["enrichment_attempts"].values()) > people  # the fallback ran
    assert Counter(row[2] for row in platform["leads"].elements()) == {
        "ENRICHED": 6, "ENRICHMENT_FAILED": 2,
    }  # fmt: skip
    for name in platform:
        only_baseline = "\n".join(map(repr, sorted(baseline[name] - platform[name])))
        only_platform = "\n".join(map(repr, sorted(platform[name] - baseline[name])))
        assert baseline[name] == platform[name], (
            f"{name}\nbaseline only:\n{only_baseline}\nplatform only:\n{only_platform}"
        )
