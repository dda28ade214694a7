"""Where a :class:`sourcing.common.db.OneStatement` runs: inside a unit of work's transaction
(even as its first statement), or in a transaction of its own on a pooled connection."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, Text, bindparam, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sourcing.common.db import (
    OneStatement,
    PooledStatements,
    SessionStatements,
    create_sessionmaker,
)
from sourcing.common.models import SystemEvent

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


COUNTERS = Table(
    "one_statement_counters",
    MetaData(),
    Column("name", Text, primary_key=True),
    Column("count", Integer, nullable=False, default=0),
)


async def test_an_insert_writes_the_python_side_defaults_of_the_columns_it_leaves_out(
    engine: AsyncEngine,
) -> None:
    """SQLAlchemy's execution context fills in a column's Python-side default; a OneStatement
    has none, so it compiles the constant in (a call task's ``requeue_count`` was NULL)."""
    statement = OneStatement.of(
        insert(COUNTERS)
        .values(name=bindparam("p_name", type_=Text))
        .returning(COUNTERS.c.name, COUNTERS.c.count)
    )
    async with create_sessionmaker(engine)() as session:
        connection = await session.connection()
        await connection.exec_driver_sql(
            "CREATE TEMP TABLE one_statement_counters (name text PRIMARY KEY, count int NOT NULL)"
        )
        row = await SessionStatements(session).fetchrow(statement, {"p_name": "calls"})
        await session.rollback()
    assert (row.name, row.count) == ("calls", 0)


def test_a_callable_default_must_be_given_a_value() -> None:
    with pytest.raises(ValueError, match="needs a value"):
        OneStatement.of(insert(SystemEvent).values(type=bindparam("p_type", type_=Text)))


def test_a_constant_limit_is_written_into_the_text_and_a_bound_one_stays_a_parameter() -> None:
    """PostgreSQL costs a generic plan's bound ``LIMIT`` at a tenth of the rows, so a prepared
    statement with ``LIMIT $n`` never gets a generic plan and is planned at every execution."""
    statement = OneStatement.of(
        select(COUNTERS.c.name)
        .where(COUNTERS.c.count > bindparam("p_count", type_=Integer))
        .limit(1)
        .offset(bindparam("p_skip", type_=Integer))
    )
    assert "LIMIT 1" in statement.sql
    assert statement.names == ("p_count", "p_skip")
