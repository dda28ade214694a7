"""Settings of call allocation: assignment, expiry, outcomes, the sign-up chase.

Its own fields on the shared calling rules' :class:`~sourcing.people.settings.CallingSettings`;
document every field in .env.example.
"""

from __future__ import annotations

from pydantic import Field

from sourcing.people.settings import CallingSettings


class AllocationSettings(CallingSettings):
    """What the allocation process and its endpoints read (and validate at start-up)."""

    # An ASSIGNED task not dialled within this many seconds expires and returns to the pool.
    CALL_TASK_DIAL_DEADLINE_SECONDS: int = Field(default=300, gt=0)
    # After a RETRYABLE_REJECTION the expert is offered again no sooner than this (3 days).
    RETRY_COOL_OFF_SECONDS: int = Field(default=259_200, ge=0)
    # A signup-link outcome schedules a chase call this long after (manual §4.5: 24 h).
    SIGNUP_CHASE_DELAY_SECONDS: int = Field(default=86_400, ge=0)
    # Most signup chase tasks one sweep creates (the rest wait for the next tick).
    SIGNUP_CHASE_BATCH_SIZE: int = Field(default=500, ge=1, le=10_000)
    # Most stale assignments one expiry sweep returns to the pool.
    ALLOCATION_EXPIRY_BATCH_SIZE: int = Field(default=500, ge=1, le=10_000)
    # The gateway sweeps every caller's stale assignments back to the pool at most this often
    # (0: on every task request); a caller's own stale task is always expired before they get
    # a new one, and the call-allocation agent sweeps on every message.
    ALLOCATION_EXPIRY_SWEEP_SECONDS: float = Field(default=5.0, ge=0)
    # Admission control of GET /call-tasks/current, per gateway process: at most this many
    # allocations at once (each holds a database connection for its one statement, a few ms:
    # capped at DATABASE_POOL_SIZE; 8 keep PostgreSQL's cores busy, more only contend)...
    ALLOCATION_MAX_IN_FLIGHT: int = Field(default=8, ge=1)
    # ...and a request waits at most this long for its turn, else 503 service_unavailable with
    # Retry-After: past capacity, callers are told to come back instead of queueing unboundedly.
    # Half the 50 ms p99 target at 250 requests/s, so a request that waited is still in time.
    ALLOCATION_ADMISSION_WAIT_MS: int = Field(default=25, ge=0)
