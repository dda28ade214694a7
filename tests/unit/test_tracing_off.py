"""Tracing is off unless OTEL_EXPORTER_OTLP_ENDPOINT is set, and off it does nothing: no SDK
loaded, no provider, no span, no header, no database listener, no FastAPI request span."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine

from sourcing.api.app import telemetry
from sourcing.common import tracing
from sourcing.common.events import Envelope, PerformanceRecalculate
from sourcing.common.kafka.producer import envelope_headers
from tests.fixtures.settings import load_settings

WHAT_PROCESSES_LOAD = """
import sys
from sourcing.api.__main__ import main
from sourcing.common.kafka.app import run_worker
from sourcing.common.tracing import setup_tracing
from sourcing.enrichment.app import build_app
from tests.fixtures.settings import load_settings

assert setup_tracing(load_settings(OTEL_EXPORTER_OTLP_ENDPOINT=None), "api") is False
sdk = ("opentelemetry.sdk", "opentelemetry.exporter")
print(sorted(name for name in sys.modules if name.startswith(sdk)))
"""


def test_without_an_endpoint_nothing_is_installed_or_loaded() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", WHAT_PROCESSES_LOAD],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    assert loaded.stdout.strip() == "[]"


def test_off_the_hooks_do_nothing() -> None:
    assert tracing.setup_tracing(load_settings(OTEL_EXPORTER_OTLP_ENDPOINT=None), "api") is False
    assert tracing.ENABLED is False
    assert tracing.tracer_provider() is None
    assert tracing.trace_headers() == []
    headers = envelope_headers(Envelope.of(PerformanceRecalculate(caller_id=uuid.uuid4())))
    assert [name for name, _ in headers] == ["message-id", "message-type", "correlation-id"]
    span = tracing.consumer_span(
        "lead-ingestion", headers, consumer="c", message_id="m", message_type="t"
    )
    assert span is tracing.NOTHING
    assert tracing.provider_call_span("exa", "POST", "https://api.exa.ai") is tracing.NOTHING
    assert tracing.batch_span("enrichment", [], consumer="c") is tracing.NOTHING
    assert not event.contains(Engine, "before_cursor_execute", tracing._statement_started)
    assert telemetry()["tracing"] is False


def test_the_endpoint_turns_it_on_and_off_again() -> None:
    settings = load_settings(
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9/", OTEL_SERVICE_NAME="ingestion-eu"
    )
    assert tracing.setup_tracing(settings, "ingestion") is True
    try:
        provider = tracing.tracer_provider()
        assert provider is not None
        assert provider.resource.attributes["service.name"] == "ingestion-eu"
        assert telemetry()["tracing"] is True
        assert event.contains(Engine, "before_cursor_execute", tracing._statement_started)
    finally:
        tracing.shutdown_tracing()
    assert tracing.ENABLED is False
    assert not event.contains(Engine, "before_cursor_execute", tracing._statement_started)
