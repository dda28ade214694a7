"""Fold the Yay events of one call into the state of its CallLog (pure, order-independent).

The CallLog is always recomputed from every stored event of the call, so any arrival order
and any number of deliveries give the same row:

* the dial time (``started_at``) is the earliest event time of the call; ringing and answer
  times are the earliest of their events, end and failure times the latest of theirs;
* durations are the largest reported (else derived from the timestamps);
* numbers, direction, agent and task id come from the earliest event that carries them, the
  recording URL from the latest;
* the status is the furthest point reached: ENDED/FAILED > ANSWERED > RINGING > STARTED.

Events are ordered by (occurred time, event id) so ties are broken the same way every time.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sourcing.common.messages.calls import YAY_EVENT_TYPES
from sourcing.common.models.enums import CallDirection, CallLogStatus

STARTED, RINGING, ANSWERED, ENDED, FAILED, RECORDING_READY = YAY_EVENT_TYPES
_FAR_PAST = datetime.min.replace(tzinfo=UTC)


def is_call_event(event_type: str) -> bool:
    """One of the processed types (others are stored and ignored)."""
    return event_type in YAY_EVENT_TYPES


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time from a webhook body (naive means UTC); None when absent or invalid."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class YayEvent:
    """One stored event of a call (a CallLogRaw row)."""

    event_id: str
    event_type: str
    occurred_at: datetime | None
    body: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CallFold:
    """What the events of one call say about it."""

    status: str
    started_at: datetime | None
    ringing_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    failed_at: datetime | None
    failure_reason: str | None
    duration_seconds: int | None
    talk_seconds: int | None
    recording_url: str | None
    direction: str | None
    from_number: str | None
    to_number: str | None
    agent_email: str | None
    task_id: uuid.UUID | None
    last_event_at: datetime | None
    event_count: int

    @property
    def answered(self) -> bool:
        return self.answered_at is not None or (self.talk_seconds or 0) > 0

    @property
    def finished(self) -> bool:
        return self.status in (CallLogStatus.ENDED.value, CallLogStatus.FAILED.value)

    @property
    def finished_at(self) -> datetime | None:
        return self.ended_at or self.failed_at


def _seconds(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return None
    return math.floor(value)  # 4.9 s of talk is under a 5 s threshold


def _text(value: Any, *, limit: int = 2048) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value[:limit] if value else None


def _task_id(body: Mapping[str, Any]) -> uuid.UUID | None:
    metadata = body.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    value = metadata.get("taskId")
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _direction(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    upper = text.upper()
    return upper if upper in (d.value for d in CallDirection) else None


def fold_events(events: Iterable[YayEvent]) -> CallFold:
    """The CallLog state of a call from its events (processed types only; others skipped)."""
    ordered = sorted(
        (e for e in events if is_call_event(e.event_type)),
        key=lambda e: (e.occurred_at or _FAR_PAST, e.event_id),
    )
    ids: set[str] = set()
    times: dict[str, list[datetime]] = {}
    all_times: list[datetime] = []
    durations: list[int] = []
    talks: list[int] = []
    first: dict[str, Any] = {}
    recording_url: str | None = None
    failure_reason: str | None = None
    for event in ordered:
        if event.event_id in ids:
            continue
        ids.add(event.event_id)
        body = event.body
        if event.occurred_at is not None:
            times.setdefault(event.event_type, []).append(event.occurred_at)
            all_times.append(event.occurred_at)
        for target, value in (
            ("from", _text(body.get("from"), limit=64)),
            ("to", _text(body.get("to"), limit=64)),
            ("direction", _direction(body.get("direction"))),
            ("agent", _text(body.get("agentEmail"), limit=320)),
            ("task", _task_id(body)),
        ):
            if value is not None and target not in first:
                first[target] = value
        duration = _seconds(body.get("durationSeconds"))
        if duration is not None:
            durations.append(duration)
        talk = _seconds(body.get("talkSeconds"))
        if talk is not None:
            talks.append(talk)
        recording_url = _text(body.get("recordingUrl")) or recording_url
        if event.event_type == FAILED:
            failure_reason = (
                _text(body.get("failureReason"), limit=500)
                or _text(body.get("reason"), limit=500)
                or failure_reason
            )

    def earliest(kind: str) -> datetime | None:
        return min(times[kind]) if kind in times else None

    def latest(kind: str) -> datetime | None:
        return max(times[kind]) if kind in times else None

    started_at = min(all_times) if all_times else None
    ringing_at = earliest(RINGING)
    answered_at = earliest(ANSWERED)
    ended_at = latest(ENDED)
    failed_at = latest(FAILED)
    # Event types seen without a usable time still move the status forward.
    seen = {e.event_type for e in ordered}
    if ended_at is not None or ENDED in seen:
        status = CallLogStatus.ENDED
    elif failed_at is not None or FAILED in seen:
        status = CallLogStatus.FAILED
    elif answered_at is not None or ANSWERED in seen:
        status = CallLogStatus.ANSWERED
    elif ringing_at is not None or RINGING in seen:
        status = CallLogStatus.RINGING
    else:
        status = CallLogStatus.STARTED
    end = ended_at or failed_at
    talk_seconds = max(talks) if talks else None
    if talk_seconds is None and answered_at is not None and end is not None and end >= answered_at:
        talk_seconds = math.floor((end - answered_at).total_seconds())
    duration_seconds = max(durations) if durations else None
    if duration_seconds is None and started_at is not None and end is not None:
        duration_seconds = math.floor((end - started_at).total_seconds())
    return CallFold(
        status=status.value,
        started_at=started_at,
        ringing_at=ringing_at,
        answered_at=answered_at,
        ended_at=ended_at,
        failed_at=failed_at,
        failure_reason=failure_reason,
        duration_seconds=duration_seconds,
        talk_seconds=talk_seconds,
        recording_url=recording_url,
        direction=first.get("direction"),
        from_number=first.get("from"),
        to_number=first.get("to"),
        agent_email=first.get("agent"),
        task_id=first.get("task"),
        last_event_at=max(all_times) if all_times else None,
        event_count=len(ids),
    )
