"""Settings of outreach: cooldown, screening reminders, Google Sheets sync.

A mixin of :class:`sourcing.common.config.Settings`; document every field in .env.example.
The §11 variables ``GOOGLE_SHEETS_SERVICE_ACCOUNT_JSON`` and ``GOOGLE_SHEETS_SPREADSHEET_ID``
live on ``Settings`` itself.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class OutreachSettings(BaseSettings):
    """Fields of this area (same environment-variable conventions as Settings)."""

    # Days an expert is left alone after an outreach message (manual §4.7).
    OUTREACH_COOLDOWN_DAYS: int = Field(default=30, ge=0)
    # Reminders sent for an open screening before it is escalated (ESCALATED).
    SCREENING_MAX_REMINDERS: int = Field(default=3, ge=0)
    # A pending/in-progress screening untouched this long is due a follow-up (manual §5.2).
    SCREENING_FOLLOW_UP_IDLE_MINUTES: int = Field(default=15, ge=1)
    # Google Sheets API v4 base (overridable for stubs; the sandbox replaces it in sandbox mode).
    GOOGLE_SHEETS_BASE_URL: str = "https://sheets.googleapis.com"
    # OAuth token endpoint the service-account JWT is exchanged at (default: the key's token_uri).
    GOOGLE_SHEETS_TOKEN_URL: str | None = None
    # Per-request timeout of Google Sheets and token calls, in seconds.
    GOOGLE_SHEETS_TIMEOUT_SECONDS: float = Field(default=15.0, gt=0)
