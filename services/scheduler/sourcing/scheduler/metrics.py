"""Prometheus metrics of the scheduler service."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

CYCLE_DURATION = Histogram(
    "sourcing_scheduler_cycle_duration_seconds",
    "Duration of one maintenance cycle (all six steps).",
    buckets=_BUCKETS,
)
STEP_DURATION = Histogram(
    "sourcing_scheduler_step_duration_seconds",
    "Duration of one maintenance step.",
    ["step"],
    buckets=_BUCKETS,
)
STEP_AFFECTED = Counter(
    "sourcing_scheduler_step_affected_total",
    "Rows archived, messages enqueued or tasks created by a maintenance step.",
    ["step"],
)
STEP_FAILURES = Counter(
    "sourcing_scheduler_step_failures_total",
    "Maintenance steps that raised (the cycle goes on with the next step).",
    ["step"],
)
CYCLES = Counter(
    "sourcing_scheduler_cycles_total",
    "Cycle attempts by outcome: ran, failed, busy (another cycle still running), claimed "
    "(this interval already ran elsewhere).",
    ["outcome"],
)
DEAD_LETTERS_STORED = Counter(
    "sourcing_dead_letters_stored_total",
    "Dead letters written to dead_letter_jobs (redeliveries not counted).",
)
DOCUMENTATION_JOBS = Counter(
    "sourcing_documentation_jobs_total",
    "Documentation jobs finished, by status.",
    ["status"],
)
