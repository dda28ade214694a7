"""Every message contract declares its lane and key; route() is the one answer for producers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

import sourcing.common.messages  # noqa: F401  (registers every message type)
from sourcing.common.events import (
    MESSAGE_TYPES,
    DeadLetter,
    Envelope,
    MessagePayload,
    PerformanceRecalculate,
    Route,
    register_message,
    route,
)
from sourcing.common.messages.allocation import ExpertSignedUp
from sourcing.common.messages.calls import YayCallEventReceived
from sourcing.common.messages.outreach import ScreeningFollowUpRequested, SheetSyncRequested
from sourcing.common.messages.sourcing import LeadReceived
from sourcing.common.topics import LANES_BY_NAME
from sourcing.people.identity import person_identity

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("message_type", sorted(MESSAGE_TYPES))
def test_every_message_declares_a_known_lane_and_a_key(message_type: str) -> None:
    model = MESSAGE_TYPES[message_type]
    assert model.lane in LANES_BY_NAME
    assert model.key_attribute
    assert model.key_attribute in model.model_fields or isinstance(
        getattr(model, model.key_attribute), property
    )


def test_a_field_key_is_the_field_as_text() -> None:
    caller = uuid.uuid4()
    assert route(PerformanceRecalculate(caller_id=caller)) == Route("performance", str(caller))
    project, expert = uuid.uuid4(), uuid.uuid4()
    # One project's sheet rows are refreshed in order, whichever expert changed.
    sync = SheetSyncRequested(project_id=project, entity_type="expert", entity_id=expert)
    assert route(sync) == Route("google-sheets-sync", str(project))
    follow_up = ScreeningFollowUpRequested(response_id=uuid.uuid4(), expert_id=expert)
    assert route(follow_up) == Route("screening", str(expert))


def _lead(*, linkedin_url: str | None = None, email: str | None = None) -> LeadReceived:
    return LeadReceived(
        project_id=uuid.uuid4(),
        search_id=uuid.uuid4(),
        name="Ada Lovelace",
        company="Analytical Engines",
        received_at=NOW,
        linkedin_url=linkedin_url,
        email=email,
        identity=person_identity(linkedin_url, email),
    )


def test_a_lead_is_keyed_by_the_normalised_person_identity() -> None:
    by_url = _lead(linkedin_url="https://www.LinkedIn.com/in/ada/", email="ada@example.com")
    assert route(by_url) == Route("lead-ingestion", "https://www.linkedin.com/in/ada")
    by_email = _lead(email="Ada@Example.com")
    assert route(by_email) == Route("lead-ingestion", "ada@example.com")


def test_a_yay_event_is_keyed_by_agent_email_else_call_id_lowercased() -> None:
    fields = {
        "event_id": "e1",
        "event_type": "call.ended",
        "signature_timestamp": NOW,
        "received_at": NOW,
        "body": {},
    }
    with_agent = YayCallEventReceived(call_id="C1", agent_email="Agent@Example.com", **fields)
    assert route(with_agent) == Route("yay-call-events", "agent@example.com")
    without_agent = YayCallEventReceived(call_id="CALL-9", **fields)
    assert route(without_agent) == Route("yay-call-events", "call-9")


def test_a_signup_is_keyed_by_expert_id_else_email() -> None:
    expert = uuid.uuid4()
    by_id = ExpertSignedUp(
        event_id="d1", expert_id=expert, email="x@example.com", signed_up_at=NOW, received_at=NOW
    )
    assert route(by_id) == Route("call-allocation", str(expert))
    by_email = ExpertSignedUp(
        event_id="d2", email="x@example.com", signed_up_at=NOW, received_at=NOW
    )
    assert route(by_email) == Route("call-allocation", "x@example.com")


def test_a_dead_letter_is_keyed_by_its_origin_topic() -> None:
    dead = DeadLetter(
        consumer="c",
        origin_topic="dev.performance",
        origin_partition=0,
        origin_offset=7,
        error="boom",
        error_type="ValueError",
        stack="",
        attempts=1,
        failed_at=NOW,
    )
    assert route(dead) == Route("dead-letter", "dev.performance")


def test_registration_refuses_an_unknown_lane_or_key() -> None:
    with pytest.raises(KeyError, match="unknown lane"):
        register_message("test.nowhere.v1", lane="nowhere", key="caller_id")

    class Keyless(MessagePayload):
        caller_id: uuid.UUID

    with pytest.raises(ValueError, match="no field or property 'expert_id'"):
        register_message("test.keyless.v1", lane="performance", key="expert_id")(Keyless)
    assert "test.keyless.v1" not in MESSAGE_TYPES


def test_an_unregistered_payload_has_no_route() -> None:
    class Unregistered(MessagePayload):
        caller_id: uuid.UUID

    with pytest.raises(TypeError, match="not a registered message"):
        route(Unregistered(caller_id=uuid.uuid4()))


def test_an_envelope_of_a_message_carries_its_type_and_any_derived_id() -> None:
    message = PerformanceRecalculate(caller_id=uuid.uuid4())
    fresh = Envelope.of(message, correlation_id="corr")
    assert (fresh.type, fresh.correlation_id) == ("performance.recalculate.v1", "corr")
    assert fresh.payload == {"callerId": str(message.caller_id)}
    derived = Envelope.of(message, id="derived-id", occurred_at=NOW)
    assert (derived.id, derived.occurred_at) == ("derived-id", NOW)
