"""2Chat WhatsApp, Respond.io, Sendblue iMessage, Viber and Telegram: JSON bodies, vendor auth
headers, vendor error texts."""

from __future__ import annotations

import httpx
import pytest
import respx

from sourcing.common.http import ExternalHttp
from sourcing.common.models.enums import Channel
from sourcing.outreach.channels import ChannelRejected, ChannelUnavailable, build_channels
from sourcing.outreach.channels.respondio import respondio_identifier
from tests.unit.outreach.support import json_body, make_settings, outbound, recording

TWOCHAT = "https://api.p.2chat.io/open/whatsapp/send-message"
SENDBLUE = "https://api.sendblue.co/api/send-message"
VIBER = "https://chatapi.viber.com/pa/send_message"
TELEGRAM = "https://api.telegram.org/bot123456:ABC-telegram/sendMessage"


# --- WhatsApp (2Chat) ---


async def test_whatsapp_request_and_receipt(network: respx.MockRouter, http: ExternalHttp) -> None:
    route = network.post(TWOCHAT).mock(
        return_value=httpx.Response(200, json=recording("2chat_sent"))
    )
    settings = make_settings(WHATSAPP_2CHAT_FROM_NUMBER="+447700900123")
    message = outbound(Channel.WHATSAPP, "+14155550100")
    receipt = await build_channels(settings, http)[Channel.WHATSAPP].send(message)
    request = route.calls.last.request
    assert request.headers["x-user-api-key"] == "UAK-2chat-key"
    assert json_body(request) == {
        "from_number": "+447700900123",
        "to_number": "+14155550100",
        "text": message.body,
    }
    assert receipt.provider_message_id == "MSG9A7C2D6E-4F1B-4B8E-9C2D-7E6F5A4B3C2D"
    assert (receipt.provider, receipt.status) == ("2chat", "queued")


@pytest.mark.parametrize("status", [400, 200])
async def test_whatsapp_refusal_is_rejected(
    status: int, network: respx.MockRouter, http: ExternalHttp
) -> None:
    network.post(TWOCHAT).mock(
        return_value=httpx.Response(status, json=recording("2chat_error_400"))
    )
    with pytest.raises(ChannelRejected, match="not a valid WhatsApp number"):
        await build_channels(make_settings(), http)[Channel.WHATSAPP].send(
            outbound(Channel.WHATSAPP, "+10000000000")
        )


# --- Respond.io ---


@pytest.mark.parametrize(
    ("recipient", "identifier"),
    [
        ("+14155550100", "phone:+14155550100"),
        ("14155550100", "phone:+14155550100"),
        ("dana@example.com", "email:dana@example.com"),
        ("phone:+60123456789", "phone:+60123456789"),
        ("id:42", "id:42"),
    ],
)
def test_respondio_identifiers(recipient: str, identifier: str) -> None:
    assert respondio_identifier(recipient) == identifier


async def test_respondio_request_and_receipt(network: respx.MockRouter, http: ExternalHttp) -> None:
    route = network.post("https://api.respond.io/v2/contact/email:dana@example.com/message").mock(
        return_value=httpx.Response(200, json=recording("respondio_sent"))
    )
    settings = make_settings(RESPONDIO_CHANNEL_ID=321)
    message = outbound(Channel.RESPONDIO, "dana@example.com")
    receipt = await build_channels(settings, http)[Channel.RESPONDIO].send(message)
    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer respondio-token"
    assert json_body(request) == {
        "channelId": 321,
        "message": {"type": "text", "text": message.body},
    }
    assert receipt.provider_message_id == "987654321"


async def test_respondio_unknown_contact_is_rejected(
    network: respx.MockRouter, http: ExternalHttp
) -> None:
    network.post(url__regex=r"https://api\.respond\.io/v2/contact/.*/message").mock(
        return_value=httpx.Response(404, json=recording("respondio_error_404"))
    )
    with pytest.raises(ChannelRejected, match="Contact not found") as raised:
        await build_channels(make_settings(), http)[Channel.RESPONDIO].send(
            outbound(Channel.RESPONDIO, "+14155550199")
        )
    assert raised.value.status == 404


# --- iMessage (Sendblue) ---


