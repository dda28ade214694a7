"""The retry decision: a database outage waits without using attempts; anything else is
charged to the message (transient errors up to the limit, permanent ones at once)."""

from __future__ import annotations

import time

import pytest

from sourcing.common.kafka.consumer import AgentProgress
from sourcing.common.kafka.retry import (
    DATABASE_POLL_FLOOR_SECONDS,
    NextStep,
    database_poll_delay,
    next_step,
)

MAX = 5


@pytest.mark.parametrize("attempts", [1, MAX - 1, MAX, MAX + 3])
@pytest.mark.parametrize("never_give_up", [False, True])
def test_transient_failure_with_the_database_down_waits_whatever_the_attempts(
    attempts: int, never_give_up: bool
) -> None:
    step = next_step(
        transient=True,
        database_reachable=False,
        attempts=attempts,
        max_attempts=MAX,
        never_give_up=never_give_up,
    )
    assert step is NextStep.WAIT_FOR_DATABASE


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [(1, NextStep.RETRY), (MAX - 1, NextStep.RETRY), (MAX, NextStep.DEAD_LETTER)],
)
def test_transient_failure_with_the_database_up_keeps_the_attempt_limit(
    attempts: int, expected: NextStep
) -> None:
    """Deadlock, serialization failure, provider 5xx: the message's own trouble."""
    step = next_step(transient=True, database_reachable=True, attempts=attempts, max_attempts=MAX)
    assert step is expected


@pytest.mark.parametrize("database_reachable", [True, False])
def test_permanent_failure_is_dead_lettered_at_once_even_during_an_outage(
    database_reachable: bool,
) -> None:
    step = next_step(
        transient=False, database_reachable=database_reachable, attempts=1, max_attempts=MAX
    )
    assert step is NextStep.DEAD_LETTER


@pytest.mark.parametrize("transient", [True, False])
def test_a_consumer_that_never_gives_up_retries_past_the_limit(transient: bool) -> None:
    step = next_step(
        transient=transient,
        database_reachable=True,
        attempts=MAX + 10,
        max_attempts=MAX,
        never_give_up=True,
    )
    assert step is NextStep.RETRY


def test_database_poll_delay_grows_to_the_cap_and_never_below_the_floor() -> None:
    # base 0 (fast test retries) must not turn the wait into a tight probing loop
    fast = [database_poll_delay(poll, base=0.0, cap=0.05) for poll in range(1, 50)]
    assert all(DATABASE_POLL_FLOOR_SECONDS / 2 <= d <= DATABASE_POLL_FLOOR_SECONDS for d in fast)
    assert 0.5 <= database_poll_delay(1, base=1.0, cap=30.0) <= 1.0
    assert 4.0 <= database_poll_delay(4, base=1.0, cap=30.0) <= 8.0
    # a days-long outage stays at the cap (no float overflow of the exponent)
    assert 15.0 <= database_poll_delay(100_000, base=1.0, cap=30.0) <= 30.0


def test_waiting_for_the_database_is_not_a_stalled_handler() -> None:
    progress = AgentProgress(consumer="c", topic="t")
    progress.in_flight_since = time.monotonic() - 100.0
    assert progress.stalled(stall_seconds=50.0)

    progress.database_wait_started()
    progress.waiting_for_database_since = time.monotonic() - 80.0  # the outage began 80 s ago
    assert not progress.stalled(stall_seconds=1.0)
    assert progress.snapshot()["waitingForDatabaseSeconds"] >= 80.0

    progress.database_wait_ended()
    # The 80 s of outage are not counted as handler time: about 20 s in flight remain.
    assert progress.waiting_for_database_since is None
    assert 19.0 <= progress.in_flight_seconds() < 50.0
    assert not progress.stalled(stall_seconds=50.0)
    assert progress.stalled(stall_seconds=10.0)


def test_the_wait_lasts_until_the_last_shard_stops_waiting() -> None:
    progress = AgentProgress(consumer="c", topic="t")
    progress.in_flight_since = time.monotonic()
    progress.database_wait_started()
    progress.database_wait_started()  # two shards of one batch hit the outage
    progress.database_wait_ended()
    assert progress.waiting_for_database_since is not None
    assert not progress.stalled(stall_seconds=0.0)
    progress.database_wait_ended()
    assert progress.waiting_for_database_since is None
    assert progress.database_waiters == 0
