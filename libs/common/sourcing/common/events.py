"""The message envelope every Kafka message carries, and the registry of payload schemas.

Wire format (JSON, UTF-8)::

    {"id": "<uuid4>", "type": "performance.recalculate.v1", "correlation_id": "...",
     "occurred_at": "2025-01-01T00:00:00Z", "attempt": 1, "payload": {"callerId": "..."}}

Envelope keys are snake_case; payload keys are the manual's camelCase names (payload models
declare snake_case attributes and serialise by alias). A message type names its payload model
through :func:`register_message`, so agents hand their handlers a validated model, never a dict.

Routing is declared there too: a message type names its lane and the payload attribute its
Kafka key is read from, so :func:`route` is the one answer to "which topic, which key" for the
outbox (:func:`sourcing.common.kafka.outbox.publish`) and the direct producers alike.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from pydantic.alias_generators import to_camel

from sourcing.common.clock import utc_now
from sourcing.common.logging import correlation_id_var, new_correlation_id
from sourcing.common.topics import lane as lane_named

MESSAGE_TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+\.v[0-9]+$")


class MessageDecodeError(ValueError):
    """The bytes are not an envelope (not JSON, not UTF-8, or missing/invalid envelope fields)."""


class UnknownMessageType(LookupError):
    """The envelope's type has no registered payload model."""


class Envelope(BaseModel):
    """One Kafka message: identity, tracing and delivery metadata around a payload."""

    # Unknown envelope keys are ignored so a newer producer never dead-letters on an older consumer.
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1, max_length=200)
    type: str = Field(pattern=MESSAGE_TYPE_PATTERN.pattern, max_length=200)
    correlation_id: str = Field(min_length=1, max_length=200)
    occurred_at: AwareDatetime = Field(default_factory=utc_now)
    attempt: int = Field(default=1, ge=1)
    payload: dict[str, Any] = Field(default_factory=dict)

    @field_validator("occurred_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @classmethod
    def new(
        cls,
        type: str,
        payload: BaseModel | Mapping[str, Any],
        *,
        correlation_id: str | None = None,
    ) -> Envelope:
        """A fresh envelope (new id, now, attempt 1).

        The correlation id defaults to the one of the request or message being handled
        (the logging contextvar), else a new one. A payload model is serialised by alias
        (camelCase); a registered type given the wrong model is a programming error, and a
        dict given for a registered type is validated against its model.
        """
        registered = MESSAGE_TYPES.get(type)
        if isinstance(payload, BaseModel):
            if registered is not None and not isinstance(payload, registered):
                raise TypeError(
                    f"message type {type!r} carries {registered.__name__}, "
                    f"not {payload.__class__.__name__}"
                )
        elif registered is not None:
            # A dict for a registered type is validated (and normalised to camelCase) here,
            # so a bad message fails at its producer rather than in a consumer's dead letters.
            payload = registered.model_validate(payload)
        body: dict[str, Any] = (
            payload.model_dump(mode="json", by_alias=True)
            if isinstance(payload, BaseModel)
            else dict(payload)
        )
        return cls(
            type=type,
            correlation_id=correlation_id or correlation_id_var.get() or new_correlation_id(),
            payload=body,
        )

    @classmethod
    def of(
        cls,
        message: MessagePayload,
        *,
        correlation_id: str | None = None,
        id: str | None = None,
        occurred_at: datetime | None = None,
    ) -> Envelope:
        """:meth:`new` for a registered message; ``id`` and ``occurred_at`` replace the fresh
        ones when the producer derives them (an id derived from a delivery id, for dedup)."""
        envelope = cls.new(message.message_type, message, correlation_id=correlation_id)
        update: dict[str, Any] = {}
        if id is not None:
            update["id"] = id
        if occurred_at is not None:
            update["occurred_at"] = occurred_at.astimezone(UTC)
        return envelope.model_copy(update=update) if update else envelope

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview | None) -> Envelope:
        """Parse an envelope; anything that is not one raises :class:`MessageDecodeError`."""
        if data is None:
            raise MessageDecodeError("message has no value (tombstone)")
        try:
            return cls.model_validate_json(bytes(data))
        except ValidationError as exc:
            raise MessageDecodeError(f"not a valid envelope: {exc}") from exc

    def next_attempt(self) -> Envelope:
        """The same message, redelivered (e.g. re-driven from the dead-letter table)."""
        return self.model_copy(update={"attempt": self.attempt + 1})

    def payload_model(self) -> MessagePayload:
        """The payload validated against its registered model.

        Raises :class:`UnknownMessageType` or pydantic's ``ValidationError``.
        """
        return payload_model_for(self.type).model_validate(self.payload)


