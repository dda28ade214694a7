"""What every e2e journey starts from: the suite's database and broker, the provider sandbox
on, and a waterfall fast enough for a test (each journey adds its own secrets on top)."""

from __future__ import annotations

from typing import Any

from tests.fixtures.kafka import make_kafka_settings
from tests.fixtures.settings import Settings


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
