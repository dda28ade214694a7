"""The scheduler's ticks on the call-allocation lane (manual §5.2, steps 3 and 5), handled by
the allocation service against the real PostgreSQL, with an injected time."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.allocation import service
from sourcing.allocation.handlers import AllocationHandlers
from sourcing.common.db import session_scope
from sourcing.common.events import Envelope
from sourcing.common.messages.allocation import (
    CallAllocationSweepRequested,
    SignupChaseSweepRequested,
)
from sourcing.common.models import Caller, CallTask, OutboxMessage, SignupChase, SystemEvent
from sourcing.common.models.enums import CallOutcome, CallTaskKind
from tests.factories import create_call_task, create_caller, create_expert, create_signup_chase
from tests.factories_ops import create_signup_link_task
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

Sessionmaker = async_sessionmaker[AsyncSession]
# A fixed instant in the middle of an interval, far from any real "now".
T0 = datetime(2031, 3, 4, 10, 0, 30, tzinfo=UTC)


async def outbox(sessionmaker: Sessionmaker, lane: str | None = None) -> list[OutboxMessage]:
    async with session_scope(sessionmaker) as session:
        query = select(OutboxMessage).order_by(OutboxMessage.seq)
        if lane:
            query = query.where(OutboxMessage.topic == lane)
        return list((await session.scalars(query)).all())


def payload_ids(rows: list[OutboxMessage], field: str) -> Counter[str]:
    return Counter(str(row.envelope["payload"][field]) for row in rows)


async def test_the_call_allocation_sweep_releases_offline_callers_and_asks_for_online_ones(
    database_settings: Settings, sessionmaker_committing: Sessionmaker
) -> None:
    sm = sessionmaker_committing
    now = T0
    timeout = timedelta(seconds=database_settings.CALLER_PRESENCE_TIMEOUT_SECONDS)
    async with session_scope(sm) as session:
        online = [
            await create_caller(session, last_seen_at=now - timedelta(minutes=1)) for _ in range(2)
        ]
        await create_caller(session)  # never asked for work
        gone = await create_caller(session, last_seen_at=now - timeout)
        held = await create_call_task(
            session, caller=gone, status="ASSIGNED", expires_at=now + timedelta(hours=1)
        )
        gone_dialling = await create_caller(session, last_seen_at=now - timeout)
        dialling = await create_call_task(session, caller=gone_dialling, status="DIALING")
        await create_caller(session, is_active=False, last_seen_at=now)
    tick = CallAllocationSweepRequested(requested_at=now)
    envelope = Envelope.new(tick.message_type, tick, correlation_id="cycle-1")
    handlers = AllocationHandlers(database_settings, clock=lambda: now)

    async with session_scope(sm) as session:
        await handlers.handle_call_allocation_sweep(session, envelope, tick)

    # An allocation message per active caller still online, keyed by caller; the caller idle
    # past the presence timeout went offline and their undialled task is back in the pool (the
    # dialling one stays theirs).
    allocation = await outbox(sm, "call-allocation")
    assert payload_ids(allocation, "callerId") == Counter(str(caller.id) for caller in online)
    async with session_scope(sm) as session:
        released = await session.get(CallTask, held.id)
        still_dialling = await session.get(CallTask, dialling.id)
        offline = await session.get(Caller, gone.id)
        audit = await session.scalar(
            select(SystemEvent).where(
                SystemEvent.type == "call_task.released", SystemEvent.entity_id == held.id
            )
        )
    assert released is not None and (released.status, released.caller_id) == ("PENDING", None)
    assert still_dialling is not None and still_dialling.caller_id == gone_dialling.id
    assert offline is not None and offline.last_seen_at is None
    assert audit is not None and audit.data["previousCallerId"] == str(gone.id)
    assert audit.actor == "scheduler"
    assert {row.envelope["type"] for row in allocation} == {"call-allocation.assign-current.v1"}
    assert all(row.key == row.envelope["payload"]["callerId"] for row in allocation)
    assert {row.envelope["correlation_id"] for row in allocation} == {"cycle-1"}
    # A redelivered tick asks again with the same envelope ids, which the consumer drops.
    async with session_scope(sm) as session:
        await handlers.handle_call_allocation_sweep(session, envelope, tick)
    ids = Counter(row.envelope["id"] for row in await outbox(sm, "call-allocation"))
    assert len(ids) == len(online) and set(ids.values()) == {2}


async def test_the_signup_chase_sweep_chases_experts_sent_a_link_a_day_ago(
    database_settings: Settings, sessionmaker_committing: Sessionmaker
) -> None:
    sm = sessionmaker_committing
    now = T0
    async with session_scope(sm) as session:
        chased = await create_signup_link_task(session, outcome_at=now - timedelta(hours=25))
        await create_signup_link_task(session, outcome_at=now - timedelta(hours=23))
        signed_up = await create_expert(session, signed_up_at=now - timedelta(hours=1))
        await create_signup_link_task(
            session, expert=signed_up, outcome_at=now - timedelta(hours=30)
        )
    tick = SignupChaseSweepRequested(requested_at=now)
    envelope = Envelope.new(tick.message_type, tick, correlation_id="cycle-1")

    async with session_scope(sm) as session:
        await AllocationHandlers(database_settings).handle_signup_chase_sweep(
            session, envelope, tick
        )

    # A new PENDING SIGNUP_CHASE task for the expert 25 h after the link.
    async with session_scope(sm) as session:
        tasks = (
            await session.scalars(
                select(CallTask).where(CallTask.kind == CallTaskKind.SIGNUP_CHASE.value)
            )
        ).all()
        chases = (await session.scalars(select(SignupChase))).all()
    [task] = tasks
    assert (task.expert_id, task.project_id, task.status) == (
        chased.expert_id,
        chased.project_id,
        "PENDING",
    )
    assert task.chase_of_task_id == chased.id and task.caller_id is None
    assert task.correlation_id == "cycle-1"
    [chase] = chases
    assert (chase.chase_call_task_id, chase.chase_number, chase.chase_date) == (
        task.id,
        1,
        now.date(),
    )


async def test_signup_chase_respects_open_tasks_and_one_chase_per_day(
    database_settings: Settings, sessionmaker_committing: Sessionmaker
) -> None:
    sm = sessionmaker_committing
    now = T0
    async with session_scope(sm) as session:
        source = await create_signup_link_task(session, outcome_at=now - timedelta(hours=24))
        # The outcome endpoint already scheduled a chase for this one (available in 1 hour).
        scheduled = await create_signup_link_task(session, outcome_at=now - timedelta(hours=23))
        await create_signup_chase(
            session,
            source_task=scheduled,
            chase_task=await create_call_task(
                session,
                project_id=scheduled.project_id,
                expert_id=scheduled.expert_id,
                kind=CallTaskKind.SIGNUP_CHASE.value,
                chase_of_task_id=scheduled.id,
                available_after=now + timedelta(hours=1),
            ),
            chase_date=(now - timedelta(hours=23)).date(),
        )
        suppressed = await create_expert(session, suppressed_at=now - timedelta(days=1))
        await create_signup_link_task(
            session, expert=suppressed, outcome_at=now - timedelta(hours=48)
        )

    async def sweep(at: datetime) -> int:
        async with session_scope(sm) as session:
            return await service.create_signup_chases(
                session, now=at, settings=database_settings, correlation_id="c"
            )

    async def chase_tasks() -> list[CallTask]:
        async with session_scope(sm) as session:
            query = select(CallTask).where(
                CallTask.kind == CallTaskKind.SIGNUP_CHASE.value,
                CallTask.chase_of_task_id == source.id,
            )
            return list((await session.scalars(query.order_by(CallTask.created_at))).all())

    assert await sweep(now) == 1
    [first] = await chase_tasks()
    # Later the same day: the chase exists (and is open): nothing new.
    assert await sweep(now + timedelta(hours=2)) == 0
    # The next day the first chase is still open: still nothing (one open task per expert).
    assert await sweep(now + timedelta(days=1)) == 0
    # Once it was worked without a signup, the next day's chase comes.
    async with session_scope(sm) as session:
        await session.execute(
            update(CallTask)
            .where(CallTask.id == first.id)
            .values(status="COMPLETED", outcome=CallOutcome.RETRYABLE_REJECTION.value)
        )
    later = now + timedelta(days=1, minutes=5)
    assert await sweep(later) == 1
    assert len(await chase_tasks()) == 2
    async with session_scope(sm) as session:
        per_day = (
            await session.execute(
                select(SignupChase.chase_date, func.count())
                .where(SignupChase.source_call_task_id == source.id)
                .group_by(SignupChase.chase_date)
            )
        ).all()
    assert sorted(per_day) == [(now.date(), 1), (later.date(), 1)]
