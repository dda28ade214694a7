"""Settings of the sourcing pipeline: ingestion, enrichment waterfall, ranking, job-title discovery.

A mixin of :class:`sourcing.common.config.Settings`; document every field in .env.example.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings


class SourcingSettings(BaseSettings):
    """Fields of this area (same environment-variable conventions as Settings)."""
