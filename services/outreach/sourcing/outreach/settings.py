"""Settings of outreach: cooldown, screening reminders, Google Sheets sync.

Its own fields on the channels' :class:`~sourcing.outreach.channels.settings.ChannelSettings`;
document every field in .env.example. The §11 variables ``GOOGLE_SHEETS_SERVICE_ACCOUNT_JSON``
and ``GOOGLE_SHEETS_SPREADSHEET_ID`` live on the kernel's ``Settings``.
"""

from __future__ import annotations

from pydantic import Field

from sourcing.outreach.channels.settings import ChannelSettings


class OutreachSettings(ChannelSettings):
    """What the outreach process and its endpoints read (and validate at start-up)."""

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
    # Most screening follow-ups one sweep enqueues (the rest wait for the next tick).
    SCREENING_FOLLOW_UP_BATCH_SIZE: int = Field(default=500, ge=1, le=10_000)
    # Extra stop phrases (comma-separated) that make a reply an opt-out, beside the built-in
    # ones (sourcing.outreach.service.STOP_PHRASES); matched as whole words, any case.
    INBOUND_STOP_PHRASES: str = ""

    @property
    def inbound_stop_phrases(self) -> tuple[str, ...]:
        return tuple(
            phrase.strip() for phrase in self.INBOUND_STOP_PHRASES.split(",") if phrase.strip()
        )
