"""The maintenance cycle (manual §5.2): its five steps, then callback timeouts and retention, in
order, once per interval, whatever the number of scheduler replicas.

Exactly one cycle per interval, never two at once:

1. a replica first takes a PostgreSQL session advisory lock (``pg_try_advisory_lock``) on a
   connection it keeps for the whole cycle; a replica that cannot get it skips (``busy``):
   a cycle that overruns its interval is never overlapped, by anyone;
2. holding the lock it claims the interval: ``INSERT scheduler_cycles (slot_started_at) ...
   ON CONFLICT DO NOTHING``, committed at once; a replica that finds the interval claimed
   skips (``claimed``): an interval is never run twice, even by a replica that was behind;
3. each step runs in its own transaction (its outbox messages commit with it); a failing step
   is recorded and the next step still runs; the row gets every step's duration and count.

A replica that dies mid-cycle releases the lock with its connection; the next cycle marks its
row FAILED (``abandoned``). The clock is injected: tests call :meth:`Scheduler.run_cycle`
with any instant, and :meth:`Scheduler.run_forever` sleeps through an injected ``sleep``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sourcing.common.clock import Clock, utc_now
from sourcing.common.db import session_scope
from sourcing.common.logging import correlation_id_var, new_correlation_id
from sourcing.common.models.enums import SchedulerCycleStatus
from sourcing.scheduler import metrics, repository
from sourcing.scheduler.handlers import STEPS, CycleContext, Step
from sourcing.scheduler.settings import SchedulerSettings

logger = logging.getLogger(__name__)

# pg_try_advisory_lock key of the maintenance cycle (unique among our advisory lock keys).
CYCLE_LOCK_KEY = 0x5C4E_D011

Sleep = Callable[[float], Awaitable[None]]
Outcome = Literal["ran", "failed", "busy", "claimed"]


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class CycleResult:
    outcome: Outcome
    slot_started_at: datetime
    cycle_id: uuid.UUID | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)


def slot_start(now: datetime, interval: float) -> datetime:
    """The start of the interval ``now`` falls in (intervals aligned on the Unix epoch)."""
    seconds = now.timestamp()
    return datetime.fromtimestamp(seconds - (seconds % interval), UTC)


class Scheduler:
    """One scheduler replica. Several may share a database: one cycle per interval between them."""

    def __init__(
        self,
        settings: SchedulerSettings,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        engine: AsyncEngine | None = None,
        clock: Clock = utc_now,
        steps: Sequence[tuple[str, Step]] = STEPS,
        holder: str | None = None,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        bind = engine or sessionmaker.kw.get("bind")
        if not isinstance(bind, AsyncEngine):
            raise TypeError("the scheduler needs an AsyncEngine (for its lock connection)")
        self.engine = bind
        self.clock = clock
        self.steps = tuple(steps)
        self.holder = holder or default_holder()
        self.interval = settings.SCHEDULER_INTERVAL_SECONDS

    async def run_cycle(self, now: datetime | None = None) -> CycleResult:
        """Run the cycle of the interval containing ``now`` (default: the clock) unless
        another replica is running a cycle or already ran this interval's."""
        now = now or self.clock()
        slot = slot_start(now, self.interval)
        correlation_id = new_correlation_id()
        token = correlation_id_var.set(correlation_id)
        try:
            async with self.engine.connect() as lock:
                locked = await lock.scalar(select(func.pg_try_advisory_lock(CYCLE_LOCK_KEY)))
                await lock.commit()  # the session lock outlives this transaction
                if not locked:
                    metrics.CYCLES.labels("busy").inc()
                    logger.info("cycle skipped: another scheduler is running one")
                    return CycleResult("busy", slot)
                try:
                    return await self._run_locked(now, slot, correlation_id)
                finally:
                    await lock.scalar(select(func.pg_advisory_unlock(CYCLE_LOCK_KEY)))
                    await lock.commit()
        finally:
            correlation_id_var.reset(token)

    async def _run_locked(self, now: datetime, slot: datetime, correlation_id: str) -> CycleResult:
        async with session_scope(self.sessionmaker) as session:
            abandoned = await repository.abandon_running_cycles(session, now=now)
            cycle_id = await repository.claim_cycle(
                session,
                slot_started_at=slot,
                holder=self.holder,
                now=now,
                correlation_id=correlation_id,
            )
        if abandoned:
            logger.warning("marked %d abandoned cycle(s) FAILED", abandoned)
        if cycle_id is None:
            metrics.CYCLES.labels("claimed").inc()
            logger.debug("cycle skipped: interval %s already ran", slot.isoformat())
            return CycleResult("claimed", slot)

        logger.info(
            "cycle started", extra={"slotStartedAt": slot.isoformat(), "holder": self.holder}
        )
        context = CycleContext(
            now=now, slot_started_at=slot, settings=self.settings, correlation_id=correlation_id
        )
        started = time.perf_counter()
        steps: list[dict[str, Any]] = []
        for name, step in self.steps:
            steps.append(await self._run_step(name, step, context))
        duration = time.perf_counter() - started
        metrics.CYCLE_DURATION.observe(duration)
        failed = [entry["step"] for entry in steps if entry["error"]]
        status = SchedulerCycleStatus.FAILED if failed else SchedulerCycleStatus.SUCCEEDED
        async with session_scope(self.sessionmaker) as session:
            await repository.finish_cycle(
                session,
                cycle_id,
                status=status,
                steps=steps,
                finished_at=now + timedelta(seconds=duration),
                error=f"failed steps: {', '.join(failed)}" if failed else None,
            )
        outcome: Outcome = "failed" if failed else "ran"
        metrics.CYCLES.labels(outcome).inc()
        logger.info(
            "cycle finished",
            extra={
                "slotStartedAt": slot.isoformat(),
                "durationMs": round(duration * 1000, 1),
                "status": status.value,
                "steps": steps,
            },
        )
        return CycleResult(outcome, slot, cycle_id, steps)

    async def _run_step(self, name: str, step: Step, context: CycleContext) -> dict[str, Any]:
        started = time.perf_counter()
        affected = 0
        error: str | None = None
        try:
            async with session_scope(self.sessionmaker) as session:
                affected = await step(session, context)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:2000]
            metrics.STEP_FAILURES.labels(name).inc()
            logger.exception("step %s failed", name, extra={"step": name})
        duration = time.perf_counter() - started
        metrics.STEP_DURATION.labels(name).observe(duration)
        metrics.STEP_AFFECTED.labels(name).inc(affected)
        logger.info(
            "step %s done",
            name,
            extra={"step": name, "affected": affected, "durationMs": round(duration * 1000, 1)},
        )
        return {
            "step": name,
            "duration_ms": round(duration * 1000, 3),
            "affected": affected,
            "error": error,
        }

    def seconds_until_next_slot(self, now: datetime) -> float:
        elapsed = now.timestamp() % self.interval
        return max(self.interval - elapsed, 0.0)

    async def run_forever(
        self, *, sleep: Sleep = asyncio.sleep, max_attempts: int | None = None
    ) -> None:
        """Call :meth:`run_cycle` once per interval until cancelled (or ``max_attempts``).

        A cycle that overran into the next interval is followed at once by that interval's
        cycle (late, never twice). A failing attempt (database down) is logged and retried
        at the next interval; it never ends the loop.
        """
        attempts = 0
        while max_attempts is None or attempts < max_attempts:
            attempts += 1
            now = self.clock()
            try:
                await self.run_cycle(now)
            except asyncio.CancelledError:
                raise
            except Exception:
                metrics.CYCLES.labels("failed").inc()
                logger.exception("cycle attempt failed; retrying next interval")
            after = self.clock()
            if slot_start(after, self.interval) == slot_start(now, self.interval):
                await sleep(self.seconds_until_next_slot(after))
