"""Batches of a Faust stream, handed over when full or a short linger after their first message.

Faust's ``Stream.take_events(max_, within)`` restarts its ``within`` timer on every wait, full
or empty: a message arriving alone waits for the rest of a window that began before it, and
the loop wakes every ``within`` seconds while the lane is idle. Here the timer starts with the
batch's first message (``AGENT_BATCH_LINGER_MS``), like a Kafka producer's ``linger.ms``: a
quiet lane hands a message over after at most the linger, a busy lane fills batches, an idle
lane sleeps until a message comes.

The ack semantics are ``take_events``' (verified in faust-streaming 0.15.3, whose internals
this mirrors): the stream's auto-ack is off while batching, and the events of a batch are
acked only when the consumer asks for the next batch (after its body returned, i.e. after
its transaction committed) or when the generator is closed; the next batch is held back
while the body runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from faust.types import EventT, StreamT


def lingering_batches(
    stream: StreamT[Any], max_size: int, linger_seconds: float
) -> AsyncGenerator[list[EventT[Any]], None]:
    """Lists of up to ``max_size`` events: each handed over when full, or ``linger_seconds``
    after its first event arrived, whichever comes first."""
    batches = _batches(stream, max_size, linger_seconds)
    # Like Faust's own buffering generators: the stream closes it (acks included) on stop.
    stream._active_agens.add(batches)  # type: ignore[attr-defined]
    return batches


async def _batches(
    stream: Any, max_size: int, linger_seconds: float
) -> AsyncGenerator[list[EventT[Any]], None]:
    events: list[EventT[Any]] = []
    first_arrived = asyncio.Event()
    full = asyncio.Event()
    taken = asyncio.Event()
    handing_over: asyncio.Future[None] | None = None
    enable_acks: bool = stream.enable_acks

    async def add_to_buffer(value: Any) -> Any:
        nonlocal handing_over
        try:
            if handing_over is not None:  # a batch is with the consumer: hold this one back
                try:
                    await handing_over
                finally:
                    handing_over = None
            event = stream.current_event
            if event is None:
                raise RuntimeError("batching found no current event")
            events.append(event)
            first_arrived.set()
            if len(events) >= max_size:
                full.set()
                taken.clear()
                await stream.wait(taken)  # never more than max_size in one batch
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            stream.log.exception("error adding to the batch: %r", exc)
            await stream.crash(exc)
        return value

    stream.enable_acks = False
    stream.add_processor(add_to_buffer)
    stream._enable_passive(aiter(stream.channel))  # as take_events does
    try:
        while not stream.should_stop:
            await stream.wait_for_stopped(first_arrived)
            if not full.is_set():
                await stream.wait_for_stopped(full, timeout=linger_seconds)
            if not events:
                continue
            handing_over = stream.loop.create_future()
            try:
                yield list(events)
            finally:
                batch = list(events)
                events.clear()
                for event in batch:
                    await stream.ack(event)
                first_arrived.clear()
                full.clear()
                if handing_over is not None and not handing_over.done():
                    handing_over.set_result(None)
                taken.set()
    finally:
        stream.enable_acks = enable_acks
        stream._processors.remove(add_to_buffer)