# --- payload schemas ------------------------------------------------------------------------


class MessagePayload(BaseModel):
    """Base of every payload model: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="ignore",
    )

    message_type: ClassVar[str] = ""
    # The lane (topic) this message travels on, and the attribute (a field or a property) its
    # Kafka key is read from: declared by register_message, read by route().
    lane: ClassVar[str] = ""
    key_attribute: ClassVar[str] = ""


@dataclass(frozen=True, slots=True)
class Route:
    lane: str
    key: str | None


P = TypeVar("P", bound=MessagePayload)

MESSAGE_TYPES: dict[str, type[MessagePayload]] = {}


def register_message(message_type: str, *, lane: str, key: str) -> Callable[[type[P]], type[P]]:
    """Class decorator on a payload model:
    ``@register_message("enrichment.requested.v1", lane="enrichment", key="expert_id")``.

    ``key`` names the attribute (a field, or a property for a derived key) whose value,
    as text, is the message's Kafka key.
    """
    if not MESSAGE_TYPE_PATTERN.match(message_type):
        raise ValueError(f"message type {message_type!r} must look like 'domain.event.v1'")
    lane_named(lane)  # an unknown lane fails at import, not at the first publish

    def decorator(model: type[P]) -> type[P]:
        existing = MESSAGE_TYPES.get(message_type)
        if existing is not None and existing is not model:
            raise ValueError(
                f"message type {message_type!r} already registered to {existing.__name__}"
            )
        if key not in model.model_fields and not isinstance(getattr(model, key, None), property):
            raise ValueError(f"{model.__name__} has no field or property {key!r} to key by")
        model.message_type = message_type
        model.lane = lane
        model.key_attribute = key
        MESSAGE_TYPES[message_type] = model
        return model

    return decorator


def route(message: MessagePayload) -> Route:
    """The lane and the Kafka key ``message`` is published with, as its type declares."""
    if not message.message_type:
        raise TypeError(f"{type(message).__name__} is not a registered message")
    value = getattr(message, message.key_attribute)
    return Route(lane=message.lane, key=None if value is None else str(value))


def message_types_on(lane: str) -> list[str]:
    """The registered message types that travel on ``lane``, sorted."""
    return sorted(t for t, model in MESSAGE_TYPES.items() if model.lane == lane)


def payload_model_for(message_type: str) -> type[MessagePayload]:
    try:
        return MESSAGE_TYPES[message_type]
    except KeyError:
        raise UnknownMessageType(f"no payload model registered for {message_type!r}") from None


@register_message("performance.recalculate.v1", lane="performance", key="caller_id")
class PerformanceRecalculate(MessagePayload):
    """Recompute one caller's rolling performance snapshot (scheduler, call validation)."""

    caller_id: uuid.UUID


@register_message("call-allocation.assign-current.v1", lane="call-allocation", key="caller_id")
class CallAllocationAssignCurrent(MessagePayload):
    """Give one caller their next call task if they have none in progress."""

    caller_id: uuid.UUID


@register_message("documentation.generate.v1", lane="documentation", key="job_id")
class DocumentationGenerate(MessagePayload):
    """Generate the artifacts of one documentation job."""

    job_id: uuid.UUID


DEAD_LETTER_MESSAGE_TYPE = "dead-letter.recorded.v1"


@register_message(DEAD_LETTER_MESSAGE_TYPE, lane="dead-letter", key="origin_topic")
class DeadLetter(MessagePayload):
    """A message a consumer gave up on, with everything needed to analyse and re-drive it.

    ``original_envelope`` is the decoded envelope when the bytes were one; otherwise
    ``original_value_base64`` holds the raw value. (origin_topic, origin_partition,
    origin_offset) identifies the failed message uniquely: the sink's unique key.
    """

    consumer: str
    origin_topic: str
    origin_partition: int
    origin_offset: int
    origin_key: str | None = None
    origin_headers: dict[str, str] = Field(default_factory=dict)
    original_envelope: dict[str, Any] | None = None
    original_value_base64: str | None = None
    original_type: str | None = None
    original_id: str | None = None
    error: str
    error_type: str
    stack: str
    attempts: int = Field(ge=0)
    failed_at: AwareDatetime
    correlation_id: str | None = None


__all__ = [
    "DEAD_LETTER_MESSAGE_TYPE",
    "MESSAGE_TYPES",
    "CallAllocationAssignCurrent",
    "DeadLetter",
    "DocumentationGenerate",
    "Envelope",
    "MessageDecodeError",
    "MessagePayload",
    "PerformanceRecalculate",
    "Route",
    "UnknownMessageType",
    "message_types_on",
    "payload_model_for",
    "register_message",
    "route",
    "utc_now",
]
