"""Dead letters (manual §13): list failed messages and replay them.

Replay semantics: the original envelope is republished with the SAME id (``attempt`` + 1) to
its original lane, through the outbox (same transaction as the replay record). Consumers
deduplicate on (consumer, envelope id) in ``processed_events``; a dead-lettered message was
never recorded there by the consumer that failed on it, so that consumer processes it again,
while any other consumer group of the lane that already processed it skips it. Replaying the
same dead letter twice is therefore harmless: the second copy is a duplicate.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import ValidationError

from sourcing.api.repositories import ops as repository
from sourcing.api.schemas_ops import DeadLetterOut, DeadLetterPage, ReplayAccepted, ReplayRequest
from sourcing.common.config import Settings
from sourcing.common.errors import Conflict, InvalidPayload, NotFound
from sourcing.common.events import Envelope
from sourcing.common.kafka.outbox import add_to_outbox
from sourcing.common.logging import current_correlation_id
from sourcing.common.messages.scheduler import (
    DEAD_LETTER_CONSUMER_HEADER,
    DEAD_LETTER_REPLAYED_EVENT,
)
from sourcing.common.models import DeadLetterJob, DeadLetterReplay, SystemEvent
from sourcing.common.models.enums import ReplayStatus
from sourcing.common.topics import LANES_BY_NAME
from sourcing.common.web import (
    AdminPrincipal,
    CursorQuery,
    LimitQuery,
    NowDep,
    SessionDep,
    SettingsDep,
    StaffPrincipal,
    decode_cursor,
    encode_cursor,
    error_responses,
)

router = APIRouter(prefix="/api/v1/dead-letters", tags=["dead letters"])


def _instant(value: str, *, name: str, end: bool) -> datetime:
    """An ISO date (a whole UTC day: ``to`` includes it) or date-time (naive = UTC)."""
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidPayload(
            f"{name} must be an ISO 8601 date or date-time",
            details={"field": name, "value": value},
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _topics(topic: str, settings: Settings) -> tuple[str, ...]:
    """A lane name matches its topic in this environment; any other value matches as is."""
    if topic in LANES_BY_NAME:
        return tuple(dict.fromkeys((settings.topic(topic), topic)))
    return (topic,)


def _out(row: DeadLetterJob) -> DeadLetterOut:
    headers = dict(row.headers or {})
    consumer = headers.pop(DEAD_LETTER_CONSUMER_HEADER, None)
    fields = {
        name: getattr(row, name)
        for name in DeadLetterOut.model_fields
        if name not in ("headers", "consumer")
    }
    return DeadLetterOut.model_validate(
        {**fields, "headers": headers, "consumer": consumer if isinstance(consumer, str) else None}
    )


def _not_found(dead_letter_id: uuid.UUID) -> NotFound:
    return NotFound(
        f"dead letter {dead_letter_id} not found", details={"deadLetterId": str(dead_letter_id)}
    )


def _lane_of(origin_topic: str, settings: Settings) -> str | None:
    """The lane of a topic of this environment (``KAFKA_TOPIC_PREFIX`` + lane name)."""
    prefix = settings.KAFKA_TOPIC_PREFIX
    if not origin_topic.startswith(prefix):
        return None
    name = origin_topic[len(prefix) :]
    return name if name in LANES_BY_NAME else None


@router.get(
    "",
    response_model=DeadLetterPage,
    responses=error_responses(400, 401, 403),
    summary="List dead letters, newest first",
)
async def list_dead_letters(
    session: SessionDep,
    settings: SettingsDep,
    _: StaffPrincipal,
    topic: Annotated[
        str | None,
        Query(min_length=1, max_length=249, description="Origin lane (or full topic name)"),
    ] = None,
    failed_from: Annotated[
        str | None,
        Query(alias="from", max_length=40, description="ISO date or date-time, inclusive"),
    ] = None,
    failed_to: Annotated[
        str | None,
        Query(
            alias="to",
            max_length=40,
            description="ISO date-time (exclusive) or date (that whole day included)",
        ),
    ] = None,
    include_archived: Annotated[bool, Query(alias="includeArchived")] = False,
    limit: LimitQuery = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    cursor: CursorQuery = None,
) -> DeadLetterPage:
    if cursor is not None and offset:
        raise InvalidPayload(
            "use either cursor or offset, not both", details={"fields": ["cursor", "offset"]}
        )
    where = repository.DeadLetterFilter(
        topics=_topics(topic, settings) if topic else (),
        failed_from=_instant(failed_from, name="from", end=False) if failed_from else None,
        failed_to=_instant(failed_to, name="to", end=True) if failed_to else None,
        include_archived=include_archived,
    )
    rows = await repository.list_dead_letters(
        session,
        where,
        limit=limit,
        offset=offset,
        after=decode_cursor(cursor),
    )
    total = await repository.count_dead_letters(session, where)
    return DeadLetterPage(
        items=[_out(row) for row in rows],
        limit=limit,
        offset=offset,
        total=total,
        next_cursor=(
            encode_cursor(rows[-1].failed_at, rows[-1].id) if len(rows) == limit else None
        ),
    )


@router.get(
    "/{dead_letter_id}",
    response_model=DeadLetterOut,
    responses=error_responses(400, 401, 403, 404),
    summary="One dead letter: its original envelope, error and replay count",
)
async def get_dead_letter(
    dead_letter_id: uuid.UUID, session: SessionDep, _: StaffPrincipal
) -> DeadLetterOut:
    row = await repository.get_dead_letter(session, dead_letter_id)
    if row is None:
        raise _not_found(dead_letter_id)
    return _out(row)


@router.post(
    "/{dead_letter_id}/replay",
    response_model=ReplayAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(400, 401, 403, 404, 409),
    summary="Republish a dead letter's original envelope to its original lane",
)
async def replay_dead_letter(
    dead_letter_id: uuid.UUID,
    session: SessionDep,
    settings: SettingsDep,
    principal: AdminPrincipal,
    now: NowDep,
    body: ReplayRequest | None = None,
) -> ReplayAccepted:
    row = await repository.get_dead_letter(session, dead_letter_id, for_update=True)
    if row is None:
        raise _not_found(dead_letter_id)
    if row.payload is None:
        raise Conflict(
            "this dead letter cannot be replayed: its original message was not a decodable "
            "envelope (only the raw bytes are kept, base64, in rawValue); publish a corrected "
            "message instead",
            details={"deadLetterId": str(row.id), "reason": "undecodable_original"},
        )
    try:
        original = Envelope.model_validate(row.payload)
    except ValidationError as exc:
        raise Conflict(
            f"this dead letter cannot be replayed: its original envelope is invalid ({exc})",
            details={"deadLetterId": str(row.id), "reason": "invalid_envelope"},
        ) from None
    lane = _lane_of(row.origin_topic, settings)
    if lane is None:
        raise Conflict(
            f"origin topic {row.origin_topic!r} is not a lane of this environment "
            f"(topic prefix {settings.KAFKA_TOPIC_PREFIX!r})",
            details={"deadLetterId": str(row.id), "reason": "foreign_topic"},
        )
    correlation_id = current_correlation_id()
    replayed = original.next_attempt()
    # Not publish(): a replay re-sends the recorded envelope where it failed, with its recorded
    # key, even when its payload no longer validates (that may be why it failed).
    await add_to_outbox(session, lane, replayed, key=row.message_key)
    replay = DeadLetterReplay(
        id=uuid.uuid4(),
        dead_letter_job_id=row.id,
        target_topic=settings.topic(lane),
        envelope_id=replayed.id,
        status=ReplayStatus.REQUESTED.value,
        requested_by=principal.user_id,
        reason=body.reason if body else None,
        correlation_id=correlation_id,
    )
    session.add(replay)
    row.replay_count += 1
    row.last_replayed_at = now
    session.add(
        SystemEvent(
            type=DEAD_LETTER_REPLAYED_EVENT,
            entity_type="dead_letter_job",
            entity_id=row.id,
            actor=principal.user_id,
            correlation_id=correlation_id,
            data={
                "replayId": str(replay.id),
                "lane": lane,
                "envelopeId": replayed.id,
                "attempt": replayed.attempt,
                "reason": replay.reason,
            },
        )
    )
    await session.flush()
    return ReplayAccepted(
        replay_id=replay.id,
        dead_letter_id=row.id,
        envelope_id=replayed.id,
        topic=settings.topic(lane),
    )
