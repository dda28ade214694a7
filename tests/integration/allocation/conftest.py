"""A gateway whose requests share the test's rolled-back transaction, with a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.api.app import create_app
from sourcing.common.db import UnitOfWorkStatements, session_scope
from sourcing.common.web import get_session
from tests.factories_calls import MutableClock
from tests.fixtures.settings import Settings


@dataclass
class Gateway:
    client: httpx.AsyncClient
    app: FastAPI
    clock: MutableClock


@pytest.fixture
def clock() -> MutableClock:
    return MutableClock()


@pytest.fixture
async def gateway(
    api_settings: Settings,
    sessionmaker_rolled_back: async_sessionmaker[AsyncSession],
    clock: MutableClock,
) -> AsyncIterator[Gateway]:
    app = create_app(api_settings)

    async def rolled_back_session() -> AsyncIterator[AsyncSession]:
        async with session_scope(sessionmaker_rolled_back) as session:
            yield session

    app.dependency_overrides[get_session] = rolled_back_session
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client,
    ):
        app.state.clock = clock.unix
        app.state.statements = UnitOfWorkStatements(sessionmaker_rolled_back)
        yield Gateway(client, app, clock)


@pytest.fixture
def caller_headers(auth_headers: Callable[..., dict[str, str]]) -> Callable[..., dict[str, str]]:
    """``caller_headers(caller)``: a caller token whose userId is the caller's id."""

    def headers(caller: object, *, by: str = "id") -> dict[str, str]:
        user_id = str(getattr(caller, by))
        return auth_headers("caller", user_id)

    return headers
