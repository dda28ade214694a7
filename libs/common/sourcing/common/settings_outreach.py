"""Settings of outreach: cooldown, screening reminders, Google Sheets sync.

A mixin of :class:`sourcing.common.config.Settings`; document every field in .env.example.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings


class OutreachSettings(BaseSettings):
    """Fields of this area (same environment-variable conventions as Settings)."""
