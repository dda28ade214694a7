"""Settings of the scheduler: maintenance cycle, dead-letter archival, retention, documentation.

Its own fields on the kernel's :class:`~sourcing.common.config.Settings` (which holds
``DOCS_OUTPUT_DIR``, read by the gateway too); document every field in .env.example. The
sweeps' own numbers belong to the contexts that run them.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from sourcing.common.config import Settings
from sourcing.common.topics import LANES

DAY_SECONDS = 86_400


class SchedulerSettings(Settings):
    """What the scheduler process reads (and validates at start-up)."""

    # The maintenance cycle runs once per interval across all scheduler replicas (manual §5.2).
    SCHEDULER_INTERVAL_SECONDS: float = Field(default=60.0, gt=0)
    # Dead letters older than this are archived (archived_at set; hidden from the live list).
    DEAD_LETTER_RETENTION_DAYS: int = Field(default=30, ge=1)
    # Processed-event dedup rows (agents' processed_events, webhooks' processed_webhook_events)
    # are kept this many days: at least as long as a message can come back (longest_redelivery).
    DEDUP_RETENTION_DAYS: int = Field(default=35, ge=1)
    # Caller performance snapshots older than this are pruned (each caller's latest is kept).
    PERFORMANCE_SNAPSHOT_RETENTION_DAYS: int = Field(default=30, ge=1)
    # Audit events (system_events) older than this are pruned.
    SYSTEM_EVENT_RETENTION_DAYS: int = Field(default=365, ge=1)
    # Raw Yay webhook payloads (call_logs_raw) older than this are cleared; the row, its event id
    # and its call log stay.
    RAW_WEBHOOK_PAYLOAD_RETENTION_DAYS: int = Field(default=90, ge=1)
    # Idempotency keys (the first answer a POST retry replays) older than this are pruned.
    IDEMPOTENCY_KEY_RETENTION_HOURS: int = Field(default=24, ge=1)
    # Most rows of each table one cycle prunes (a backlog drains over the next cycles).
    RETENTION_BATCH_SIZE: int = Field(default=5_000, ge=1, le=100_000)
    # The .env.example whose comments describe each variable in the environment checklist.
    DOCS_ENV_EXAMPLE_PATH: str = ".env.example"

    def longest_redelivery_seconds(self) -> float:
        """How long after its first delivery a message may still arrive again: read again from
        its topic (the longest lane retention), sent again by the outbox relay (while its row
        is kept), or retried by an agent (every attempt at its time limit plus the backoff)."""
        attempt = self.AGENT_ATTEMPT_TIMEOUT_SECONDS + self.AGENT_RETRY_MAX_SECONDS
        return max(
            max(lane.retention_days for lane in LANES) * DAY_SECONDS,
            self.OUTBOX_RETENTION_SECONDS,
            self.AGENT_MAX_ATTEMPTS * attempt,
        )

    @model_validator(mode="after")
    def _dedup_outlives_redelivery(self) -> SchedulerSettings:
        longest = self.longest_redelivery_seconds()
        if longest > self.DEDUP_RETENTION_DAYS * DAY_SECONDS:
            raise ValueError(
                f"DEDUP_RETENTION_DAYS must cover the longest redelivery ({longest / DAY_SECONDS:g}"
                " days): a message seen again after its dedup row is gone would run twice"
            )
        return self
