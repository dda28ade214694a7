"""Settings of the calls pipeline: Yay events, call validation, caller performance.

A mixin of :class:`sourcing.common.config.Settings`; document every field in .env.example.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings


class CallSettings(BaseSettings):
    """Fields of this area (same environment-variable conventions as Settings)."""
