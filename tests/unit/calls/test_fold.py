"""Folding the Yay events of one call: any order, any number of deliveries, same CallLog."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sourcing.calls.fold import YayEvent, fold_events, parse_time

T0 = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
TASK_ID = uuid.uuid4()


def event(kind: str, seconds: int, event_id: str | None = None, **body: Any) -> YayEvent:
    payload: dict[str, Any] = {
        "event": kind,
        "callId": "yay-call-1",
        "agentEmail": "caller@example.com",
        "from": "+442071234567",
        "to": "+14155550100",
        "direction": "outbound",
        "metadata": {"taskId": str(TASK_ID)},
        **body,
    }
    return YayEvent(
        event_id=event_id or f"evt-{kind}-{seconds}",
        event_type=kind,
        occurred_at=T0 + timedelta(seconds=seconds),
        body=payload,
    )


FULL_CALL = [
    event("call.started", 0),
    event("call.ringing", 2),
    event("call.answered", 6),
    event("call.ended", 48, durationSeconds=48, talkSeconds=42),
    event("call.recording_ready", 60, recordingUrl="https://rec.example.com/1.mp3"),
]


def test_a_full_call_folds_into_one_record() -> None:
    fold = fold_events(FULL_CALL)
    assert fold.status == "ENDED"
    assert fold.started_at == T0
    assert fold.ringing_at == T0 + timedelta(seconds=2)
    assert fold.answered_at == T0 + timedelta(seconds=6)
    assert fold.ended_at == T0 + timedelta(seconds=48)
    assert (fold.duration_seconds, fold.talk_seconds) == (48, 42)
    assert fold.recording_url == "https://rec.example.com/1.mp3"
    assert fold.direction == "OUTBOUND"
    assert (fold.from_number, fold.to_number) == ("+442071234567", "+14155550100")
    assert fold.agent_email == "caller@example.com"
    assert fold.task_id == TASK_ID
    assert fold.answered and fold.finished
    assert fold.event_count == 5
    assert fold.last_event_at == T0 + timedelta(seconds=60)


def test_every_arrival_order_gives_the_same_fold() -> None:
    expected = fold_events(FULL_CALL)
    for order in itertools.permutations(FULL_CALL):
        assert fold_events(order) == expected


def test_duplicates_change_nothing() -> None:
    expected = fold_events(FULL_CALL)
    assert fold_events([*FULL_CALL, *FULL_CALL, FULL_CALL[3]]) == expected


def test_end_before_start_never_regresses_the_status() -> None:
    ended_only = fold_events([FULL_CALL[3]])
    assert ended_only.status == "ENDED"
    both = fold_events([FULL_CALL[3], FULL_CALL[0]])
    assert both.status == "ENDED"
    assert both.started_at == T0  # the dial time is the earliest event


def test_unknown_event_types_do_not_fold() -> None:
    transferred = event("call.transferred", 10, durationSeconds=999)
    assert fold_events([*FULL_CALL, transferred]) == fold_events(FULL_CALL)


def test_failed_call_is_not_answered_and_keeps_its_reason() -> None:
    fold = fold_events(
        [event("call.started", 0), event("call.failed", 20, failureReason="no-answer")]
    )
    assert fold.status == "FAILED"
    assert not fold.answered
    assert fold.failure_reason == "no-answer"
    assert fold.duration_seconds == 20  # derived from the timestamps
    assert fold.talk_seconds is None


def test_talk_seconds_derived_from_answer_and_end_and_floored() -> None:
    fold = fold_events([event("call.answered", 0), event("call.ended", 3)])
    assert fold.talk_seconds == 3
    fractional = fold_events([event("call.ended", 3, talkSeconds=4.9)])
    assert fractional.talk_seconds == 4


def test_parse_time_reads_z_and_naive_as_utc() -> None:
    assert parse_time("2026-11-28T10:15:02Z") == datetime(2026, 11, 28, 10, 15, 2, tzinfo=UTC)
    assert parse_time("2026-11-28T10:15:02") == datetime(2026, 11, 28, 10, 15, 2, tzinfo=UTC)
    assert parse_time("not a time") is None
    assert parse_time(None) is None
