"""Settings of call allocation: assignment, expiry, outcomes, signup chase.

A mixin of :class:`sourcing.common.config.Settings`; document every field in .env.example.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings


class AllocationSettings(BaseSettings):
    """Fields of this area (same environment-variable conventions as Settings)."""
