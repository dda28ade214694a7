"""Webhooks (§4.10): verified, published to their lane with acks=all, then answered 202.

Nothing is written to the database here: a delivery is accepted only once the broker has
confirmed it, so a 202 means the event cannot be lost; a broker outage is a 503 and the sender
retries. Deduplication happens in the first consumer (processed_webhook_events).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status
from pydantic import BaseModel, ValidationError

from sourcing.api.repositories import webhooks as repository
from sourcing.api.schemas import SalesNavWebhook, SignupWebhook, WebhookAccepted, YayWebhook
from sourcing.common.callbacks import SIGNATURE_PARAM, callback_signature_valid
from sourcing.common.config import Settings
from sourcing.common.errors import InvalidPayload, NotFound, ServiceUnavailable, Unauthorized
from sourcing.common.events import Envelope, MessagePayload
from sourcing.common.kafka.producer import BrokerUnavailable, EnvelopeProducer
from sourcing.common.messages.allocation import ExpertSignedUp
from sourcing.common.messages.calls import YayCallEventReceived
from sourcing.common.messages.enrichment import CallbackKind, ZeliqCallbackReceived
from sourcing.common.messages.sourcing import SalesNavLeadsReceived
from sourcing.common.web import (
    LeanRoute,
    NowDep,
    SessionDep,
    SettingsDep,
    error_responses,
    get_now,
    reject_unknown_query_params,
)

log = logging.getLogger("sourcing.api.webhooks")
M = TypeVar("M", bound=BaseModel)
# UUIDv5 namespace of sign-up envelope ids: one id per delivery id, so replays are deduplicated.
SIGNUP_EVENT_NAMESPACE = uuid.UUID("0c9f5a3e-51f1-4d8e-9a11-5b1e2f7c9d20")
# UUIDv5 namespace of Zeliq callback envelope ids: one id per request and kind.
ZELIQ_EVENT_NAMESPACE = uuid.UUID("7d2e4b1a-93c5-4f0e-8b6d-2a9c1e5f3b70")
router = APIRouter(prefix="/webhooks", tags=["webhooks"])

SIGNATURE_PREFIX = "sha256="


async def get_producer(request: Request) -> EnvelopeProducer:
    producer: EnvelopeProducer = request.app.state.broker
    return producer


ProducerDep = Annotated[EnvelopeProducer, Depends(get_producer)]


async def publish(
    producer: EnvelopeProducer, message: MessagePayload, *, envelope_id: str | None = None
) -> Envelope:
    try:
        return await producer.send_message(message, envelope_id=envelope_id)
    except BrokerUnavailable as exc:
        log.error("webhook not accepted: broker unavailable", extra={"lane": message.lane})
        raise ServiceUnavailable(
            "the event could not be queued; retry later",
            details={"lane": message.lane},
            headers={"Retry-After": "5"},
        ) from exc


def secret_matches(provided: str | None, expected: str) -> bool:
    return provided is not None and hmac.compare_digest(provided.encode(), expected.encode())


def verify_signature(body: bytes, signature: str | None, secret: str) -> bool:
    """Lowercase hex HMAC-SHA256 of the raw body, optionally prefixed `sha256=`."""
    if not signature:
        return False
    candidate = signature.strip()
    if candidate.lower().startswith(SIGNATURE_PREFIX):
        candidate = candidate[len(SIGNATURE_PREFIX) :]
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return secret_matches(candidate.lower(), expected)


def _signature_time(
    timestamp: str | None, *, header: str, now: float, max_age: int, skew: int
) -> datetime:
    def refuse(reason: str) -> InvalidPayload:
        return InvalidPayload(f"{header} {reason}", details={"header": header, "reason": reason})

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


EVENT_ID_MAX_LENGTH = 200


def header_parameter(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _event_id(value: str | None, *, header: str) -> str:
    event_id = (value or "").strip()
    if not event_id:
        raise InvalidPayload(f"{header} is required", details={"header": header})
    if len(value or "") > EVENT_ID_MAX_LENGTH:
        raise InvalidPayload(
            f"{header} is longer than {EVENT_ID_MAX_LENGTH} characters",
            details={"header": header, "maxLength": EVENT_ID_MAX_LENGTH},
        )
    return event_id


@dataclass(frozen=True, slots=True)
class SignedWebhook:
    """The header names of an HMAC-signed webhook: Yay's contract, reused by the sign-up site."""

    signature: str
    timestamp: str
    event_id: str

    def openapi(self, body_schema: type[BaseModel]) -> dict[str, Any]:
        """The lean route's ``openapi_extra``: its headers and JSON body."""
        return {
            "parameters": [
                header_parameter(
                    self.signature,
                    "HMAC-SHA256 of the raw body, lowercase hex (`sha256=` prefix accepted)",
                    {"type": "string"},
                ),
                header_parameter(self.timestamp, "Unix seconds of signing", {"type": "string"}),
                header_parameter(
                    self.event_id,
                    "unique delivery id",
                    {"type": "string", "maxLength": EVENT_ID_MAX_LENGTH},
                ),
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": body_schema.model_json_schema()}},
            },
        }


