"""Which errors are worth another attempt, how long to wait before it, and when a failure is
the database's outage rather than the message's fault."""

from __future__ import annotations

import enum
import random
from collections.abc import Iterator

import httpx
from sqlalchemy import exc as sa_exc

# PostgreSQL SQLSTATEs that succeed when simply tried again.
TRANSIENT_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now
        "53300",  # too_many_connections
        "53400",  # configuration_limit_exceeded
    }
)
TRANSIENT_HTTP_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class TransientError(Exception):
    """Raise from a handler to ask for another attempt (e.g. a provider answered 503)."""


class PermanentError(Exception):
    """Raise from a handler to send the message to dead-letter without further attempts."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes/contexts and SQLAlchemy's wrapped DBAPI error (cycle-safe)."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        if isinstance(orig, BaseException):
            stack.append(orig)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                stack.append(linked)


def _is_transient_one(exc: BaseException) -> bool:
    if isinstance(exc, PermanentError):
        return False
    # A provider call that already gave up says itself whether trying later may help.
    provider_verdict = getattr(exc, "transient", None)
    if isinstance(provider_verdict, bool):
        return provider_verdict
    if isinstance(exc, TransientError | TimeoutError | ConnectionError):
        return True
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    sqlstate = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if isinstance(sqlstate, str) and (sqlstate in TRANSIENT_SQLSTATES or sqlstate[:2] == "08"):
        return True
    if isinstance(exc, httpx.TransportError):
        return True
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code in TRANSIENT_HTTP_STATUSES
    # asyncpg's connection-level errors (imported lazily: asyncpg is optional for this check).
    try:
        import asyncpg
    except ImportError:  # pragma: no cover
        return False
    return isinstance(
        exc,
        asyncpg.PostgresConnectionError
        | asyncpg.InterfaceError
        | asyncpg.exceptions.SerializationError
        | asyncpg.exceptions.DeadlockDetectedError,
    )


def is_transient(exc: BaseException) -> bool:
    """True when another attempt may succeed: connection trouble, deadlock, serialization
    failure, timeouts, provider 5xx/429, or an explicit :class:`TransientError`.

    A :class:`PermanentError` anywhere in the chain wins: it is never retried.
    """
    chain = list(_chain(exc))
    if any(isinstance(e, PermanentError) for e in chain):
        return False
    return any(_is_transient_one(e) for e in chain)


def backoff_delay(attempt: int, *, base: float, cap: float) -> float:
    """Exponential backoff with full jitter before attempt ``attempt + 1`` (attempt >= 1)."""
    ceiling = min(cap, base * (2 ** max(attempt - 1, 0)))
    return random.uniform(0, ceiling)  # noqa: S311 - backoff jitter, not cryptography


class NextStep(enum.Enum):
    """What the consumer does after a failed attempt."""

    RETRY = "retry"
    """Try again after :func:`backoff_delay`; the failed attempt counts against the limit."""
    WAIT_FOR_DATABASE = "wait_for_database"
    """The database does not answer: wait until it does, then try again without counting the
    failed attempt (an outage says nothing about the message)."""
    DEAD_LETTER = "dead_letter"


def next_step(
    *,
    transient: bool,
    database_reachable: bool,
    attempts: int,
    max_attempts: int,
    never_give_up: bool = False,
) -> NextStep:
    """Decide after a failed attempt; ``attempts`` is its number among the attempts charged
    to the message (1 for the first).

    A transient failure while the database itself does not answer is the outage's fault: the
    message waits for the database however long that takes, instead of using up its attempts
    and being dead-lettered healthy. A transient failure with the database answering
    (deadlock, serialization failure, provider 5xx/429) is the message's: it keeps the
    ``max_attempts`` limit. Permanent failures are dead-lettered at once, unless
    ``never_give_up`` (a consumer with nowhere to dead-letter to).
    """
    if transient and not database_reachable:
        return NextStep.WAIT_FOR_DATABASE
    if never_give_up or (transient and attempts < max_attempts):
        return NextStep.RETRY
    return NextStep.DEAD_LETTER


# Probing a server that refuses connections in a tight loop only burns CPU and fills logs.
DATABASE_POLL_FLOOR_SECONDS = 0.5


def database_poll_delay(poll: int, *, base: float, cap: float) -> float:
    """Pause before probing the database again after its ``poll``-th failed probe (>= 1).

    Exponential from ``base`` (at least :data:`DATABASE_POLL_FLOOR_SECONDS`) up to ``cap``;
    half of it jittered so replicas do not all reconnect in the same instant when the
    database comes back.
    """
    floor = max(base, DATABASE_POLL_FLOOR_SECONDS)
    # The exponent is bounded: an outage of days must not overflow the float.
    ceiling = max(floor, min(cap, floor * 2.0 ** min(max(poll - 1, 0), 32)))
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - backoff jitter, not cryptography
