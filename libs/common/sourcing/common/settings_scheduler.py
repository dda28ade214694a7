"""Settings of the scheduler: maintenance cycle, dead-letter archival, documentation.

A mixin of :class:`sourcing.common.config.Settings`; document every field in .env.example.
The cycle also reads ``SCREENING_FOLLOW_UP_IDLE_MINUTES`` (outreach settings) and
``SIGNUP_CHASE_DELAY_SECONDS`` (allocation settings): one definition per rule.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class SchedulerSettings(BaseSettings):
    """Fields of this area (same environment-variable conventions as Settings)."""

    # The maintenance cycle runs once per interval across all scheduler replicas (manual §5.2).
    SCHEDULER_INTERVAL_SECONDS: float = Field(default=60.0, gt=0)
    # Dead letters older than this are archived (archived_at set; hidden from the live list).
    DEAD_LETTER_RETENTION_DAYS: int = Field(default=30, ge=1)
    # Most screening follow-ups one cycle enqueues (the rest wait for the next cycle).
    SCREENING_FOLLOW_UP_BATCH_SIZE: int = Field(default=500, ge=1, le=10_000)
    # Most signup chase tasks one cycle creates (the rest wait for the next cycle).
    SIGNUP_CHASE_BATCH_SIZE: int = Field(default=500, ge=1, le=10_000)
    # Where the documentation generator writes (manual §4.9), relative to the working directory.
    DOCS_OUTPUT_DIR: str = "docs/generated"
    # The .env.example whose comments describe each variable in the environment checklist.
    DOCS_ENV_EXAMPLE_PATH: str = ".env.example"
