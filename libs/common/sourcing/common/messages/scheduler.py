"""Messages of the scheduler: dead-letter replays, documentation jobs and the sweep ticks.

The lanes' payloads (``dead-letter.recorded.v1``, ``documentation.generate.v1``) are defined
in :mod:`sourcing.common.events`, next to the reliability layer that produces them. A replay
republishes the original envelope unchanged but for ``attempt``, so it has no type of its own.
Shared names of the dead-letter records live here, for the sink and the gateway alike.
"""

from __future__ import annotations

from pydantic import AwareDatetime

from sourcing.common.events import MessagePayload

# dead_letter_jobs.headers keeps the origin message's headers plus, under this name, the
# consumer that gave up on it (the DeadLetter payload's ``consumer``).
DEAD_LETTER_CONSUMER_HEADER = "x-dead-letter-consumer"
# system_events.type of an operator's replay.
DEAD_LETTER_REPLAYED_EVENT = "dead_letter.replayed"


class SweepRequested(MessagePayload):
    """A scheduler tick (manual §5.2): the context owning a maintenance step runs its sweep as
    of ``requested_at``. One message per step and interval, all on one key ("sweep") of the
    owner's lane, so two sweeps of one step never overlap; the envelope id is derived from the
    step and interval, so a re-run cycle is dropped by the owner's ``processed_events``."""

    requested_at: AwareDatetime

    @property
    def sweep(self) -> str:
        return "sweep"
