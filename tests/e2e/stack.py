"""What every e2e journey starts from: the suite's database and broker, the provider sandbox
on, a waterfall fast enough for a test (each journey adds its own secrets on top), the agent
services started the same way, and an admin's headers for the gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.allocation.app import build_app as build_allocation_app
from sourcing.calls.app import build_app as build_calls_app
from sourcing.common.auth import Principal, Role, mint_token
from sourcing.common.kafka.app import SourcingApp
from sourcing.enrichment.app import build_app as build_enrichment_app
from sourcing.ingestion.app import build_app as build_ingestion_app
from sourcing.outreach.app import build_app as build_outreach_app
from tests.fixtures.kafka import make_kafka_settings, running_app
from tests.fixtures.settings import Settings

AGENT_APPS: Final[dict[str, Callable[..., SourcingApp]]] = {
    "ingestion": build_ingestion_app,
    "enrichment": build_enrichment_app,
    "allocation": build_allocation_app,
    "calls": build_calls_app,
    "outreach": build_outreach_app,
}


def sandboxed_settings(
    kafka_settings: Settings, infra: Any, sandbox_url: str | None, **overrides: Any
) -> Settings:
    """The journey's settings; ``sandbox_url`` None keeps the suite's default sandbox URL."""
    values: dict[str, Any] = {
        "SANDBOX_PROVIDERS": True,
        "ZELIQ_CALLBACK_URL": None,
        "PROVIDER_TIMEOUT_SECONDS": 2.0,
        "ENRICHMENT_POLL_INTERVAL_SECONDS": 0.0,
        "ENRICHMENT_TIME_BUDGET_SECONDS": 5.0,
        # The journeys assert which providers each waterfall asked: a loaded machine's timeouts
        # must not open a circuit (the breaker has its own tests, test_costs.py).
        "ENRICHMENT_BREAKER_FAILURES": 1000,
    }
    if sandbox_url is not None:
        values["SANDBOX_URL"] = sandbox_url
    return make_kafka_settings(
        database_url=kafka_settings.DATABASE_URL,
        bootstrap=kafka_settings.KAFKA_BROKER_URL,
        topic_prefix=kafka_settings.KAFKA_TOPIC_PREFIX,
        broker_kind=infra.broker_kind,
        **{**values, **overrides},
    )


@dataclass(frozen=True)
class Agents:
    """The agent services' Faust apps as a journey runs them: on the test's committing
    sessions, each relaying the outbox (the gateway's rows too), no web server, one data
    directory per service. The ``agents`` fixture (tests/e2e/conftest.py) provides it."""

    sessions: async_sessionmaker[AsyncSession]
    datadir: Path

    def build(self, service: str, settings: Settings, **options: Any) -> SourcingApp:
        """``service``'s app; ``options`` go to its ``build_app`` (a clock, test deps, ...)."""
        return AGENT_APPS[service](
            settings,
            sessionmaker=self.sessions,
            relay_outbox=True,
            web_enabled=False,
            datadir=self.datadir / f"faust-{service}",
            **options,
        )

    @asynccontextmanager
    async def running(self, settings: Settings, *services: str) -> AsyncIterator[None]:
        """``async with agents.running(settings, "ingestion", ...):`` those services consume
        for the block."""
        async with running_apps(*(self.build(service, settings) for service in services)):
            yield


@asynccontextmanager
async def running_apps(*apps: SourcingApp) -> AsyncIterator[None]:
    """Every app consuming for the block: started in order, stopped in reverse."""
    async with AsyncExitStack() as stack:
        for app in apps:
            await stack.enter_async_context(running_app(app))
        yield


def admin_headers(settings: Settings) -> dict[str, str]:
    """The operator lead's headers for the gateway."""
    token = mint_token(settings, Principal(user_id="ops-lead", role=Role.ADMIN))
    return {"Authorization": f"Bearer {token}"}
