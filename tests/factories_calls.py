"""Factories and helpers for call allocation tests: a fixed clock, callable experts, pool tasks.

The default moment :data:`NOW` (a Tuesday, 15:00 UTC) is 11:00 in New York, 15:00 in London
and 00:00 in Tokyo: inside the default calling window (9-20 h local) for the first two only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import CallTask, Project, SystemEvent
from tests.factories import create_call_task, create_expert, create_project

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


class MutableClock:
    """``clock()`` returns the current fake moment; ``advance``/``set`` move it. ``unix`` is the
    same clock in Unix seconds (the gateway's ``app.state.clock``)."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def unix(self) -> float:
        return self.now.timestamp()

    def set(self, now: datetime) -> None:
        self.now = now

    def advance(self, **delta: float) -> None:
        from datetime import timedelta

        self.now = self.now + timedelta(**delta)


async def create_pool_task(
    session: AsyncSession,
    *,
    project: Project | None = None,
    expert_overrides: dict[str, Any] | None = None,
    **overrides: Any,
) -> CallTask:
    """A PENDING task of an expert in New York (callable at :data:`NOW`), region US, language
    en; ``expert_overrides`` go to the expert, other overrides to the task."""
    if project is None:
        project = await create_project(session)
    expert = await create_expert(session, **(expert_overrides or {}))
    overrides.setdefault("priority", project.priority)
    return await create_call_task(session, project=project, expert=expert, **overrides)


async def count_events(session: AsyncSession, type_: str, *, entity_id: Any = None) -> int:
    query = select(func.count()).select_from(SystemEvent).where(SystemEvent.type == type_)
    if entity_id is not None:
        query = query.where(SystemEvent.entity_id == entity_id)
    return int(await session.scalar(query) or 0)


ClockFactory = Callable[[], MutableClock]
