"""The ingestion service's Faust app: three thin agents over :mod:`sourcing.ingestion.handlers`.

* ``sales-nav-ingestion`` (one message at a time): a webhook delivery → one ``lead-ingestion``
  message per lead.
* ``lead-ingestion`` (batch lane: up to ``AGENT_BATCH_SIZE`` leads per transaction, one
  statement per step for the whole batch, retried one by one when a batch fails) →
  ``enrichment``.
* ``job-title-discovery``: run planning and per-company Apollo + OpenAI discovery.

:func:`build_app` builds it from settings so tests and benchmarks can run it in-process.
"""

from __future__ import annotations

from typing import Any, Final, cast

from sourcing.common.http import ExternalHttp
from sourcing.common.kafka.app import SourcingApp, create_app, reliable_agent
from sourcing.common.messages.sourcing import (
    JobTitleDiscoveryCompany,
    JobTitleDiscoveryRequested,
)
from sourcing.ingestion.clients import ApolloClient, JobTitleClient
from sourcing.ingestion.handlers import (
    JobTitleDiscovery,
    TitleScorer,
    handle_lead_batch,
    handle_lead_received,
    handle_sales_nav_leads,
)
from sourcing.ingestion.settings import IngestionSettings

SERVICE_NAME: Final = "ingestion"
# Consumer names key the processed_events dedup rows: never rename them.
SALES_NAV_CONSUMER: Final = "sales-nav-ingestion"
LEAD_CONSUMER: Final = "lead-ingestion"
JOB_TITLE_CONSUMER: Final = "job-title-discovery"


class _LazyTitleClient:
    """The OpenAI client is built on first use, so the service (and its Sales Nav lanes)
    starts without OPENAI_API_KEY; discovery then fails with a clear, dead-lettered reason."""

    def __init__(self, settings: IngestionSettings) -> None:
        self._settings = settings
        self._client: JobTitleClient | None = None

    def __call__(self) -> TitleScorer:
        if self._client is None:
            self._client = JobTitleClient.from_settings(self._settings)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def build_app(settings: IngestionSettings, **create_app_kwargs: Any) -> SourcingApp:
    """The ingestion app with its three agents (``create_app_kwargs`` go to ``create_app``)."""
    app = create_app(SERVICE_NAME, settings, **create_app_kwargs)
    http = ExternalHttp(timeout_seconds=settings.PROVIDER_TIMEOUT_SECONDS)
    titles = _LazyTitleClient(settings)
    discovery = JobTitleDiscovery(
        apollo=ApolloClient(settings=settings, http=http),
        scorer=titles,
        sessionmaker=app.runtime.sessionmaker,
        apollo_max_pages=settings.JOB_TITLE_APOLLO_MAX_PAGES,
    )
    reliable_agent(
        app, "sales-nav-ingestion", handle_sales_nav_leads, consumer_name=SALES_NAV_CONSUMER
    )
    reliable_agent(
        app,
        "lead-ingestion",
        handle_lead_received,
        consumer_name=LEAD_CONSUMER,
        batch=True,
        batch_handler=handle_lead_batch,
    )
    reliable_agent(
        app,
        "job-title-discovery",
        {
            JobTitleDiscoveryRequested.message_type: discovery.handle_requested,
            JobTitleDiscoveryCompany.message_type: discovery.handle_company,
        },
        consumer_name=JOB_TITLE_CONSUMER,
    )

    async def close_clients(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        await titles.aclose()
        await http.aclose()

    # mode's receiver type is a union mypy cannot match an async function against.
    app.on_before_shutdown.connect(cast(Any, close_clients))

    return app