@dataclass(frozen=True, slots=True)
class SignedDelivery:
    body: bytes
    event_id: str
    signed_at: datetime
    received_at: datetime


YAY_HEADERS = SignedWebhook("x-yay-signature", "x-yay-timestamp", "x-yay-event-id")
SIGNUP_HEADERS = SignedWebhook("x-signup-signature", "x-signup-timestamp", "x-signup-event-id")


async def verify_delivery(
    request: Request, headers: SignedWebhook, secret_name: str
) -> SignedDelivery:
    """Signature (401) under ``<secret_name>_SECRET`` or, during a rotation, its previous value;
    then timestamp window and delivery id (400), as Yay's contract says."""
    await reject_unknown_query_params(request)
    settings: Settings = request.app.state.settings
    body = await request.body()
    signature = request.headers.get(headers.signature)
    if not any(
        verify_signature(body, signature, secret)
        for secret in settings.accepted_secrets(secret_name)
    ):
        raise Unauthorized(f"invalid or missing {headers.signature}")
    now = await get_now(request)
    signed_at = _signature_time(
        request.headers.get(headers.timestamp),
        header=headers.timestamp,
        now=now.timestamp(),
        max_age=settings.YAY_TIMESTAMP_TOLERANCE_SECONDS,
        skew=settings.YAY_FUTURE_SKEW_SECONDS,
    )
    event_id = _event_id(request.headers.get(headers.event_id), header=headers.event_id)
    return SignedDelivery(body, event_id, signed_at, now)


def parse(model: type[M], body: bytes, what: str) -> M:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise InvalidPayload(
            f"{what} failed validation",
            details={
                "errors": [
                    {"field": ".".join(map(str, e["loc"])), "message": e["msg"]}
                    for e in exc.errors()
                ]
            },
        ) from None


def _accepted(event_id: str) -> Response:
    accepted = WebhookAccepted(accepted=True, event_id=event_id)
    return Response(
        accepted.model_dump_json(by_alias=True),
        status_code=status.HTTP_202_ACCEPTED,
        media_type="application/json",
    )


async def receive_yay_webhook(request: Request) -> Response:
    delivery = await verify_delivery(request, YAY_HEADERS, "YAY_WEBHOOK")
    event = parse(YayWebhook, delivery.body, "Yay event")
    event_id, signed_at, now = delivery.event_id, delivery.signed_at, delivery.received_at
    payload = YayCallEventReceived(
        event_id=event_id,
        event_type=event.event,
        call_id=event.call_id,
        agent_email=event.agent_email,
        signature_timestamp=signed_at,
        received_at=now,
        body=event.model_dump(mode="json", by_alias=True, exclude_unset=True),
    )
    await publish(request.app.state.broker, payload)
    return _accepted(payload.event_id)


router.add_api_route(
    "/yay",
    receive_yay_webhook,
    summary="Receive a Yay call event (signed webhook)",
    methods=["POST"],
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookAccepted,
    responses=error_responses(400, 401, 413, 503),
    description=YAY_DESCRIPTION,
    openapi_extra=YAY_HEADERS.openapi(YayWebhook),
    route_class_override=LeanRoute,
)


async def require_sales_nav_secret(
    settings: SettingsDep, x_sales_nav_secret: Annotated[str | None, Header()] = None
) -> None:
    """Checked as a dependency, so an unauthenticated caller learns nothing about the body."""
    if not any(
        secret_matches(x_sales_nav_secret, secret)
        for secret in settings.accepted_secrets("SALES_NAV_WEBHOOK")
    ):
        raise Unauthorized("invalid or missing x-sales-nav-secret")


@router.post(
    "/sales-nav",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookAccepted,
    responses=error_responses(400, 401, 404, 413, 503),
    description="LinkedIn Sales Navigator leads for a project. Header `x-sales-nav-secret` must "
    "equal `SALES_NAV_WEBHOOK_SECRET`. Unknown extra fields on leads are kept.",
    summary="Receive Sales Navigator search results (signed webhook)",
)
async def receive_sales_nav_webhook(
    _: Annotated[None, Depends(require_sales_nav_secret)],
    body: SalesNavWebhook,
    producer: ProducerDep,
    session: SessionDep,
    now: NowDep,
) -> WebhookAccepted:
    if not await repository.project_exists(session, body.project_id):
        raise NotFound(
            f"project {body.project_id} not found", details={"projectId": str(body.project_id)}
        )
    payload = SalesNavLeadsReceived(
        project_id=body.project_id,
        search_url=body.search_url,
        leads=[lead.model_dump(mode="json", by_alias=True) for lead in body.leads],
        received_at=now,
    )
    envelope = await publish(producer, payload)
    return WebhookAccepted(accepted=True, event_id=envelope.id, leads=len(body.leads))


