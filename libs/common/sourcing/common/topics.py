"""The 14 lanes of the manual (§5.1, §6) as Kafka topics.

A lane's partition count is the manual's worker concurrency: the ceiling on parallel
consumers of that topic. The key says which messages must be processed in order.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Lane:
    name: str
    partitions: int
    key: str
    purpose: str
    retention_days: int = 7


LANES: tuple[Lane, ...] = (
    Lane("yay-call-events", 20, "caller id", "Forward Yay events to call validation"),
    Lane("call-validation", 15, "caller id", "Validate calls, detect fraud"),
    Lane("lead-ingestion", 10, "normalised person identity", "Deduplicate leads, create experts"),
    Lane("screening", 10, "expert id", "Send screening follow-up reminders"),
    Lane(
        "call-allocation",
        10,
        "caller id (call-task requests: expert id)",
        "Assign call tasks to callers",
    ),
    Lane("outreach", 8, "expert id", "Deliver messages via channel providers"),
    Lane("enrichment", 6, "expert id", "Enrich leads with contact data"),
    Lane("sales-nav-ingestion", 5, "project id", "Process Sales Nav webhook payloads"),
    Lane("ranking", 5, "project id", "Compute expert priority scores"),
    Lane("performance", 5, "caller id", "Recalculate caller performance metrics"),
    Lane("job-title-discovery", 5, "project id", "Apollo + OpenAI title discovery"),
    Lane("google-sheets-sync", 4, "project id", "Sync data to Google Sheets"),
    Lane("documentation", 2, "job id", "Generate documentation artifacts"),
    Lane("dead-letter", 2, "origin topic", "Persist failed jobs for analysis", retention_days=30),
)

LANES_BY_NAME: dict[str, Lane] = {lane.name: lane for lane in LANES}
DEAD_LETTER = "dead-letter"


def lane(name: str) -> Lane:
    try:
        return LANES_BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown lane {name!r}; known: {', '.join(LANES_BY_NAME)}") from None
