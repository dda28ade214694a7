"""Settings of the production shape: topic creation on a real cluster.

A mixin of :class:`sourcing.common.config.Settings`; document every field in .env.example.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DeploySettings(BaseSettings):
    """Fields of this area (same environment-variable conventions as Settings)."""

    # Read on its own by the topic-init step too, so the same .env applies.
    model_config = SettingsConfigDict(
        env_file=".env", env_ignore_empty=True, extra="ignore", case_sensitive=True
    )

    # Replicas of each lane topic the topic-init step creates (3 on a production cluster).
    KAFKA_REPLICATION_FACTOR: int = Field(default=1, ge=1, le=16)
