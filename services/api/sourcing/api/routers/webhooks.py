"""Webhooks (§4.10): verified, published to their lane with acks=all, then answered 202.

Nothing is written to the database here: a delivery is accepted only once the broker has
confirmed it, so a 202 means the event cannot be lost; a broker outage is a 503 and the sender
retries. Deduplication happens in the first consumer (processed_webhook_events).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, status
from pydantic import ValidationError

from sourcing.api.deps import NowDep, SessionDep, SettingsDep
from sourcing.api.errors import error_responses
from sourcing.api.repositories import projects as project_repository
from sourcing.api.schemas import SalesNavWebhook, WebhookAccepted, YayWebhook
from sourcing.common.errors import InvalidPayload, NotFound, ServiceUnavailable, Unauthorized
from sourcing.common.events import Envelope
from sourcing.common.kafka.producer import BrokerUnavailable, EnvelopeProducer
from sourcing.common.messages.calls import YayCallEventReceived
from sourcing.common.messages.sourcing import SalesNavLeadsReceived

log = logging.getLogger("sourcing.api.webhooks")
router = APIRouter(prefix="/webhooks", tags=["webhooks"])

SIGNATURE_PREFIX = "sha256="


async def get_producer(request: Request) -> EnvelopeProducer:
    producer: EnvelopeProducer = request.app.state.broker
    return producer


ProducerDep = Annotated[EnvelopeProducer, Depends(get_producer)]


async def _publish(producer: EnvelopeProducer, lane: str, envelope: Envelope, key: str) -> None:
    try:
        await producer.send_envelope(lane, envelope, key=key)
    except BrokerUnavailable as exc:
        log.error("webhook not accepted: broker unavailable", extra={"lane": lane})
        raise ServiceUnavailable(
            "the event could not be queued; retry later",
            details={"lane": lane},
            headers={"Retry-After": "5"},
        ) from exc


def _secret_matches(provided: str | None, expected: str) -> bool:
    return provided is not None and hmac.compare_digest(provided.encode(), expected.encode())


def verify_yay_signature(body: bytes, signature: str | None, secret: str) -> bool:
    """Lowercase hex HMAC-SHA256 of the raw body, optionally prefixed `sha256=`."""
    if not signature:
        return False
    candidate = signature.strip()
    if candidate.lower().startswith(SIGNATURE_PREFIX):
        candidate = candidate[len(SIGNATURE_PREFIX) :]
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return _secret_matches(candidate.lower(), expected)


def _signature_time(timestamp: str | None, *, now: float, max_age: int, skew: int) -> datetime:
    def refuse(reason: str) -> InvalidPayload:
        return InvalidPayload(
            f"x-yay-timestamp {reason}", details={"header": "x-yay-timestamp", "reason": reason}
        )

    if not timestamp:
        raise refuse("is missing")
    try:
        seconds = float(timestamp)
    except ValueError:
        raise refuse("is not a Unix timestamp") from None
    if not seconds >= now - max_age:  # `not >=` also refuses NaN, which compares false
        raise refuse(f"is older than {max_age} seconds")
    if seconds > now + skew:
        raise refuse("is in the future")
    return datetime.fromtimestamp(seconds, UTC)


YAY_DESCRIPTION = """Yay.com call events. Yay publishes no webhook documentation; this contract is
ours. Headers: `x-yay-signature` = lowercase hex HMAC-SHA256 of the raw body keyed with
`YAY_WEBHOOK_SECRET` (a `sha256=` prefix is accepted), `x-yay-timestamp` = Unix seconds (older
than 5 minutes or in the future is refused), `x-yay-event-id` = unique delivery id (a replay is
answered 202 and changes nothing). Processed types: call.started, call.ringing, call.answered,
call.ended, call.failed, call.recording_ready; others are stored and ignored."""


@router.post(
    "/yay",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookAccepted,
    responses=error_responses(400, 401, 413, 503),
    description=YAY_DESCRIPTION,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": YayWebhook.model_json_schema()}},
        }
    },
)
async def yay_webhook(
    request: Request,
    settings: SettingsDep,
    producer: ProducerDep,
    now: NowDep,
    x_yay_signature: Annotated[str | None, Header()] = None,
    x_yay_timestamp: Annotated[str | None, Header()] = None,
    x_yay_event_id: Annotated[str | None, Header(max_length=200)] = None,
) -> WebhookAccepted:
    body = await request.body()
    assert settings.YAY_WEBHOOK_SECRET is not None
    if not verify_yay_signature(
        body, x_yay_signature, settings.YAY_WEBHOOK_SECRET.get_secret_value()
    ):
        raise Unauthorized("invalid or missing x-yay-signature")
    signed_at = _signature_time(
        x_yay_timestamp,
        now=now.timestamp(),
        max_age=settings.YAY_TIMESTAMP_TOLERANCE_SECONDS,
        skew=settings.YAY_FUTURE_SKEW_SECONDS,
    )
    if not x_yay_event_id or not x_yay_event_id.strip():
        raise InvalidPayload("x-yay-event-id is required", details={"header": "x-yay-event-id"})
    try:
        event = YayWebhook.model_validate_json(body)
    except ValidationError as exc:
        raise InvalidPayload(
            "Yay event failed validation",
            details={
                "errors": [
                    {"field": ".".join(map(str, e["loc"])), "message": e["msg"]}
                    for e in exc.errors()
                ]
            },
        ) from None
    caller_key = (event.agent_email or event.call_id).lower()
    payload = YayCallEventReceived(
        event_id=x_yay_event_id.strip(),
        event_type=event.event,
        call_id=event.call_id,
        agent_email=event.agent_email,
        signature_timestamp=signed_at,
        received_at=now,
        body=event.model_dump(mode="json", by_alias=True, exclude_unset=True),
    )
    await _publish(
        producer,
        "yay-call-events",
        Envelope.new(YayCallEventReceived.message_type, payload),
        caller_key,
    )
    return WebhookAccepted(accepted=True, event_id=payload.event_id)


async def require_sales_nav_secret(
    settings: SettingsDep, x_sales_nav_secret: Annotated[str | None, Header()] = None
) -> None:
    """Checked as a dependency, so an unauthenticated caller learns nothing about the body."""
    assert settings.SALES_NAV_WEBHOOK_SECRET is not None
    if not _secret_matches(
        x_sales_nav_secret, settings.SALES_NAV_WEBHOOK_SECRET.get_secret_value()
    ):
        raise Unauthorized("invalid or missing x-sales-nav-secret")


@router.post(
    "/sales-nav",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookAccepted,
    responses=error_responses(400, 401, 404, 413, 503),
    description="LinkedIn Sales Navigator leads for a project. Header `x-sales-nav-secret` must "
    "equal `SALES_NAV_WEBHOOK_SECRET`. Unknown extra fields on leads are kept.",
)
async def sales_nav_webhook(
    _: Annotated[None, Depends(require_sales_nav_secret)],
    body: SalesNavWebhook,
    producer: ProducerDep,
    session: SessionDep,
    now: NowDep,
) -> WebhookAccepted:
    if await project_repository.get_project(session, body.project_id) is None:
        raise NotFound(
            f"project {body.project_id} not found", details={"projectId": str(body.project_id)}
        )
    payload = SalesNavLeadsReceived(
        project_id=body.project_id,
        search_url=body.search_url,
        leads=[lead.model_dump(mode="json", by_alias=True) for lead in body.leads],
        received_at=now,
    )
    envelope = Envelope.new(SalesNavLeadsReceived.message_type, payload)
    await _publish(producer, "sales-nav-ingestion", envelope, str(body.project_id))
    return WebhookAccepted(accepted=True, event_id=envelope.id, leads=len(body.leads))
