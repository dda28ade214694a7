"""Settings of the sourcing pipeline: ingestion, enrichment waterfall, ranking, job-title discovery.

A mixin of :class:`sourcing.common.config.Settings`; document every field in .env.example.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class SourcingSettings(BaseSettings):
    """Fields of this area (same environment-variable conventions as Settings)."""

    # --- Job-title discovery (ingestion service, §4.6) ---
    # Apollo result pages read per company and geography (100 people a page; search is free).
    JOB_TITLE_APOLLO_MAX_PAGES: int = Field(default=1, ge=1, le=10)
    # Most companies one discovery request may name.
    JOB_TITLE_MAX_COMPANIES: int = Field(default=100, ge=1, le=1000)
