"""Enrichment providers that hang, answer 500 or 429: the waterfall still ends within its time
budget, the hanging call is abandoned, and the healthy providers' answers win.

The enrichment service's app runs in-process on the session stack and takes a real
``enrichment`` message. Third parties are mocked at the HTTP layer only: LeadMagic, Prospeo and
Exa point at :class:`VendorStub` (hangs, 500, 429 with ``Retry-After``), the other vendors at
the provider sandbox, whose ``standard`` persona makes RocketReach and Wiza (the two healthy
providers of the parallel phase) answer with verified work emails.

The waterfall budget (``ENRICHMENT_WATERFALL_BUDGET_SECONDS``) is 6 s and each HTTP request may
wait 8 s (``PROVIDER_TIMEOUT_SECONDS``, the default): only the budget can stop the hanging
call in time. Elapsed time is measured from producing the message to the lead's final state,
so it also covers delivery, the batch window and the database writes: ``MARGIN_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.db import session_scope
from sourcing.common.events import Envelope
from sourcing.common.kafka import EnvelopeProducer
from sourcing.common.messages.enrichment import EnrichmentRequested
from sourcing.common.models import EnrichmentAttempt, ExpertContact, Lead
from sourcing.common.outbound import sandbox_base_url
from sourcing.enrichment.app import ENRICHMENT_LANE, build_app
from sourcing.enrichment.service import EnrichmentDeps
from sourcing.sandbox.personas import VENDORS
from sourcing.sandbox.server import serve_sandbox
from tests.factories import create_expert, create_lead, create_project
from tests.fixtures.kafka import make_kafka_settings, running_app, wait_until
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

WATERFALL_BUDGET_SECONDS = 6.0
MARGIN_SECONDS = 3.0
FAULTY = {"leadmagic": "hang", "prospeo": "error", "exa": "limited"}
HEALTHY_IN_PARALLEL_PHASE = {"rocketreach", "wiza"}
FALLBACK_PHASE = {"forager", "contactout", "datagm", "peopledatalabs"}
FINAL = ("ENRICHED", "ENRICHMENT_FAILED", "DISQUALIFIED")


class VendorStub:
    """A loopback HTTP server for misbehaving vendors; the first path segment picks how it
    misbehaves: ``/hang/...`` never answers (and counts the calls the client gave up on),
    ``/error/...`` answers 500, ``/limited/...`` answers 429 with ``Retry-After: 1``."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.abandoned = 0
        self.url = ""
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[VendorStub]:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        try:
            yield self
        finally:
            self._server.close()
            for task in self._handlers:
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            mode = head[0].split(" ")[1].lstrip("/").split("/", 1)[0]
            self.requests[mode] += 1
            if mode == "hang":
                await reader.read()  # until the client closes the connection
                self.abandoned += 1
                return
            status, extra = (429, "Retry-After: 1\r\n") if mode == "limited" else (500, "")
            body = b'{"error": "stub"}'
            writer.write(
                f"HTTP/1.1 {status} Stub\r\nContent-Type: application/json\r\n{extra}"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()


def provider_settings(stub_url: str, sandbox_url: str) -> dict[str, Any]:
    """Real adapters (no sandbox mode), each with a credential and a base URL of ours."""
    values: dict[str, Any] = {
        "SANDBOX_PROVIDERS": False,
        "ZELIQ_CALLBACK_URL": None,  # Zeliq answers by callback only: unavailable
        "FORAGER_ACCOUNT_ID": "fault-suite",
        "ENRICHMENT_WATERFALL_BUDGET_SECONDS": WATERFALL_BUDGET_SECONDS,
        "ENRICHMENT_POLL_INTERVAL_SECONDS": 0.0,
    }
    for vendor in VENDORS:
        values[f"{vendor.upper()}_API_KEY"] = f"key-{vendor}"
        values[f"{vendor.upper()}_BASE_URL"] = (
            f"{stub_url}/{FAULTY[vendor]}"
            if vendor in FAULTY
            else sandbox_base_url(sandbox_url, vendor)
        )
    return values


async def seed_lead(sessionmaker: async_sessionmaker[AsyncSession]) -> Lead:
    """A US lead of the sandbox's ``standard`` persona (the marker is in the name)."""
    async with session_scope(sessionmaker) as session:
        project = await create_project(session)
        slug = f"ada-standard-9{uuid.uuid4().hex[:6]}"  # a digit segment: ignored by the sandbox
        expert = await create_expert(
            session,
            full_name="Ada Standard",
            first_name="Ada",
            last_name="Standard",
            linkedin_url_normalized=f"https://www.linkedin.com/in/{slug}",
            company_name="Acme",
            company_domain="acme.com",
            country_iso="US",
            title="VP Payments",
        )
        return await create_lead(
            session,
            project=project,
            expert=expert,
            raw_name="Ada Standard",
            raw_company="Acme",
            raw_title="VP Payments",
            linkedin_url=expert.linkedin_url_normalized,
            company_domain="acme.com",
            country_iso="US",
            status="ENRICHING",
        )


async def test_hanging_failing_and_rate_limited_providers_do_not_stop_the_waterfall(
    infra: Any,
    kafka_settings: Settings,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    kafka_producer: EnvelopeProducer,
    tmp_path: Path,
) -> None:
    lead = await seed_lead(kafka_sessionmaker)
    stub = VendorStub()
    async with stub.serving(), serve_sandbox() as sandbox_url:
        settings = make_kafka_settings(
            database_url=kafka_settings.DATABASE_URL,
            bootstrap=kafka_settings.KAFKA_BROKER_URL,
            topic_prefix=kafka_settings.KAFKA_TOPIC_PREFIX,
            broker_kind=infra.broker_kind,
            **provider_settings(stub.url, sandbox_url),
        )
        budget = EnrichmentDeps(settings=settings, providers={}).waterfall_budget()
        assert budget == WATERFALL_BUDGET_SECONDS < settings.PROVIDER_TIMEOUT_SECONDS
        app = build_app(
            settings,
            sessionmaker=kafka_sessionmaker,
            relay_outbox=False,
            web_enabled=False,
            datadir=tmp_path / "faust-enrichment",
        )
        request = EnrichmentRequested(
            lead_id=lead.id, expert_id=lead.expert_id, project_id=lead.project_id
        )
        async with running_app(app):
            started = time.monotonic()
            await kafka_producer.send_envelope(
                ENRICHMENT_LANE,
                Envelope.new(EnrichmentRequested.message_type, request),
                key=str(lead.expert_id),
            )

            async def final() -> bool:
                async with session_scope(kafka_sessionmaker) as session:
                    status = await session.scalar(select(Lead.status).where(Lead.id == lead.id))
                return status in FINAL

            await wait_until(final, timeout=60, interval=0.05, message="lead in a final state")
            elapsed = time.monotonic() - started

            async def hanging_calls_abandoned() -> bool:
                return stub.requests["hang"] >= 1 and stub.abandoned == stub.requests["hang"]

            # The client side closed the hanging connection (seen by the stub shortly after).
            await wait_until(hanging_calls_abandoned, timeout=10, message="hanging call dropped")

    assert elapsed <= budget + MARGIN_SECONDS, f"{elapsed:.1f} s for a {budget:g} s budget"
    async with session_scope(kafka_sessionmaker) as session:
        final_lead = await session.get(Lead, lead.id)
        attempts = (
            await session.scalars(
                select(EnrichmentAttempt).where(EnrichmentAttempt.lead_id == lead.id)
            )
        ).all()
        contacts = (
            await session.scalars(
                select(ExpertContact).where(
                    ExpertContact.expert_id == lead.expert_id, ExpertContact.source == "ENRICHMENT"
                )
            )
        ).all()
    by_provider = {a.provider: a for a in attempts}
    assert {name: by_provider[name].status for name in FAULTY} == {
        "leadmagic": "TIMEOUT",
        "prospeo": "ERROR",
        "exa": "RATE_LIMITED",
    }
    assert (by_provider["prospeo"].http_status, by_provider["exa"].http_status) == (500, 429)
    hanging = by_provider["leadmagic"]
    assert hanging.latency_ms is not None and hanging.latency_ms <= (budget + 0.5) * 1000
    assert stub.requests["error"] >= 2 and stub.requests["limited"] >= 2  # retried, then gave up
    # The healthy providers answered in the same parallel phase and one of them won: the
    # threshold was met, so no fallback provider was asked.
    assert {name: by_provider[name].status for name in HEALTHY_IN_PARALLEL_PHASE} == {
        "rocketreach": "SUCCESS",
        "wiza": "SUCCESS",
    }
    assert set(by_provider) == set(FAULTY) | HEALTHY_IN_PARALLEL_PHASE
    assert len(attempts) == len(by_provider) and not FALLBACK_PHASE & set(by_provider)
    assert final_lead is not None and final_lead.status == "ENRICHED"
    assert final_lead.status_reason is not None
    winner = final_lead.status_reason.split(" ", 1)[0]
    assert winner in HEALTHY_IN_PARALLEL_PHASE, final_lead.status_reason
    assert "found contacts at confidence" in final_lead.status_reason
    assert contacts and {contact.provider for contact in contacts} == {winner}
