"""Async SQLAlchemy engine and unit-of-work helpers.

Nobody commits but the edge: the API's session dependency and the agents' per-message
``session_scope()`` commit on success and roll back on error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
from sqlalchemy import BindParameter, Row, event
from sqlalchemy.dialects.postgresql.asyncpg import PGCompiler_asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.schema import ScalarElementColumnDefault
from sqlalchemy.sql.selectable import _OffsetLimitParam
from sqlalchemy.util import await_

from sourcing.common.config import Settings, to_asyncpg_url

_ASYNCPG = asyncpg_dialect()  # type: ignore[no-untyped-call]
# A pooled connection idle at least this long is pinged before use; one used more recently
# is only checked for a socket its server closed.
PING_AFTER_IDLE_SECONDS = 1.0
_IDLE_SINCE = "idle_since"


def create_engine(settings: Settings, *, database_url: str | None = None) -> AsyncEngine:
    """An engine whose every statement is bounded by the command timeout.

    A fixed pool, no overflow: an overflow connection is closed as soon as it is returned, and
    each new asyncpg connection pays its handshake, type introspection and statement
    preparation again; under sustained load that churn was the gateway's largest cost. Past
    the pool size a request waits (up to the command timeout) for a connection instead.

    Last in, first out: the connections in use are the few the load needs, already warm (each
    new asyncpg connection introspects types and prepares every statement once, hundreds of
    milliseconds under load), instead of cycling through the whole pool.

    Checked before use (:func:`_check_on_checkout`) instead of SQLAlchemy's pre-ping, which
    costs three round trips on every checkout (BEGIN, ping, ROLLBACK).
    """
    engine = create_async_engine(
        to_asyncpg_url(database_url or settings.DATABASE_URL),
        pool_size=settings.DATABASE_POOL_SIZE,
        max_overflow=0,
        pool_use_lifo=True,
        pool_timeout=settings.DATABASE_COMMAND_TIMEOUT_SECONDS,
        connect_args={
            "command_timeout": settings.DATABASE_COMMAND_TIMEOUT_SECONDS,
            "timeout": settings.DATABASE_COMMAND_TIMEOUT_SECONDS,
            "server_settings": {"application_name": "expert-sourcing"},
        },
    )
    pool = engine.sync_engine.pool
    event.listen(pool, "connect", _mark_idle)
    event.listen(pool, "checkin", _mark_idle)
    event.listen(pool, "checkout", _check_on_checkout)
    return engine


def _mark_idle(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info[_IDLE_SINCE] = time.monotonic()


def _check_on_checkout(
    dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
) -> None:
    """A connection whose server closed it (a database restart), or that was idle for
    :data:`PING_AFTER_IDLE_SECONDS` and does not answer a ping (one round trip, no
    transaction), is replaced by a fresh one (the pool retries on ``DisconnectionError``).
    Under load a connection comes back within milliseconds and costs no round trip."""
    driver: asyncpg.Connection = dbapi_connection.driver_connection
    if driver.is_closed():
        raise DisconnectionError("the server closed the connection")
    idle_since = record.info.get(_IDLE_SINCE)
    if idle_since is not None and time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
        return
    try:
        await_(driver.fetchrow(";"))
    except Exception as exc:
        raise DisconnectionError("the connection does not answer") from exc


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def session_scope(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit when the block succeeds, roll back when it raises."""
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def database_answers(bind: AsyncEngine | AsyncConnection, *, within: float) -> bool:
    """Whether PostgreSQL answers ``SELECT 1`` within ``within`` seconds on a connection of its own.

    Not through the pool: a pool whose connections are all busy says nothing about whether the
    database is up.
    """
    engine = bind if isinstance(bind, AsyncEngine) else bind.engine
    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        async with asyncio.timeout(within):
            connection = await asyncpg.connect(dsn)
            try:
                await connection.fetchval("SELECT 1")
            finally:
                await connection.close()
    except Exception:
        return False
    return True


# --- one statement, one round trip ------------------------------------------------------------


class StatementRow(asyncpg.Record):
    """A row of a :class:`OneStatement`, its columns also read as attributes (``row.id``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass(frozen=True, slots=True)
class OneStatement:
    """A Core statement compiled once for asyncpg: its SQL text (constants and ``LIMIT``\\ s
    rendered), the order of its parameters, their bind processors and the constants' values.

    Executed on the driver's connection (:meth:`fetchrow`): no per-execution compilation,
    cache-key generation or result processing, which cost a hot single-statement request
    more than the statement itself. Every bound parameter without a value is required by
    name at execution.
    """

    sql: str
    names: tuple[str, ...]
    constants: Mapping[str, Any]
    processors: Mapping[str, Callable[[Any], Any]]

    @classmethod
    def of(cls, statement: ClauseElement) -> OneStatement:
        compiled = _OneStatementCompiler(_ASYNCPG, statement)
        required = [bind.key for bind in compiled.binds.values() if bind.required]
        expanded = compiled.construct_expanded_state(dict.fromkeys(required))
        return cls(
            sql=expanded.statement,
            names=tuple(expanded.positiontup or ()),
            constants={
                name: value for name, value in expanded.parameters.items() if name not in required
            }
            | _column_defaults(compiled),
            processors=dict(expanded.processors),
        )

    def arguments(self, parameters: Mapping[str, Any]) -> list[Any]:
        values = {**self.constants, **parameters}
        processors = self.processors
        return [
            processors[name](values[name]) if name in processors else values[name]
            for name in self.names
        ]

    async def fetchrow(
        self, connection: asyncpg.Connection, parameters: Mapping[str, Any]
    ) -> StatementRow:
        """The statement's first row on ``connection``; a database error is raised as
        SQLAlchemy's :class:`~sqlalchemy.exc.DBAPIError` (the gateway maps those)."""
        try:
            row = await connection.fetchrow(
                self.sql, *self.arguments(parameters), record_class=StatementRow
            )
        except asyncpg.PostgresError as exc:
            raise DBAPIError(self.sql, None, exc) from exc
        if row is None:  # pragma: no cover - every OneStatement returns a row
            raise LookupError("the statement returned no row")
        return row


