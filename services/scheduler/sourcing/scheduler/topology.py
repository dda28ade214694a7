"""Who produces and who consumes each of the 14 lanes: the one declarative table.

The documentation generator renders it next to :data:`sourcing.common.topics.LANES`
(partitions, keys); tests hold it against the lanes and against what this service really
declares and publishes. Producers and consumers are service names (``api`` is the gateway;
``every agent`` stands for the reliability layer's dead-letter path).
"""

from __future__ import annotations

from dataclasses import dataclass

SERVICES: dict[str, str] = {
    "api": "FastAPI gateway: REST API under /api/v1, webhooks under /webhooks, /metrics",
    "ingestion": "sales-nav-ingestion, lead-ingestion, job-title-discovery agents",
    "enrichment": "enrichment waterfall (10 providers) and ranking agents",
    "outreach": "outreach (13 channels), screening and google-sheets-sync agents",
    "calls": "yay-call-events, call-validation and performance agents",
    "allocation": "call-allocation agent",
    "scheduler": "60 s maintenance cycle, dead-letter sink, documentation generator",
}

EVERY_AGENT = "every agent"


@dataclass(frozen=True, slots=True)
class LaneFlow:
    lane: str
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    message_types: tuple[str, ...]


FLOWS: tuple[LaneFlow, ...] = (
    LaneFlow("yay-call-events", ("api",), ("calls",), ("yay.call-event.received.v1",)),
    LaneFlow("call-validation", ("calls",), ("calls",), ()),
    LaneFlow("lead-ingestion", ("ingestion",), ("ingestion",), ()),
    LaneFlow(
        "screening",
        ("api", "scheduler"),
        ("outreach",),
        ("screening.follow-up.v1", "screening.follow-up-sweep.v1"),
    ),
    LaneFlow(
        "call-allocation",
        ("api", "calls", "scheduler", "ingestion", "enrichment", "allocation"),
        ("allocation",),
        (
            "call-allocation.assign-current.v1",
            "call-task.requested.v1",
            "call-allocation.sweep-requested.v1",
            "signup-chase.sweep-requested.v1",
        ),
    ),
    LaneFlow(
        "outreach", ("api", "enrichment"), ("outreach",), ("outreach.auto.v1", "project.closed.v1")
    ),
    LaneFlow("enrichment", ("ingestion",), ("enrichment",), ("enrichment.requested.v1",)),
    LaneFlow("sales-nav-ingestion", ("api",), ("ingestion",), ("sales-nav.leads-received.v1",)),
    LaneFlow("ranking", ("enrichment",), ("enrichment",), ("ranking.requested.v1",)),
    LaneFlow("performance", ("calls", "scheduler"), ("calls",), ("performance.recalculate.v1",)),
    LaneFlow("job-title-discovery", ("api",), ("ingestion",), ()),
    LaneFlow(
        "google-sheets-sync",
        ("ingestion", "enrichment", "outreach", "allocation"),
        ("outreach",),
        ("google-sheets-sync.requested.v1",),
    ),
    LaneFlow("documentation", ("api",), ("scheduler",), ("documentation.generate.v1",)),
    LaneFlow("dead-letter", (EVERY_AGENT,), ("scheduler",), ("dead-letter.recorded.v1",)),
)

FLOWS_BY_LANE: dict[str, LaneFlow] = {flow.lane: flow for flow in FLOWS}

# Replays (POST /dead-letters/{id}/replay) republish to whichever lane a message came from.
REPLAY_NOTE = "The gateway's dead-letter replay republishes to the message's original lane."