SIGNUP_DESCRIPTION = """The sign-up site: an expert completed the sign-up. Signed like the Yay
webhook: `x-signup-signature` = lowercase hex HMAC-SHA256 of the raw body keyed with
`SIGNUP_WEBHOOK_SECRET` (`sha256=` prefix accepted), `x-signup-timestamp` = Unix seconds (older
than 5 minutes or in the future is refused), `x-signup-event-id` = unique delivery id (a replay
is answered 202 and changes nothing). Body: `event` = `expert.signed_up`, `expertId` and/or
`email` (at least one; the expert is matched by id, else by primary email), optional
`signedUpAt` (ISO-8601, default: now). The consumer writes the expert's `signedUpAt`, converts
their leads, cancels their open signup-chase tasks and stops new ones; a sign-up naming no
known expert is stored and ignored."""


async def receive_signup_webhook(request: Request) -> Response:
    delivery = await verify_delivery(request, SIGNUP_HEADERS, "SIGNUP_WEBHOOK")
    event = parse(SignupWebhook, delivery.body, "sign-up event")
    payload = ExpertSignedUp(
        event_id=delivery.event_id,
        expert_id=event.expert_id,
        email=event.email.lower() if event.email else None,
        signed_up_at=event.signed_up_at or delivery.received_at,
        received_at=delivery.received_at,
    )
    await publish(
        request.app.state.broker,
        payload,
        envelope_id=str(uuid.uuid5(SIGNUP_EVENT_NAMESPACE, delivery.event_id)),
    )
    return _accepted(delivery.event_id)


router.add_api_route(
    "/signup",
    receive_signup_webhook,
    summary="Receive an expert sign-up (signed webhook)",
    methods=["POST"],
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookAccepted,
    responses=error_responses(400, 401, 413, 503),
    description=SIGNUP_DESCRIPTION,
    openapi_extra=SIGNUP_HEADERS.openapi(SignupWebhook),
    route_class_override=LeanRoute,
)


ZELIQ_DESCRIPTION = """Zeliq's enrichment callbacks. Zeliq answers only by calling back the
`callbackUrl` given with each job and signs nothing, so the URL carries our signature: the
enrichment service places each job with `<ZELIQ_CALLBACK_URL>/<requestId>/<email|phone>
?signature=<hex>`, where `signature` = lowercase hex HMAC-SHA256 of `"<requestId>:<kind>"` keyed
with `ZELIQ_CALLBACK_SECRET` (or, during a rotation, `ZELIQ_CALLBACK_PREVIOUS_SECRET`); a
missing or wrong signature is 401. `requestId` names the enrichment attempt (404 when no
attempt has it). Body: Zeliq's JSON object (`{contact:{most_probable_email,
most_probable_email_status, ...}}`), kept as received. One callback per request and kind: a
second delivery is answered 202 and changes nothing."""


async def receive_zeliq_callback(
    request_id: Annotated[uuid.UUID, Path(alias="requestId")],
    kind: CallbackKind,
    request: Request,
    producer: ProducerDep,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    signature: Annotated[str | None, Query(alias=SIGNATURE_PARAM, max_length=200)] = None,
) -> WebhookAccepted:
    secrets = (
        settings.accepted_secrets("ZELIQ_CALLBACK")
        if settings.ZELIQ_CALLBACK_SECRET is not None
        else ()
    )
    if not callback_signature_valid(signature, request_id, kind, secrets=secrets):
        raise Unauthorized(f"invalid or missing {SIGNATURE_PARAM} of the Zeliq callback URL")
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise InvalidPayload("the Zeliq callback is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidPayload("the Zeliq callback must be a JSON object")
    expert_id = await repository.callback_request_expert(session, request_id)
    if expert_id is None:
        raise NotFound(
            f"no enrichment attempt has the Zeliq request id {request_id}",
            details={"requestId": str(request_id)},
        )
    payload = ZeliqCallbackReceived(
        request_id=request_id, kind=kind, expert_id=expert_id, received_at=now, body=body
    )
    await publish(
        producer,
        payload,
        envelope_id=str(uuid.uuid5(ZELIQ_EVENT_NAMESPACE, payload.event_id)),
    )
    return WebhookAccepted(accepted=True, event_id=payload.event_id)


router.add_api_route(
    "/zeliq/{requestId}/{kind}",
    receive_zeliq_callback,
    summary="Receive a Zeliq enrichment result (signed callback URL)",
    methods=["POST"],
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookAccepted,
    responses=error_responses(400, 401, 404, 413, 503),
    description=ZELIQ_DESCRIPTION,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "object"},
                    "example": {
                        "contact": {
                            "most_probable_email": "kenji.sato@rakuten.co.jp",
                            "most_probable_email_status": "valid",
                        }
                    },
                }
            },
        }
    },
)
