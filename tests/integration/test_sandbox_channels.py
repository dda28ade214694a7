"""The channel adapters against the sandbox's channel router, in process (ASGI transport):
every one of the 13 channels sends with sandbox credentials and gets a vendor message id, the
documented recipient markers produce each vendor's errors, and missing auth is refused."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from sourcing.common.http import ExternalHttp, RetryPolicy
from sourcing.common.models.enums import Channel
from sourcing.outreach.channels import (
    ChannelRejected,
    ChannelUnavailable,
    OutboundMessage,
    OutreachChannel,
    build_channels,
)
from sourcing.outreach.channels.settings import ChannelSettings
from sourcing.sandbox.app import create_sandbox_app
from sourcing.sandbox.channels import router
from tests.fixtures.settings import Settings

SANDBOX = "http://127.0.0.1:8099"
# One retry, no waiting (the sandbox's Retry-After is capped to zero).
RETRY = RetryPolicy(attempts=2, base_seconds=0.0, cap_seconds=0.0, max_retry_after_seconds=0.0)

RECIPIENTS = {
    Channel.PHONE: "+14155550100",
    Channel.EMAIL: "dana@example.com",
    Channel.LINKEDIN: "ACoAAAdana",
    Channel.WHATSAPP: "+14155550100",
    Channel.RESPONDIO: "+14155550100",
    Channel.SMS: "+14155550100",
    Channel.IMESSAGE: "+14155550100",
    Channel.LINE: "U4af4980629d1a2b3c4d5e6f7a8b9c0d1",
    Channel.WECHAT: "oDF3iY9ffA-hqb2vVvbr7qxf6A0Q",
    Channel.VIBER: "01234567890A=",
    Channel.TELEGRAM: "123456789",
    Channel.KAKAOTALK: "abcdefgh0123456789",
    Channel.VOICEMAIL: "+14155550100",
}
MARKED = {
    Channel.PHONE: "+1415{m}0100",
    Channel.EMAIL: "{m}@example.com",
    Channel.LINKEDIN: "ACoAAA{m}",
    Channel.WHATSAPP: "+1415{m}0100",
    Channel.RESPONDIO: "+1415{m}0100",
    Channel.SMS: "+1415{m}0100",
    Channel.IMESSAGE: "+1415{m}0100",
    Channel.LINE: "U{m}4980629d1a2b3c4d5e6f7a8b9c0d1",
    Channel.WECHAT: "oDF3iY9{m}",
    Channel.VIBER: "0123{m}A=",
    Channel.TELEGRAM: "{m}",
    Channel.KAKAOTALK: "{m}0123456789",
    Channel.VOICEMAIL: "+1415{m}0100",
}
# Vendors that report errors inside an HTTP 200 answer.
ERRORS_IN_200 = {Channel.WECHAT, Channel.VIBER, Channel.VOICEMAIL}
# Vendors whose API returns no message id for these sends.
NO_MESSAGE_ID = {Channel.WECHAT, Channel.KAKAOTALK}


class SandboxSettings(Settings, ChannelSettings):
    """Settings with the channel mixin (as `Settings` will have it)."""


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in SandboxSettings.model_fields:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def sandbox_app() -> FastAPI:
    app = FastAPI()
    app.include_router(router)
    return app


@pytest.fixture
async def channels(sandbox_app: FastAPI) -> AsyncIterator[dict[Channel, OutreachChannel]]:
    http = ExternalHttp(retry=RETRY, transport=httpx.ASGITransport(app=sandbox_app))
    try:
        # No credential at all: sandbox mode sends placeholders instead of real keys.
        yield build_channels(SandboxSettings(SANDBOX_PROVIDERS=True), http)
    finally:
        await http.aclose()


@pytest.fixture
async def raw(sandbox_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=sandbox_app)
    async with httpx.AsyncClient(transport=transport, base_url=SANDBOX) as client:
        yield client


def _message(channel: Channel, recipient: str, **fields: str) -> OutboundMessage:
    return OutboundMessage(
        channel=channel,
        recipient=recipient,
        body=fields.pop("body", "Hi Dana, would you join a paid 30-minute expert call?"),
        idempotency_key=str(uuid.uuid4()),
        expert_id=uuid.uuid4(),
        project_id=uuid.uuid4(),
        **fields,
    )


async def test_all_13_channels_send_through_the_sandbox(
    channels: dict[Channel, OutreachChannel],
) -> None:
    assert set(channels) == set(Channel)
    for channel, adapter in channels.items():
        receipt = await adapter.send(_message(channel, RECIPIENTS[channel]))
        assert receipt.provider == adapter.provider
        assert receipt.status in ("queued", "sent"), channel
        if channel in NO_MESSAGE_ID:
            assert receipt.provider_message_id is None
        else:
            assert receipt.provider_message_id, channel


async def test_the_sandbox_app_serves_the_channel_routes() -> None:
    transport = httpx.ASGITransport(app=create_sandbox_app())
    http = ExternalHttp(retry=RETRY, transport=transport)
    try:
        adapters = build_channels(SandboxSettings(SANDBOX_PROVIDERS=True), http)
        for channel, adapter in adapters.items():
            receipt = await adapter.send(_message(channel, RECIPIENTS[channel]))
            assert receipt.status in ("queued", "sent"), channel
    finally:
        await http.aclose()


async def test_provider_ids_are_deterministic(channels: dict[Channel, OutreachChannel]) -> None:
    for channel in (Channel.SMS, Channel.EMAIL, Channel.WHATSAPP, Channel.TELEGRAM):
        first = await channels[channel].send(_message(channel, RECIPIENTS[channel]))
        again = await channels[channel].send(_message(channel, RECIPIENTS[channel]))
        assert first.provider_message_id == again.provider_message_id, channel


async def test_linkedin_follow_up_goes_into_the_started_chat(
    channels: dict[Channel, OutreachChannel],
) -> None:
    adapter = channels[Channel.LINKEDIN]
    started = await adapter.send(_message(Channel.LINKEDIN, "ACoAAAdana"))
    assert started.provider_thread_id
    follow_up = await adapter.send(
        _message(Channel.LINKEDIN, "ACoAAAdana", thread_ref=started.provider_thread_id)
    )
    assert follow_up.provider_thread_id == started.provider_thread_id
    assert follow_up.raw["object"] == "MessageSent"


@pytest.mark.parametrize("channel", list(Channel), ids=lambda c: c.value)
async def test_fail_marker_is_a_vendor_rejection(
    channel: Channel, channels: dict[Channel, OutreachChannel]
) -> None:
    with pytest.raises(ChannelRejected) as raised:
        await channels[channel].send(_message(channel, MARKED[channel].format(m="fail")))
    assert not raised.value.transient
    # 400 from the vendor, or its error inside a 200 (never a 404 from a wrong route).
    assert raised.value.status == (None if channel in ERRORS_IN_200 else 400), str(raised.value)


@pytest.mark.parametrize("marker", ["busy", "down"])
@pytest.mark.parametrize("channel", list(Channel), ids=lambda c: c.value)
async def test_busy_and_down_markers_are_transient(
    channel: Channel, marker: str, channels: dict[Channel, OutreachChannel]
) -> None:
    with pytest.raises(ChannelUnavailable) as raised:
        await channels[channel].send(_message(channel, MARKED[channel].format(m=marker)))
    assert raised.value.transient
    if marker == "busy" and channel not in {Channel.WECHAT, Channel.VIBER}:
        assert "HTTP 429" in str(raised.value)
    if marker == "down":
        assert "HTTP 503" in str(raised.value)


async def test_busy_answers_carry_retry_after(raw: httpx.AsyncClient) -> None:
    response = await raw.post(
        "/twilio/2010-04-01/Accounts/AC1/Messages.json",
        auth=("AC1", "token"),
        data={"To": "+1415busy", "From": "+15005550006", "Body": "hi"},
    )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert response.json()["code"] == 20429


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("POST", "/twilio/2010-04-01/Accounts/AC1/Messages.json", {"data": {"To": "+1"}}, 401),
        ("POST", "/sendgrid/v3/mail/send", {"json": {}}, 401),
        ("POST", "/unipile/api/v1/chats", {"files": {"text": (None, "hi")}}, 401),
        ("POST", "/2chat/open/whatsapp/send-message", {"json": {}}, 401),
        ("POST", "/respondio/v2/contact/phone:+1415/message", {"json": {}}, 401),
        ("POST", "/sendblue/api/send-message", {"json": {}}, 401),
        ("POST", "/line/v2/bot/message/push", {"json": {}}, 401),
        ("POST", "/telegram/botnot-a-token/sendMessage", {"json": {}}, 401),
        ("POST", "/kakao/v1/api/talk/friends/message/default/send", {"data": {}}, 401),
    ],
)
async def test_missing_auth_is_refused(
    raw: httpx.AsyncClient, method: str, path: str, kwargs: dict[str, object], status: int
) -> None:
    response = await raw.request(method, path, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, response.text


async def test_vendors_that_answer_errors_in_a_200_do_so_for_auth_too(
    raw: httpx.AsyncClient,
) -> None:
    viber = await raw.post("/viber/pa/send_message", json={"receiver": "x"})
    assert (viber.status_code, viber.json()["status"]) == (200, 2)
    wechat = await raw.post("/wechat/cgi-bin/message/custom/send", json={})
    assert (wechat.status_code, wechat.json()["errcode"]) == (200, 41001)
    sly = await raw.post("/slybroadcast/gateway/vmb.json.php", data={"c_method": "new_campaign"})
    assert sly.status_code == 200 and "ERROR" in sly.json()


async def test_unipile_accepts_multipart_only(raw: httpx.AsyncClient) -> None:
    response = await raw.post(
        "/unipile/api/v1/chats",
        headers={"X-API-KEY": "k"},
        json={"account_id": "a", "attendees_ids": ["b"], "text": "hi"},
    )
    assert response.status_code == 415
    assert response.json()["type"] == "errors/unsupported_media_type"


async def test_line_refuses_a_repeated_retry_key(raw: httpx.AsyncClient) -> None:
    key = str(uuid.uuid4())
    request = {
        "headers": {"Authorization": "Bearer t", "X-Line-Retry-Key": key},
        "json": {"to": "U1", "messages": [{"type": "text", "text": "hi"}]},
    }
    first = await raw.post("/line/v2/bot/message/push", **request)  # type: ignore[arg-type]
    again = await raw.post("/line/v2/bot/message/push", **request)  # type: ignore[arg-type]
    assert first.status_code == 200
    assert again.status_code == 409
    assert again.headers["x-line-accepted-request-id"] == first.headers["x-line-request-id"]
