"""Prometheus metrics of the Kafka reliability layer (default registry, served per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_CONSUMED = Counter(
    "sourcing_messages_consumed_total",
    "Messages taken from a topic by a reliable agent.",
    ["topic"],
)
MESSAGES_PROCESSED = Counter(
    "sourcing_messages_processed_total",
    "Messages whose handler committed (including duplicates skipped by idempotency).",
    ["topic"],
)
MESSAGES_DUPLICATE = Counter(
    "sourcing_messages_duplicate_total",
    "Messages skipped because their event id was already processed by this consumer.",
    ["topic"],
)
MESSAGES_FAILED = Counter(
    "sourcing_messages_failed_total",
    "Failed handling attempts, by whether the error was transient (retried) or not.",
    ["topic", "kind"],
)
MESSAGES_RETRIED = Counter(
    "sourcing_messages_retried_total",
    "Handling attempts repeated after a transient error.",
    ["topic"],
)
MESSAGES_DEAD_LETTERED = Counter(
    "sourcing_messages_dead_lettered_total",
    "Messages sent to the dead-letter lane, by reason (decode, validation, handler).",
    ["topic", "reason"],
)
BATCH_FALLBACKS = Counter(
    "sourcing_batch_fallbacks_total",
    "Batches whose single transaction failed and were retried message by message.",
    ["topic"],
)
HANDLER_DURATION = Histogram(
    "sourcing_handler_duration_seconds",
    "Time to handle one message or one batch in its transaction (successful attempts).",
    ["topic", "mode"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
BATCH_SIZE = Histogram(
    "sourcing_batch_size_messages",
    "Messages per batch taken by batch agents.",
    ["topic"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
WAITING_FOR_DATABASE = Gauge(
    "sourcing_consumer_waiting_for_database",
    "1 while a consumer holds its in-flight messages because the database does not answer "
    "(no attempt is used up meanwhile), else 0.",
    ["consumer"],
)
LAST_PROCESSED = Gauge(
    "sourcing_agent_last_processed_timestamp_seconds",
    "Unix time of the last message a consumer finished (processed or dead-lettered).",
    ["consumer"],
)
MESSAGES_PRODUCED = Counter(
    "sourcing_messages_produced_total",
    "Messages confirmed by the broker (acks=all).",
    ["topic"],
)
PRODUCE_ERRORS = Counter(
    "sourcing_produce_errors_total",
    "Sends that failed or timed out before the broker confirmed them.",
    ["topic"],
)
OUTBOX_PUBLISHED = Counter(
    "sourcing_outbox_published_total",
    "Outbox rows published by the relay.",
)
OUTBOX_RELAY_ERRORS = Counter(
    "sourcing_outbox_relay_errors_total",
    "Relay rounds that failed (rows stay unpublished for the next round).",
)
OUTBOX_LAG = Gauge(
    "sourcing_outbox_relay_lag_seconds",
    "Age of the oldest unpublished outbox row seen by the relay (0 when none).",
)
OUTBOX_PENDING = Gauge(
    "sourcing_outbox_pending_messages",
    "Unpublished outbox rows picked by the last relay round.",
)
