"""The one way to change a status: ``move()`` checks the machine, sets the fields, audits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.errors import InvalidTransition
from sourcing.common.models import SystemEvent
from sourcing.common.transitions import LIFECYCLES, Movable, lifecycle, move
from tests.factories import (
    create_call_task,
    create_caller,
    create_lead,
    create_outreach_thread,
    create_project,
    create_screening_response,
)

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)

Factory = Callable[[AsyncSession], Awaitable[Movable]]

# Per entity: its factory, an allowed move from the factory's status and a forbidden one.
CASES: dict[str, tuple[Factory, str, str]] = {
    "lead": (create_lead, "ENRICHING", "CONTACTED"),
    "outreach_thread": (create_outreach_thread, "CLOSED", "OPEN"),
    "screening_response": (create_screening_response, "IN_PROGRESS", "COMPLETE"),
    "call_task": (create_call_task, "CANCELLED", "COMPLETED"),
    "caller": (create_caller, "AT_RISK", "PAUSED_LOW_DIAL_RATE"),
    "project": (create_project, "PAUSED", "ACTIVE"),
}


def test_every_entity_with_a_machine_has_a_case() -> None:
    assert {kind.entity_type for kind in LIFECYCLES.values()} == set(CASES)


async def _events(session: AsyncSession, entity: Movable) -> list[SystemEvent]:
    return list(
        (await session.scalars(select(SystemEvent).where(SystemEvent.entity_id == entity.id))).all()
    )


def _status(entity: Movable) -> str:
    return str(getattr(entity, lifecycle(entity).field))


@pytest.mark.parametrize("name", sorted(CASES))
async def test_an_allowed_move_sets_the_status_fields_and_writes_the_audit_event(
    session: AsyncSession, name: str
) -> None:
    factory, target, _ = CASES[name]
    entity = await factory(session)
    source = _status(entity)

    returned = move(session, entity, target, actor="tester", reason="because", now=NOW)
    await session.flush()

    await session.refresh(entity)
    assert returned == source
    assert _status(entity) == target
    assert entity.status_changed_at == NOW
    if hasattr(entity, "status_reason"):
        assert entity.status_reason == "because"
    [event] = await _events(session, entity)
    assert (event.type, event.entity_type, event.actor) == (
        f"{name}.status_changed",
        name,
        "tester",
    )
    assert event.data == {"from": source, "to": target, "reason": "because"}


@pytest.mark.parametrize("name", sorted(CASES))
async def test_a_forbidden_move_raises_and_writes_nothing(session: AsyncSession, name: str) -> None:
    factory, _, forbidden = CASES[name]
    entity = await factory(session)
    source, changed_at = _status(entity), entity.status_changed_at

    with pytest.raises(InvalidTransition) as caught:
        move(session, entity, forbidden, actor="tester", reason="because", now=NOW)
    await session.flush()

    assert caught.value.status == 409 and caught.value.code == "invalid_transition"
    assert caught.value.details == {
        "entity": lifecycle(entity).machine.name,
        "from": source,
        "to": forbidden,
    }
    await session.refresh(entity)
    assert (_status(entity), entity.status_changed_at) == (source, changed_at)
    assert await _events(session, entity) == []


async def test_a_move_through_states_checks_every_step_and_audits_once(
    session: AsyncSession,
) -> None:
    task = await create_call_task(session, status="ASSIGNED", caller=await create_caller(session))

    move(
        session,
        task,
        "COMPLETED",
        actor="tester",
        reason="done",
        now=NOW,
        via=["DIALING"],
        event="outcome",
        data={"extra": 1, "reason": "the long reason"},
    )
    await session.flush()

    [event] = await _events(session, task)
    assert event.type == "call_task.outcome"
    assert event.data == {
        "from": "ASSIGNED",
        "to": "COMPLETED",
        "reason": "the long reason",
        "extra": 1,
    }
    assert task.status_reason == "done"
    # A skipped step is refused even when the target is allowed from the step before.
    other = await create_call_task(session, status="PENDING")
    with pytest.raises(InvalidTransition):
        move(session, other, "COMPLETED", actor="tester", reason=None, now=NOW, via=["DIALING"])
    assert other.status == "PENDING"


async def test_the_same_status_only_with_allow_same_and_without_an_event(
    session: AsyncSession,
) -> None:
    lead = await create_lead(session, status="ENRICHMENT_FAILED")
    with pytest.raises(InvalidTransition):
        move(session, lead, "ENRICHMENT_FAILED", actor="tester", reason="again", now=NOW)

    move(
        session,
        lead,
        "ENRICHMENT_FAILED",
        actor="tester",
        reason="again",
        now=NOW,
        allow_same=True,
        event=None,
    )
    await session.flush()

    assert (lead.status, lead.status_reason, lead.status_changed_at) == (
        "ENRICHMENT_FAILED",
        "again",
        NOW,
    )
    count = await session.scalar(
        select(func.count()).select_from(SystemEvent).where(SystemEvent.entity_id == lead.id)
    )
    assert count == 0


async def test_a_screening_move_counts_as_activity(session: AsyncSession) -> None:
    response = await create_screening_response(session)
    move(session, response, "IN_PROGRESS", actor="tester", reason=None, now=NOW)
    await session.flush()
    await session.refresh(response)
    assert response.updated_at == NOW
