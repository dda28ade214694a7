"""The maintenance cycle (manual §5.2) against the real PostgreSQL, with an injected clock."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.db import session_scope
from sourcing.common.models import (
    Caller,
    DeadLetterJob,
    OutboxMessage,
    SchedulerCycle,
)
from sourcing.scheduler.cycle import CycleResult, Scheduler, slot_start
from sourcing.scheduler.handlers import STEPS, CycleContext, Step
from tests.factories import (
    create_caller,
    create_dead_letter_job,
)
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

Sessionmaker = async_sessionmaker[AsyncSession]
# Steps 3 to 5 publish one tick each to the context owning the work.
TICK_STEPS = [
    (name, step)
    for name, step in STEPS
    if name in {"call_allocation", "screening_follow_ups", "signup_chase"}
]
# A fixed instant in the middle of an interval, far from any real "now".
T0 = datetime(2031, 3, 4, 10, 0, 30, tzinfo=UTC)


async def outbox(sessionmaker: Sessionmaker, lane: str | None = None) -> list[OutboxMessage]:
    async with session_scope(sessionmaker) as session:
        query = select(OutboxMessage).order_by(OutboxMessage.seq)
        if lane:
            query = query.where(OutboxMessage.topic == lane)
        return list((await session.scalars(query)).all())


async def cycles(sessionmaker: Sessionmaker) -> list[SchedulerCycle]:
    async with session_scope(sessionmaker) as session:
        rows = await session.scalars(
            select(SchedulerCycle).order_by(SchedulerCycle.slot_started_at)
        )
        return list(rows.all())


def cycle_outcomes() -> dict[str, float]:
    return {
        outcome: REGISTRY.get_sample_value("sourcing_scheduler_cycles_total", {"outcome": outcome})
        or 0.0
        for outcome in ("ran", "failed", "busy", "claimed")
    }


def payload_ids(rows: list[OutboxMessage], field: str) -> Counter[str]:
    return Counter(str(row.envelope["payload"][field]) for row in rows)


async def test_one_cycle_runs_every_step_in_order(
    database_settings: Settings, sessionmaker_committing: Sessionmaker
) -> None:
    sm = sessionmaker_committing
    now = T0
    timeout = timedelta(seconds=database_settings.CALLER_PRESENCE_TIMEOUT_SECONDS)
    async with session_scope(sm) as session:
        online = [
            await create_caller(session, last_seen_at=now - timedelta(minutes=1)) for _ in range(2)
        ]
        never_asked = await create_caller(session)
        gone = await create_caller(session, last_seen_at=now - timeout)
        active = [*online, never_asked, gone]
        await create_caller(session, is_active=False, last_seen_at=now)
        old_dead = await create_dead_letter_job(session, failed_at=now - timedelta(days=31))
        new_dead = await create_dead_letter_job(session, failed_at=now - timedelta(days=29))

    result = await Scheduler(database_settings, sm).run_cycle(now)

    assert result.outcome == "ran"
    assert [step["step"] for step in result.steps] == [name for name, _ in STEPS]
    # Retention (step 6, last) finds nothing old enough in a fresh database.
    assert [step["affected"] for step in result.steps] == [1, 4, 1, 1, 1, 1, 0]
    assert all(step["error"] is None for step in result.steps)
    # 1. archival: only the dead letter older than 30 days.
    async with session_scope(sm) as session:
        archived = {
            row.id: row.archived_at for row in (await session.scalars(select(DeadLetterJob))).all()
        }
    assert archived == {old_dead.id: now, new_dead.id: None}
    # 2. a performance message per active caller, keyed by caller.
    performance = await outbox(sm, "performance")
    assert payload_ids(performance, "callerId") == Counter(str(caller.id) for caller in active)
    assert {row.envelope["type"] for row in performance} == {"performance.recalculate.v1"}
    assert all(row.key == row.envelope["payload"]["callerId"] for row in performance)
    # 3. to 5. and the callback timeouts: one tick each to the context that owns the work, as
    # of the cycle's clock, on the key "sweep"; no domain work here (the gone caller is still
    # marked online).
    ticks = (
        await outbox(sm, "call-allocation")
        + await outbox(sm, "screening")
        + await outbox(sm, "enrichment")
    )
    assert [(row.topic, row.envelope["type"]) for row in ticks] == [
        ("call-allocation", "call-allocation.sweep-requested.v1"),
        ("call-allocation", "signup-chase.sweep-requested.v1"),
        ("screening", "screening.follow-up-sweep.v1"),
        ("enrichment", "enrichment.callback-sweep.v1"),
    ]
    assert {row.key for row in ticks} == {"sweep"}
    assert {row.envelope["payload"]["requestedAt"] for row in ticks} == {
        now.isoformat().replace("+00:00", "Z")
    }
    async with session_scope(sm) as session:
        still_online = await session.get(Caller, gone.id)
    assert still_online is not None and still_online.last_seen_at is not None
    # Every message carries the cycle's correlation id, recorded on the cycle row.
    [cycle] = await cycles(sm)
    assert {row.envelope["correlation_id"] for row in performance + ticks} == {cycle.correlation_id}
    assert cycle.status == "SUCCEEDED" and cycle.slot_started_at == slot_start(now, 60)
    assert [step["step"] for step in cycle.steps] == [name for name, _ in STEPS]


async def test_steps_are_idempotent_within_an_interval(
    database_settings: Settings, sessionmaker_committing: Sessionmaker
) -> None:
    sm = sessionmaker_committing
    async with session_scope(sm) as session:
        caller = await create_caller(session)
    context = CycleContext(
        now=T0, slot_started_at=slot_start(T0, 60), settings=database_settings, correlation_id="c"
    )
    for _ in range(2):
        for _name, step in STEPS:
            async with session_scope(sm) as session:
                await step(session, context)
    rows = await outbox(sm, "performance")
    # Enqueued twice for the same interval: the same envelope id, which consumers deduplicate.
    assert len(rows) == 2 and rows[0].envelope["id"] == rows[1].envelope["id"]
    assert rows[0].envelope["payload"]["callerId"] == str(caller.id)
    # A second run of the cycle in the same interval is refused; the next interval runs.
    scheduler = Scheduler(database_settings, sm)
    assert (await scheduler.run_cycle(T0)).outcome == "ran"
    assert (await scheduler.run_cycle(T0 + timedelta(seconds=20))).outcome == "claimed"
    assert (await scheduler.run_cycle(T0 + timedelta(seconds=60))).outcome == "ran"
    ids = [row.envelope["id"] for row in await outbox(sm, "performance")]
    # The cycle of T0's interval re-used the id of the direct runs; the next one has its own.
    assert ids[:3] == [ids[0]] * 3 and ids[3] != ids[0]


async def test_ticks_are_published_once_per_interval(
    database_settings: Settings, sessionmaker_committing: Sessionmaker
) -> None:
    sm = sessionmaker_committing
    context = CycleContext(
        now=T0, slot_started_at=slot_start(T0, 60), settings=database_settings, correlation_id="c"
    )
    later = CycleContext(
        now=T0 + timedelta(seconds=60),
        slot_started_at=slot_start(T0 + timedelta(seconds=60), 60),
        settings=database_settings,
        correlation_id="c",
    )
    for ctx in (context, context, later):
        for _name, step in TICK_STEPS:
            async with session_scope(sm) as session:
                assert await step(session, ctx) == 1
    rows = await outbox(sm, "call-allocation") + await outbox(sm, "screening")
    ids = Counter((row.envelope["type"], row.envelope["id"]) for row in rows)
    # The same interval twice: the same envelope id per step (deduplicated by the owner); the
    # next interval has its own.
    assert sorted(ids.values()) == [1, 1, 1, 2, 2, 2]
    assert len({message_id for _, message_id in ids}) == 6


async def test_archival_after_thirty_days_with_an_injected_clock(
    database_settings: Settings, sessionmaker_committing: Sessionmaker
) -> None:
    sm = sessionmaker_committing
    failed_at = T0
    async with session_scope(sm) as session:
        row = await create_dead_letter_job(session, failed_at=failed_at)
    clock_now = [failed_at + timedelta(days=29, hours=23)]
    scheduler = Scheduler(database_settings, sm, clock=lambda: clock_now[0])

    async def archived_at() -> datetime | None:
        async with session_scope(sm) as session:
            return await session.scalar(
                select(DeadLetterJob.archived_at).where(DeadLetterJob.id == row.id)
            )

    assert (await scheduler.run_cycle()).outcome == "ran"
    assert await archived_at() is None
    clock_now[0] = failed_at + timedelta(days=30, minutes=1)
    assert (await scheduler.run_cycle()).steps[0]["affected"] == 1
    assert await archived_at() == clock_now[0]
    # Archived once: a later cycle does not touch it again.
    moment = clock_now[0]
    clock_now[0] += timedelta(days=1)
    assert (await scheduler.run_cycle()).steps[0]["affected"] == 0
    assert await archived_at() == moment


class VirtualTime:
    """A clock several schedulers share; ``sleep`` waits for the driver to move time on."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.sleepers: list[tuple[datetime, asyncio.Future[None]]] = []
        self.slept = asyncio.Event()

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sleepers.append((self.now + timedelta(seconds=seconds), future))
        self.slept.set()
        await future

    async def run(self, until: datetime, *, sleepers: int) -> None:
        """Each time every scheduler sleeps, jump to the earliest wake-up and wake it."""
        while True:
            while len(self.sleepers) < sleepers:  # the others are still working
                self.slept.clear()
                await self.slept.wait()
            wake = min(target for target, _ in self.sleepers)
            if wake > until:
                return
            self.now = max(wake, self.now)
            due = [item for item in self.sleepers if item[0] <= self.now]
            self.sleepers = [item for item in self.sleepers if item[0] > self.now]
            for _, future in due:
                future.set_result(None)


