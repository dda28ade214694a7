"""``project.changed.v1``: a project's call tasks follow its status and priority, as
``PATCH /projects/{id}`` changes them, once however often the message is delivered."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.allocation.handlers import AllocationHandlers
from sourcing.common.events import Envelope
from sourcing.common.messages.allocation import ProjectChanged
from sourcing.common.models import CallTask, SystemEvent
from tests.factories import create_call_task, create_project
from tests.factories_calls import NOW
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration


async def _deliver(session: AsyncSession, settings: Settings, change: ProjectChanged) -> None:
    handlers = AllocationHandlers(settings, clock=lambda: NOW)
    await handlers.handle_project_changed(
        session, Envelope.new(ProjectChanged.message_type, change), change
    )
    await session.flush()


async def _task(session: AsyncSession, task_id: object) -> CallTask:
    task = await session.scalar(
        select(CallTask).where(CallTask.id == task_id).execution_options(populate_existing=True)
    )
    assert task is not None
    return task


async def test_a_new_priority_reorders_only_pending_tasks(
    session: AsyncSession, database_settings: Settings
) -> None:
    project = await create_project(session, priority=1)
    other = await create_project(session, priority=1)
    pending = await create_call_task(session, project=project, priority=1)
    assigned = await create_call_task(session, project=project, status="ASSIGNED", priority=1)
    elsewhere = await create_call_task(session, project=other, priority=1)
    change = ProjectChanged(
        project_id=project.id, status="ACTIVE", priority=7, status_changed=False, actor="admin:a"
    )
    for _ in range(2):
        await _deliver(session, database_settings, change)
        assert (await _task(session, pending.id)).priority == 7
        assert (await _task(session, assigned.id)).priority == 1
        assert (await _task(session, elsewhere.id)).priority == 1


@pytest.mark.parametrize("status", ["COMPLETED", "ARCHIVED"])
async def test_closing_a_project_cancels_its_open_tasks_once(
    session: AsyncSession, database_settings: Settings, status: str
) -> None:
    project = await create_project(session)
    pending = await create_call_task(session, project=project)
    assigned = await create_call_task(session, project=project, status="ASSIGNED")
    done = await create_call_task(session, project=project, status="COMPLETED")
    change = ProjectChanged(
        project_id=project.id, status=status, priority=0, status_changed=True, actor="ops:o"
    )
    for _ in range(2):
        await _deliver(session, database_settings, change)
        assert (await _task(session, pending.id)).status == "CANCELLED"
        cancelled = await _task(session, assigned.id)
        assert (cancelled.status, cancelled.caller_id) == ("CANCELLED", None)
        assert (await _task(session, done.id)).status == "COMPLETED"
        events = await session.execute(
            select(SystemEvent.entity_id, SystemEvent.actor, func.count())
            .where(SystemEvent.type == "call_task.cancelled")
            .group_by(SystemEvent.entity_id, SystemEvent.actor)
        )
        assert sorted(events.all()) == sorted([(pending.id, "ops:o", 1), (assigned.id, "ops:o", 1)])


async def test_a_status_change_that_does_not_close_the_project_cancels_nothing(
    session: AsyncSession, database_settings: Settings
) -> None:
    project = await create_project(session)
    pending = await create_call_task(session, project=project)
    for change in (
        ProjectChanged(
            project_id=project.id, status="PAUSED", priority=0, status_changed=True, actor="a"
        ),
        # A closed project's later priority edit (status unchanged) cancels nothing either.
        ProjectChanged(
            project_id=project.id, status="ARCHIVED", priority=0, status_changed=False, actor="a"
        ),
    ):
        await _deliver(session, database_settings, change)
        assert (await _task(session, pending.id)).status == "PENDING"