async def test_imessage_goes_through_sendblue(
    network: respx.MockRouter, http: ExternalHttp
) -> None:
    route = network.post(SENDBLUE).mock(
        return_value=httpx.Response(200, json=recording("sendblue_queued"))
    )
    settings = make_settings(IMESSAGE_FROM_NUMBER="+15005550006")
    message = outbound(Channel.IMESSAGE, "+14155550100")
    receipt = await build_channels(settings, http)[Channel.IMESSAGE].send(message)
    request = route.calls.last.request
    assert request.headers["sb-api-key-id"] == "sendblue-key-id"
    assert request.headers["sb-api-secret-key"] == "sendblue-secret"
    assert "authorization" not in request.headers
    assert json_body(request) == {
        "number": "+14155550100",
        "from_number": "+15005550006",
        "content": message.body,
    }
    assert receipt.provider == "sendblue"
    assert receipt.provider_message_id == "dfd747bc-b77d-4d4e-9b1b-4b2f1a0c9e11"
    assert receipt.status == "queued"


async def test_imessage_validation_error_is_rejected(
    network: respx.MockRouter, http: ExternalHttp
) -> None:
    network.post(SENDBLUE).mock(
        return_value=httpx.Response(400, json=recording("sendblue_error_400"))
    )
    with pytest.raises(ChannelRejected, match=r"E\.164") as raised:
        await build_channels(make_settings(), http)[Channel.IMESSAGE].send(
            outbound(Channel.IMESSAGE, "4155550100")
        )
    assert raised.value.vendor_code == "4000"


# --- Viber ---


async def test_viber_request_and_receipt(network: respx.MockRouter, http: ExternalHttp) -> None:
    route = network.post(VIBER).mock(return_value=httpx.Response(200, json=recording("viber_ok")))
    settings = make_settings(VIBER_SENDER_NAME="Research Desk")
    message = outbound(Channel.VIBER, "01234567890A=", idempotency_key="msg-7")
    receipt = await build_channels(settings, http)[Channel.VIBER].send(message)
    request = route.calls.last.request
    assert request.headers["x-viber-auth-token"] == "viber-auth-token"
    assert json_body(request) == {
        "receiver": "01234567890A=",
        "type": "text",
        "text": message.body,
        "sender": {"name": "Research Desk"},
        "tracking_data": "msg-7",
    }
    assert receipt.provider_message_id == "5741311803571721087"
    assert receipt.status == "sent"


async def test_viber_errors_arrive_in_a_200(network: respx.MockRouter, http: ExternalHttp) -> None:
    network.post(VIBER).mock(
        side_effect=[
            httpx.Response(200, json=recording("viber_not_subscribed")),
            httpx.Response(200, json=recording("viber_too_many_requests")),
        ]
    )
    adapter = build_channels(make_settings(), http)[Channel.VIBER]
    with pytest.raises(ChannelRejected, match="notSubscribed") as rejected:
        await adapter.send(outbound(Channel.VIBER, "01234567890A="))
    assert rejected.value.vendor_code == "6"
    with pytest.raises(ChannelUnavailable, match="tooManyRequests"):
        await adapter.send(outbound(Channel.VIBER, "01234567890A="))


# --- Telegram ---


async def test_telegram_request_and_receipt(network: respx.MockRouter, http: ExternalHttp) -> None:
    route = network.post(TELEGRAM).mock(
        return_value=httpx.Response(200, json=recording("telegram_sent"))
    )
    message = outbound(Channel.TELEGRAM, "123456789")
    receipt = await build_channels(make_settings(), http)[Channel.TELEGRAM].send(message)
    request = route.calls.last.request
    assert request.url.path == "/bot123456:ABC-telegram/sendMessage"
    assert json_body(request) == {"chat_id": "123456789", "text": message.body}
    assert receipt.provider_message_id == "4711"
    assert receipt.status == "sent"


async def test_telegram_errors(network: respx.MockRouter, http: ExternalHttp) -> None:
    route = network.post(TELEGRAM).mock(
        side_effect=[
            httpx.Response(400, json=recording("telegram_chat_not_found")),
            httpx.Response(429, json=recording("telegram_429")),
            httpx.Response(200, json=recording("telegram_sent")),
        ]
    )
    adapter = build_channels(make_settings(), http)[Channel.TELEGRAM]
    with pytest.raises(ChannelRejected, match="chat not found") as raised:
        await adapter.send(outbound(Channel.TELEGRAM, "999"))
    assert raised.value.status == 400
    receipt = await adapter.send(outbound(Channel.TELEGRAM, "123456789"))  # 429, then success
    assert receipt.provider_message_id == "4711"
    assert route.call_count == 3


async def test_telegram_refuses_overlong_text_without_calling(
    network: respx.MockRouter, http: ExternalHttp
) -> None:
    with pytest.raises(ChannelRejected, match="4096"):
        await build_channels(make_settings(), http)[Channel.TELEGRAM].send(
            outbound(Channel.TELEGRAM, "123", body="x" * 4097)
        )
    assert not network.calls
