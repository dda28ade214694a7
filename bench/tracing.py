"""``python -m bench.tracing``: what the tracing hooks cost per message, off and on.

A micro-benchmark (no stack, a few seconds): each hook on the publish/consume path and around a
provider call, timed with tracing off against a baseline without the hook, then with tracing on
(an exporter that drops the spans, so only our side is measured). Not part of ``python -m
bench``: it measures a few hundred nanoseconds, which the load benchmarks cannot resolve.
"""

from __future__ import annotations

import timeit
import uuid
from collections.abc import Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from sourcing.common import tracing
from sourcing.common.config import Settings
from sourcing.common.events import Envelope, PerformanceRecalculate
from sourcing.common.kafka.producer import (
    HEADER_CORRELATION_ID,
    HEADER_MESSAGE_ID,
    HEADER_MESSAGE_TYPE,
    envelope_headers,
)

CALLS = 200_000
CALLS_ON = 2_000  # a recorded span costs tens of microseconds: fewer calls suffice
REPEATS = 7


class _Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _ns_per_call(body: Callable[[], object], calls: int = CALLS) -> float:
    return min(timeit.repeat(body, number=calls, repeat=REPEATS)) / calls * 1e9


def main() -> None:
    envelope = Envelope.of(PerformanceRecalculate(caller_id=uuid.uuid4()))
    headers = envelope_headers(envelope)

    def baseline_headers() -> list[tuple[str, bytes]]:
        return [
            (HEADER_MESSAGE_ID, envelope.id.encode()),
            (HEADER_MESSAGE_TYPE, envelope.type.encode()),
            (HEADER_CORRELATION_ID, envelope.correlation_id.encode()),
        ]

    def consume() -> None:
        with tracing.consumer_span(
            "lead-ingestion",
            headers,
            consumer="lead-ingestion",
            message_id=envelope.id,
            message_type=envelope.type,
        ):
            pass

    def provider_call() -> None:
        with tracing.provider_call_span("leadmagic", "POST", "https://api.leadmagic.io/email"):
            pass

    def publish_from_a_handler() -> None:
        with tracing.consumer_span(
            "lead-ingestion",
            headers,
            consumer="lead-ingestion",
            message_id=envelope.id,
            message_type=envelope.type,
        ):
            envelope_headers(envelope)

    if tracing.ENABLED:
        raise SystemExit("tracing is on in this process: the 'off' figures would be wrong")
    off = {
        "envelope headers (publish)": _ns_per_call(lambda: envelope_headers(envelope)),
        "consumer span (per message)": _ns_per_call(consume),
        "provider call span": _ns_per_call(provider_call),
        "handler span + publish": _ns_per_call(publish_from_a_handler),
    }
    baseline = {
        "envelope headers (publish)": _ns_per_call(baseline_headers),
        "consumer span (per message)": _ns_per_call(lambda: None),
        "provider call span": _ns_per_call(lambda: None),
        "handler span + publish": _ns_per_call(baseline_headers),
    }
    tracing.setup_tracing(Settings.model_construct(), "bench", exporter=_Discard())
    try:
        on = {
            "envelope headers (publish)": _ns_per_call(lambda: envelope_headers(envelope)),
            "consumer span (per message)": _ns_per_call(consume, CALLS_ON),
            "provider call span": _ns_per_call(provider_call, CALLS_ON),
            "handler span + publish": _ns_per_call(publish_from_a_handler, CALLS_ON),
        }
    finally:
        tracing.shutdown_tracing()
    rows = [(name, baseline[name], off[name], on[name]) for name in off]
    print(f"{'hook':<30} {'baseline ns':>12} {'off ns':>8} {'off - base':>11} {'on ns':>8}")
    for name, base, when_off, when_on in rows:
        print(f"{name:<30} {base:>12.0f} {when_off:>8.0f} {when_off - base:>11.0f} {when_on:>8.0f}")


if __name__ == "__main__":
    main()