async def test_two_schedulers_started_together_run_one_cycle_per_interval(
    database_settings: Settings, sessionmaker_committing: Sessionmaker
) -> None:
    sm = sessionmaker_committing
    async with session_scope(sm) as session:
        callers = [await create_caller(session) for _ in range(2)]
    time = VirtualTime(T0)
    replicas = [
        Scheduler(database_settings, sm, clock=time.clock, holder=name) for name in ("a", "b")
    ]
    intervals = 10
    before = cycle_outcomes()
    tasks = [asyncio.create_task(s.run_forever(sleep=time.sleep)) for s in replicas]
    try:
        await asyncio.wait_for(
            time.run(T0 + timedelta(seconds=60 * intervals), sleepers=2), timeout=60
        )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    rows = await cycles(sm)
    expected_slots = [slot_start(T0, 60) + timedelta(seconds=60 * i) for i in range(intervals + 1)]
    assert [row.slot_started_at for row in rows] == expected_slots
    assert {row.status for row in rows} == {"SUCCEEDED"}
    assert {row.holder for row in rows} <= {"a", "b"}
    # Both replicas tried every interval: one ran it, the other was refused.
    after = cycle_outcomes()
    assert after["ran"] - before["ran"] == intervals + 1
    assert (after["busy"] + after["claimed"]) - (before["busy"] + before["claimed"]) == (
        intervals + 1
    )
    performance = await outbox(sm, "performance")
    assert payload_ids(performance, "callerId") == Counter(
        {str(caller.id): intervals + 1 for caller in callers}
    )


