"""Messages of the scheduler's lanes: dead-letter replays and documentation jobs.

The lanes' payloads (``dead-letter.recorded.v1``, ``documentation.generate.v1``) are defined
in :mod:`sourcing.common.events`, next to the reliability layer that produces them. A replay
republishes the original envelope unchanged but for ``attempt``, so it has no type of its own.
Shared names of the dead-letter records live here, for the sink and the gateway alike.
"""

from __future__ import annotations

# dead_letter_jobs.headers keeps the origin message's headers plus, under this name, the
# consumer that gave up on it (the DeadLetter payload's ``consumer``).
DEAD_LETTER_CONSUMER_HEADER = "x-dead-letter-consumer"
# system_events.type of an operator's replay.
DEAD_LETTER_REPLAYED_EVENT = "dead_letter.replayed"
