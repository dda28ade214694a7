"""SMS and phone through Twilio: form-encoded Messages.json / Calls.json with Basic auth."""

from __future__ import annotations

import httpx
import pytest
import respx

from sourcing.common.http import ExternalHttp
from sourcing.common.models.enums import Channel, DeliveryStatus
from sourcing.outreach.channels import ChannelRejected, build_channels
from tests.unit.outreach.support import (
    ACCOUNT_SID,
    basic_auth,
    form_fields,
    make_settings,
    outbound,
    recording,
)

ACCOUNT = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}"


async def test_sms_is_a_form_post_with_account_basic_auth(
    network: respx.MockRouter, http: ExternalHttp
) -> None:
    route = network.post(f"{ACCOUNT}/Messages.json").mock(
        return_value=httpx.Response(201, json=recording("twilio_message_created"))
    )
    adapter = build_channels(make_settings(TWILIO_FROM_NUMBER="+15005550006"), http)[Channel.SMS]
    receipt = await adapter.send(outbound(Channel.SMS, "+14155550100", body="Hello & welcome"))

    request = route.calls.last.request
    assert request.method == "POST"
    assert basic_auth(request) == (ACCOUNT_SID, "twilio-auth-token")
    assert form_fields(request) == {
        "To": "+14155550100",
        "From": "+15005550006",
        "Body": "Hello & welcome",
    }
    assert receipt.provider == "twilio"
    assert receipt.provider_message_id == "SM1f0e8ae6ade43cb3c0ce4525424e404f"
    assert receipt.status == "queued"
    assert receipt.delivery_status is DeliveryStatus.QUEUED
    assert receipt.raw["to"] == "+14155550100"


async def test_sms_uses_api_key_pair_and_messaging_service_when_configured(
    network: respx.MockRouter, http: ExternalHttp
) -> None:
    route = network.post(f"{ACCOUNT}/Messages.json").mock(
        return_value=httpx.Response(201, json=recording("twilio_message_created"))
    )
    settings = make_settings(
        TWILIO_API_KEY="SK" + "b" * 32,
        TWILIO_API_SECRET="key-secret",
        TWILIO_MESSAGING_SERVICE_SID="MG" + "c" * 32,
    )
    await build_channels(settings, http)[Channel.SMS].send(outbound(Channel.SMS, "+14155550100"))
    request = route.calls.last.request
    assert basic_auth(request) == ("SK" + "b" * 32, "key-secret")
    fields = form_fields(request)
    assert fields["MessagingServiceSid"] == "MG" + "c" * 32
    assert "From" not in fields


async def test_phone_call_speaks_the_body_with_twiml(
    network: respx.MockRouter, http: ExternalHttp
) -> None:
    route = network.post(f"{ACCOUNT}/Calls.json").mock(
        return_value=httpx.Response(201, json=recording("twilio_call_created"))
    )
    adapter = build_channels(make_settings(), http)[Channel.PHONE]
    receipt = await adapter.send(outbound(Channel.PHONE, "+14155550100", body="Hi <Dana> & co"))

    request = route.calls.last.request
    assert basic_auth(request) == (ACCOUNT_SID, "twilio-auth-token")
    assert form_fields(request) == {
        "To": "+14155550100",
        "From": "+15005550006",
        "Twiml": "<Response><Say>Hi &lt;Dana&gt; &amp; co</Say></Response>",
    }
    assert receipt.provider_message_id == "CAe1644a7eed5088b159577c5802d8be38"
    assert receipt.status == "queued"


@pytest.mark.parametrize("channel", [Channel.SMS, Channel.PHONE])
async def test_client_error_is_rejected_with_twilios_message(
    channel: Channel, network: respx.MockRouter, http: ExternalHttp
) -> None:
    resource = "Messages.json" if channel is Channel.SMS else "Calls.json"
    route = network.post(f"{ACCOUNT}/{resource}").mock(
        return_value=httpx.Response(400, json=recording("twilio_error_21211"))
    )
    with pytest.raises(ChannelRejected) as raised:
        await build_channels(make_settings(), http)[channel].send(outbound(channel, "+1415555010"))
    error = raised.value
    assert (error.status, error.transient, error.vendor_code) == (400, False, "21211")
    assert "Invalid 'To' Phone Number" in str(error)
    assert route.call_count == 1


async def test_rate_limit_answer_is_retried_then_succeeds(
    network: respx.MockRouter, http: ExternalHttp
) -> None:
    route = network.post(f"{ACCOUNT}/Messages.json").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "0"}, json=recording("twilio_error_20429")),
            httpx.Response(201, json=recording("twilio_message_created")),
        ]
    )
    receipt = await build_channels(make_settings(), http)[Channel.SMS].send(
        outbound(Channel.SMS, "+14155550100")
    )
    assert receipt.provider_message_id == "SM1f0e8ae6ade43cb3c0ce4525424e404f"
    assert route.call_count == 2
