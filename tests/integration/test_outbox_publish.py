"""publish() stages a message's outbox row on the lane, with the key, its contract declares."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.events import Envelope
from sourcing.common.kafka.outbox import publish
from sourcing.common.messages.allocation import (
    CallTaskRequested,
    CallTaskTrigger,
    ExpertSignedUp,
)
from sourcing.common.models import OutboxMessage

pytestmark = pytest.mark.integration

NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


async def _row(session: AsyncSession, envelope: Envelope) -> OutboxMessage:
    stmt = select(OutboxMessage).where(OutboxMessage.envelope["id"].as_string() == envelope.id)
    return (await session.execute(stmt)).scalar_one()


async def test_publish_writes_the_row_with_the_declared_lane_and_key(
    session: AsyncSession,
) -> None:
    project, expert = uuid.uuid4(), uuid.uuid4()
    message = CallTaskRequested(
        project_id=project, expert_id=expert, trigger=CallTaskTrigger.OPERATOR_CONTACT
    )
    envelope = await publish(session, message, correlation_id="corr-1")
    row = await _row(session, envelope)
    assert (row.topic, row.key) == ("call-allocation", str(expert))
    assert row.published_at is None
    assert row.envelope["type"] == "call-task.requested.v1"
    assert row.envelope["correlation_id"] == "corr-1"
    assert row.envelope["payload"] == {
        "projectId": str(project),
        "expertId": str(expert),
        "leadId": None,
        "trigger": "operator-contact",
    }
    assert row.headers == {
        "message-id": envelope.id,
        "message-type": "call-task.requested.v1",
        "correlation-id": "corr-1",
    }


async def test_publish_keeps_a_derived_envelope_id_and_time(session: AsyncSession) -> None:
    message = ExpertSignedUp(
        event_id="delivery-1", email="ada@example.com", signed_up_at=NOW, received_at=NOW
    )
    envelope = await publish(session, message, envelope_id="derived-1", occurred_at=NOW)
    assert envelope.id == "derived-1"
    row = await _row(session, envelope)
    # No expert id: the contract's key falls back to the email.
    assert (row.topic, row.key) == ("call-allocation", "ada@example.com")
    assert Envelope.model_validate(row.envelope).occurred_at == NOW