async def test_a_slow_step_does_not_cause_overlap(
    database_settings: Settings, sessionmaker_committing: Sessionmaker
) -> None:
    sm = sessionmaker_committing
    entered = asyncio.Event()
    release = asyncio.Event()
    running = 0
    most_running = 0

    def tracked(step: Step) -> Step:
        async def run(session: AsyncSession, context: CycleContext) -> int:
            nonlocal running, most_running
            running += 1
            most_running = max(most_running, running)
            try:
                return await step(session, context)
            finally:
                running -= 1

        return run

    async def slow(session: AsyncSession, context: CycleContext) -> int:
        entered.set()
        await release.wait()
        return 0

    steps = [(name, tracked(step)) for name, step in STEPS]
    slow_steps = [*steps[:2], ("slow", tracked(slow)), *steps[2:]]
    first = Scheduler(database_settings, sm, steps=slow_steps, holder="slow")
    other = Scheduler(database_settings, sm, steps=steps, holder="other")

    running_first = asyncio.create_task(first.run_cycle(T0))
    await asyncio.wait_for(entered.wait(), timeout=30)
    # The slow cycle overruns into the next intervals: nobody starts another one meanwhile.
    attempts: list[Callable[[], Awaitable[CycleResult]]] = [
        lambda: other.run_cycle(T0),
        lambda: other.run_cycle(T0 + timedelta(seconds=60)),
        lambda: other.run_cycle(T0 + timedelta(seconds=125)),
        lambda: first.run_cycle(T0 + timedelta(seconds=61)),
    ]
    outcomes = [(await attempt()).outcome for attempt in attempts]
    assert outcomes == ["busy", "busy", "busy", "busy"]
    release.set()
    assert (await asyncio.wait_for(running_first, timeout=30)).outcome == "ran"
    # After it, the current interval runs late, once; the overrun interval is never re-run.
    assert (await other.run_cycle(T0 + timedelta(seconds=125))).outcome == "ran"
    assert (await first.run_cycle(T0 + timedelta(seconds=130))).outcome == "claimed"
    assert (await first.run_cycle(T0)).outcome == "claimed"
    assert most_running == 1
    assert [row.holder for row in await cycles(sm)] == ["slow", "other"]


async def test_a_failing_step_is_recorded_and_the_next_steps_still_run(
    database_settings: Settings, sessionmaker_committing: Sessionmaker
) -> None:
    sm = sessionmaker_committing
    async with session_scope(sm) as session:
        await create_caller(session)

    async def broken(session: AsyncSession, context: CycleContext) -> int:
        raise RuntimeError("step exploded")

    steps = [STEPS[0], ("broken", broken), *STEPS[1:]]
    result = await Scheduler(database_settings, sm, steps=steps).run_cycle(T0)
    assert result.outcome == "failed"
    assert result.steps[1]["error"] == "RuntimeError: step exploded"
    assert len(await outbox(sm, "performance")) == 1
    [row] = await cycles(sm)
    assert row.status == "FAILED" and row.error == "failed steps: broken"


async def test_a_cycle_abandoned_by_a_dead_replica_is_closed_by_the_next(
    database_settings: Settings, sessionmaker_committing: Sessionmaker
) -> None:
    sm = sessionmaker_committing
    async with session_scope(sm) as session:
        session.add(
            SchedulerCycle(
                id=uuid.uuid4(),
                slot_started_at=slot_start(T0, 60) - timedelta(minutes=1),
                holder="dead",
                status="RUNNING",
            )
        )
    assert (await Scheduler(database_settings, sm).run_cycle(T0)).outcome == "ran"
    rows = await cycles(sm)
    assert [(row.holder, row.status) for row in rows] == [
        ("dead", "FAILED"),
        (rows[1].holder, "SUCCEEDED"),
    ]