class _OneStatementCompiler(PGCompiler_asyncpg):
    """asyncpg's compiler, a constant ``LIMIT``/``OFFSET`` written into the statement's text.

    Bound, PostgreSQL costs a prepared statement's generic plan for 10 % of the rows (``LIMIT
    1`` of a pool of 100,000 tasks as 10,000), so it never chose that plan and planned every
    execution anew: the allocation statement's planning took twice its execution."""

    def visit_bindparam(self, bindparam: BindParameter[Any], *args: Any, **kwargs: Any) -> Any:
        constant: Any = bindparam.value
        if isinstance(bindparam, _OffsetLimitParam) and not bindparam.required:
            return str(int(constant))
        return super().visit_bindparam(bindparam, *args, **kwargs)  # type: ignore[no-untyped-call]


def _column_defaults(compiled: SQLCompiler) -> dict[str, Any]:
    """The values of the Python-side column defaults an INSERT or UPDATE renders as parameters
    (SQLAlchemy's execution context fills those in, which a :class:`OneStatement` skips).
    Only constants can be compiled in: a callable default (``uuid4``) must be given a value."""
    defaults: dict[str, Any] = {}
    for column in [*compiled.insert_prefetch, *compiled.update_prefetch]:
        default = column.default if column in compiled.insert_prefetch else column.onupdate
        if not isinstance(default, ScalarElementColumnDefault):
            raise ValueError(f"{column}: a OneStatement needs a value for this column")
        defaults[column.key] = default.arg
    return defaults


def _driver(connection: PoolProxiedConnection) -> asyncpg.Connection:
    driver = connection.driver_connection
    assert isinstance(driver, asyncpg.Connection)  # noqa: S101 - narrows the type: asyncpg's
    return driver


# A statement's row, its columns read as attributes: the driver's (:class:`StatementRow`) or,
# inside a unit of work, SQLAlchemy's.
ResultRow = StatementRow | Row[Any]


class Statements(Protocol):
    """Where a :class:`OneStatement` runs: its own transaction on a pooled connection
    (:class:`PooledStatements`), or a unit of work's (:class:`SessionStatements`)."""

    async def fetchrow(
        self, statement: OneStatement, parameters: Mapping[str, Any]
    ) -> ResultRow: ...


@dataclass(frozen=True, slots=True)
class PooledStatements:
    """Each statement on a connection of ``engine``'s pool in autocommit: its own transaction,
    one round trip (no BEGIN, no COMMIT; the pool pings only a connection idle a while)."""

    engine: AsyncEngine

    async def fetchrow(self, statement: OneStatement, parameters: Mapping[str, Any]) -> ResultRow:
        async with self.engine.connect() as connection:
            driver = _driver(await connection.get_raw_connection())
            try:
                return await statement.fetchrow(driver, parameters)
            except Exception:
                if driver.is_closed():
                    await connection.invalidate()
                raise


@dataclass(frozen=True, slots=True)
class SessionStatements:
    """Each statement inside ``session``'s transaction (an agent's unit of work)."""

    session: AsyncSession

    async def fetchrow(self, statement: OneStatement, parameters: Mapping[str, Any]) -> ResultRow:
        # Through SQLAlchemy's connection, not the driver's: the adapter sends BEGIN lazily,
        # before its first statement, so a unit of work's first statement run on the driver
        # alone would escape the transaction.
        connection = await self.session.connection()
        result = await connection.exec_driver_sql(
            statement.sql, tuple(statement.arguments(parameters))
        )
        return result.one()


@dataclass(frozen=True, slots=True)
class UnitOfWorkStatements:
    """Each statement in a unit of work of its own from ``sessionmaker`` (a test's gateway,
    whose sessions join the test's rolled-back transaction)."""

    sessionmaker: async_sessionmaker[AsyncSession]

    async def fetchrow(self, statement: OneStatement, parameters: Mapping[str, Any]) -> ResultRow:
        async with session_scope(self.sessionmaker) as session:
            return await SessionStatements(session).fetchrow(statement, parameters)
