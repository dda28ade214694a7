"""The services the documentation generator lists next to the lanes.

Who produces and who consumes each lane is declared on the lane itself
(:data:`sourcing.common.topics.LANES`), which message types travel on it by the message
contracts (:func:`sourcing.common.events.message_types_on`).
"""

from __future__ import annotations

SERVICES: dict[str, str] = {
    "api": "FastAPI gateway: REST API under /api/v1, webhooks under /webhooks, /metrics",
    "ingestion": "sales-nav-ingestion, lead-ingestion, job-title-discovery agents",
    "enrichment": "enrichment waterfall (10 providers) and ranking agents",
    "outreach": "outreach (13 channels), screening and google-sheets-sync agents",
    "calls": "yay-call-events, call-validation and performance agents",
    "allocation": "call-allocation agent",
    "scheduler": "60 s maintenance cycle, dead-letter sink, documentation generator",
}

# Replays (POST /dead-letters/{id}/replay) republish to whichever lane a message came from.
REPLAY_NOTE = "The gateway's dead-letter replay republishes to the message's original lane."
