"""The sandbox's side of the inbound loop: what a provider posts back after a send.

When the sandbox knows the gateway (``SANDBOX_WEBHOOK_URL``), every email accepted by the fake
SendGrid is followed, after ``SANDBOX_INBOUND_DELAY_SECONDS``, by a signed SendGrid event posted
to ``/webhooks/inbound/email`` exactly as SendGrid's signed Event Webhook would: ``delivered``,
then, by the recipient's local part (documented in the README, "Inbound events"):

- ``reply+...@`` — the expert answers (an ``inbound`` event: "Yes, happy to talk.");
- ``stop+...@`` — the expert answers "Please remove me from your list." (a stop phrase);
- ``optout+...@`` — the expert clicks unsubscribe (``unsubscribe``);
- ``bounce+...@`` — the address does not exist (a hard ``bounce``, instead of ``delivered``).

The events are signed with a development-only P-256 key whose public half is the development
default of ``EMAIL_WEBHOOK_PUBLIC_KEY``, so a development gateway verifies them like SendGrid's.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_private_key

logger = logging.getLogger("sourcing.sandbox.inbound")

# The private half of the development default EMAIL_WEBHOOK_PUBLIC_KEY (development only).
DEV_EMAIL_WEBHOOK_PRIVATE_KEY = (
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgHyMD3ZyJnfC0pTteSJV5qigWmJJYGm0JF4dgG6qDhrSh"
    "RANCAASm7WexUwLBHQoskJqS/9LF89CoG0wgxb29f4By1reCN2ygX+8McosPBXfMNm41bxsEMlrbFeuwBioY0WTTX1CY"
)
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
EMAIL_PATH = "/webhooks/inbound/email"
REPLY_TEXT = "Yes, happy to talk."
STOP_TEXT = "Please remove me from your list."


def sign_sendgrid(body: bytes, timestamp: str) -> str:
    """SendGrid's signature of ``timestamp`` + ``body`` under the development key."""
    key = load_der_private_key(base64.b64decode(DEV_EMAIL_WEBHOOK_PRIVATE_KEY), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)  # noqa: S101 - the constant above is one
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode()


def _event(kind: str, to: str, message_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "email": to,
        "timestamp": int(time.time()),
        "event": kind,
        "sg_event_id": base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="),
        "sg_message_id": f"{message_id}.filterdrecv-sandbox-1",
        **fields,
    }


def sendgrid_events(to: str, message_id: str) -> list[list[dict[str, Any]]]:
    """The deliveries SendGrid would post after sending to ``to``, in order (one batch each)."""
    local = to.split("@", 1)[0].lower()
    if local.startswith("bounce+"):
        return [[_event("bounce", to, message_id, type="bounce", reason="550 5.1.1 no such user")]]
    batches = [[_event("delivered", to, message_id)]]
    if local.startswith("reply+"):
        batches.append([_event("inbound", to, message_id, text=REPLY_TEXT)])
    elif local.startswith("stop+"):
        batches.append([_event("inbound", to, message_id, text=STOP_TEXT)])
    elif local.startswith("optout+"):
        batches.append([_event("unsubscribe", to, message_id)])
    return batches


class InboundPoster:
    """Posts the provider events of the sandbox's sends to the gateway, in the background."""

    def __init__(self, webhook_url: str | None, delay_seconds: float) -> None:
        self.webhook_url = webhook_url.rstrip("/") if webhook_url else None
        self.delay_seconds = delay_seconds
        self._tasks: set[asyncio.Task[None]] = set()

    def after_email(self, to: str, message_id: str) -> None:
        if self.webhook_url is None:
            return
        task = asyncio.create_task(self._post_email(sendgrid_events(to, message_id)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post_email(self, batches: Sequence[list[dict[str, Any]]]) -> None:
        async with httpx.AsyncClient(timeout=10.0) as client:
            for batch in batches:
                await asyncio.sleep(self.delay_seconds)
                body = json.dumps(batch).encode()
                timestamp = str(int(time.time()))
                headers = {
                    "content-type": "application/json",
                    SIGNATURE_HEADER: sign_sendgrid(body, timestamp),
                    TIMESTAMP_HEADER: timestamp,
                }
                try:
                    response = await client.post(
                        f"{self.webhook_url}{EMAIL_PATH}", content=body, headers=headers
                    )
                except httpx.HTTPError as exc:
                    logger.warning("inbound email event not delivered: %s", exc)
                    return
                if response.status_code >= 300:
                    logger.warning(
                        "inbound email event refused: %s %s", response.status_code, response.text
                    )
