"""Settings of the scheduler: maintenance cycle, dead-letter archival, documentation.

Its own fields on the kernel's :class:`~sourcing.common.config.Settings` (which holds
``DOCS_OUTPUT_DIR``, read by the gateway too); document every field in .env.example. The
sweeps' own numbers belong to the contexts that run them.
"""

from __future__ import annotations

from pydantic import Field

from sourcing.common.config import Settings


class SchedulerSettings(Settings):
    """What the scheduler process reads (and validates at start-up)."""

    # The maintenance cycle runs once per interval across all scheduler replicas (manual §5.2).
    SCHEDULER_INTERVAL_SECONDS: float = Field(default=60.0, gt=0)
    # Dead letters older than this are archived (archived_at set; hidden from the live list).
    DEAD_LETTER_RETENTION_DAYS: int = Field(default=30, ge=1)
    # The .env.example whose comments describe each variable in the environment checklist.
    DOCS_ENV_EXAMPLE_PATH: str = ".env.example"
