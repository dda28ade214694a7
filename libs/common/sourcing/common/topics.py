"""The 14 lanes of the manual (§5.1, §6) as Kafka topics.

A lane's partition count is the manual's worker concurrency: the ceiling on parallel
consumers of that topic. The key says which messages must be processed in order.
Producers and consumers are service names (``api`` is the gateway, which also runs the
contexts' endpoints; ``every agent`` stands for the reliability layer's dead-letter path):
the one table the documentation generator and the AsyncAPI document read them from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sourcing.common.config import Settings


@dataclass(frozen=True, slots=True)
class Lane:
    name: str
    partitions: int
    key: str
    purpose: str
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    retention_days: int = 7


EVERY_AGENT = "every agent"


LANES: tuple[Lane, ...] = (
    Lane(
        "yay-call-events",
        20,
        "caller id",
        "Forward Yay events to call validation",
        producers=("api",),
        consumers=("calls",),
    ),
    Lane(
        "call-validation",
        15,
        "caller id",
        "Validate calls, detect fraud",
        producers=("calls",),
        consumers=("calls",),
    ),
    Lane(
        "lead-ingestion",
        10,
        "normalised person identity",
        "Deduplicate leads, create experts",
        producers=("ingestion",),
        consumers=("ingestion",),
    ),
    Lane(
        "screening",
        10,
        "expert id",
        "Send screening follow-up reminders",
        producers=("scheduler", "outreach"),
        consumers=("outreach",),
    ),
    Lane(
        "call-allocation",
        10,
        "caller id (call-task requests: expert id)",
        "Assign call tasks to callers",
        producers=(
            "api",
            "calls",
            "scheduler",
            "ingestion",
            "enrichment",
            "allocation",
            "outreach",
        ),
        consumers=("allocation",),
    ),
    Lane(
        "outreach",
        8,
        "expert id (inbound channel events: the expert's address)",
        "Deliver messages via channel providers",
        producers=("api", "enrichment", "outreach"),
        consumers=("outreach",),
    ),
    Lane(
        "enrichment",
        6,
        "expert id",
        "Enrich leads with contact data; Zeliq's callbacks and their timeout sweep",
        producers=("api", "ingestion", "scheduler"),
        consumers=("enrichment",),
    ),
    Lane(
        "sales-nav-ingestion",
        5,
        "project id",
        "Process Sales Nav webhook payloads",
        producers=("api",),
        consumers=("ingestion",),
    ),
    Lane(
        "ranking",
        5,
        "project id",
        "Compute expert priority scores",
        producers=("enrichment",),
        consumers=("enrichment",),
    ),
    Lane(
        "performance",
        5,
        "caller id",
        "Recalculate caller performance metrics",
        producers=("calls", "scheduler"),
        consumers=("calls",),
    ),
    Lane(
        "job-title-discovery",
        5,
        "project id",
        "Apollo + OpenAI title discovery",
        producers=("api", "ingestion"),
        consumers=("ingestion",),
    ),
    Lane(
        "google-sheets-sync",
        4,
        "project id",
        "Sync data to Google Sheets",
        producers=("api", "enrichment", "outreach", "allocation"),
        consumers=("outreach",),
    ),
    Lane(
        "documentation",
        2,
        "job id",
        "Generate documentation artifacts",
        producers=("api",),
        consumers=("scheduler",),
    ),
    Lane(
        "dead-letter",
        2,
        "origin topic",
        "Persist failed jobs for analysis",
        producers=(EVERY_AGENT,),
        consumers=("scheduler",),
        retention_days=30,
    ),
)

LANES_BY_NAME: dict[str, Lane] = {lane.name: lane for lane in LANES}
DEAD_LETTER = "dead-letter"


def lane(name: str) -> Lane:
    try:
        return LANES_BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown lane {name!r}; known: {', '.join(LANES_BY_NAME)}") from None


# A service's consumer group is its Faust app id; here, not in the Faust module, so the gateway
# (consumer lag, the AsyncAPI document) names the groups without loading Faust.
APP_ID_PREFIX = "expert-sourcing-"


def app_id_for(service_name: str, settings: Settings) -> str:
    """The frozen Faust app id = consumer group id (per environment prefix and service)."""
    return f"{settings.KAFKA_TOPIC_PREFIX}{APP_ID_PREFIX}{service_name}"
