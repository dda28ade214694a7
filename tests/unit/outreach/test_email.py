"""Email through SendGrid v3 mail/send: Bearer, JSON, 202 with X-Message-Id."""

from __future__ import annotations

import httpx
import pytest
import respx

from sourcing.common.http import ExternalHttp
from sourcing.common.models.enums import Channel
from sourcing.outreach.channels import ChannelRejected, build_channels
from tests.unit.outreach.support import json_body, make_settings, outbound, recording

URL = "https://api.sendgrid.com/v3/mail/send"


async def test_mail_send_request_and_receipt(network: respx.MockRouter, http: ExternalHttp) -> None:
    route = network.post(URL).mock(
        return_value=httpx.Response(202, headers={"X-Message-Id": "W86EgYT6SQKk0lRflfLRsA"})
    )
    settings = make_settings(EMAIL_FROM_ADDRESS="research@example.com", EMAIL_FROM_NAME="Research")
    message = outbound(
        Channel.EMAIL, "dana@example.com", subject="Your expertise", idempotency_key="msg-1"
    )
    receipt = await build_channels(settings, http)[Channel.EMAIL].send(message)

    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer SG.test-key"
    assert json_body(request) == {
        "personalizations": [{"to": [{"email": "dana@example.com"}]}],
        "from": {"email": "research@example.com", "name": "Research"},
        "subject": "Your expertise",
        "content": [{"type": "text/plain", "value": message.body}],
        "custom_args": {"message_id": "msg-1"},
    }
    assert receipt.provider == "sendgrid"
    assert receipt.provider_message_id == "W86EgYT6SQKk0lRflfLRsA"
    assert receipt.status == "queued"


async def test_default_subject_when_the_message_has_none(
    network: respx.MockRouter, http: ExternalHttp
) -> None:
    route = network.post(URL).mock(return_value=httpx.Response(202))
    settings = make_settings(EMAIL_DEFAULT_SUBJECT="Expert call")
    await build_channels(settings, http)[Channel.EMAIL].send(outbound(Channel.EMAIL, "a@b.example"))
    assert json_body(route.calls.last.request)["subject"] == "Expert call"


async def test_bad_address_is_rejected_with_sendgrids_error(
    network: respx.MockRouter, http: ExternalHttp
) -> None:
    network.post(URL).mock(return_value=httpx.Response(400, json=recording("sendgrid_error_400")))
    with pytest.raises(ChannelRejected) as raised:
        await build_channels(make_settings(), http)[Channel.EMAIL].send(
            outbound(Channel.EMAIL, "not-an-address")
        )
    assert raised.value.status == 400
    assert "Does not contain a valid address." in str(raised.value)
