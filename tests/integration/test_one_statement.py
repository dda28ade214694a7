"""Where a :class:`sourcing.common.db.OneStatement` runs: inside a unit of work's transaction
(even as its first statement), or in a transaction of its own on a pooled connection."""

from __future__ import annotations

import pytest
from sqlalchemy import Text, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sourcing.common.db import (
    OneStatement,
    PooledStatements,
    SessionStatements,
    create_sessionmaker,
)

pytestmark = pytest.mark.integration

TRANSACTION = OneStatement.of(
    select(func.txid_current().label("xid"), bindparam("p_echo", type_=Text).label("echo"))
)


async def test_the_first_statement_of_a_unit_of_work_is_inside_its_transaction(
    engine: AsyncEngine,
) -> None:
    async with create_sessionmaker(engine)() as session:
        row = await SessionStatements(session).fetchrow(TRANSACTION, {"p_echo": "x"})
        assert (row.echo, row.xid) == ("x", await session.scalar(select(func.txid_current())))


async def test_a_pooled_statement_is_its_own_transaction(engine: AsyncEngine) -> None:
    statements = PooledStatements(engine)
    first = await statements.fetchrow(TRANSACTION, {"p_echo": "one"})
    second = await statements.fetchrow(TRANSACTION, {"p_echo": "two"})
    assert first.xid != second.xid
    assert (first.echo, second.echo) == ("one", "two")
