"""Payload schemas of the domain messages, one module per area.

Importing this package registers every message type, so a consumer can validate any envelope
it receives (the reliability layer imports it before consuming).
"""

from sourcing.common.messages import allocation, calls, enrichment, outreach, scheduler, sourcing

__all__ = ["allocation", "calls", "enrichment", "outreach", "scheduler", "sourcing"]
