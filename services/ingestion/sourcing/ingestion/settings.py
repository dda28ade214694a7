"""Settings of ingestion: job-title discovery (lead intake reads only the kernel's fields).

Its own fields on the kernel's :class:`~sourcing.common.config.Settings`; document every field
in .env.example.
"""

from __future__ import annotations

from pydantic import Field

from sourcing.common.config import Settings


class IngestionSettings(Settings):
    """What the ingestion process and its endpoints read (and validate at start-up)."""

    # Job-title discovery (§4.6).
    # Apollo result pages read per company and geography (100 people a page; search is free).
    JOB_TITLE_APOLLO_MAX_PAGES: int = Field(default=1, ge=1, le=10)
    # Most companies one discovery request may name.
    JOB_TITLE_MAX_COMPANIES: int = Field(default=100, ge=1, le=1000)
