"""LINE push (retry key), WeChat custom send (access token) and KakaoTalk (form template)."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
import respx

from sourcing.common.http import ExternalHttp
from sourcing.common.models.enums import Channel
from sourcing.outreach.channels import ChannelRejected, ChannelUnavailable, build_channels
from sourcing.outreach.channels.line import line_retry_key
from sourcing.outreach.channels.wechat import WeChatChannel
from tests.unit.outreach.support import form_fields, json_body, make_settings, outbound, recording

LINE = "https://api.line.me/v2/bot/message/push"
WECHAT_TOKEN = "https://api.weixin.qq.com/cgi-bin/token"
WECHAT_SEND = "https://api.weixin.qq.com/cgi-bin/message/custom/send"
KAKAO = "https://kapi.kakao.com/v1/api/talk/friends/message/default/send"
LINE_USER = "U4af4980629d1a2b3c4d5e6f7a8b9c0d1"
OPENID = "oDF3iY9ffA-hqb2vVvbr7qxf6A0Q"


# --- LINE ---


def test_line_retry_key_is_a_stable_uuid() -> None:
    message_id = str(uuid.uuid4())
    assert line_retry_key(message_id) == message_id
    assert line_retry_key("msg-1") == line_retry_key("msg-1") != line_retry_key("msg-2")
    uuid.UUID(line_retry_key("msg-1"))


async def test_line_push_request_and_receipt(network: respx.MockRouter, http: ExternalHttp) -> None:
    route = network.post(LINE).mock(return_value=httpx.Response(200, json=recording("line_push")))
    message_id = str(uuid.uuid4())
    message = outbound(Channel.LINE, LINE_USER, idempotency_key=message_id)
    receipt = await build_channels(make_settings(), http)[Channel.LINE].send(message)
    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer line-channel-token"
    assert request.headers["x-line-retry-key"] == message_id
    assert json_body(request) == {
        "to": LINE_USER,
        "messages": [{"type": "text", "text": message.body}],
    }
    assert receipt.provider_message_id == "461230966842064897"
    assert receipt.status == "sent"


async def test_line_repeat_of_an_accepted_retry_key_is_success(
    network: respx.MockRouter, http: ExternalHttp
) -> None:
    network.post(LINE).mock(
        return_value=httpx.Response(
            409,
            headers={"x-line-accepted-request-id": "req-1"},
            json=recording("line_retry_key_accepted_409"),
        )
    )
    receipt = await build_channels(make_settings(), http)[Channel.LINE].send(
        outbound(Channel.LINE, LINE_USER)
    )
    assert receipt.status == "sent"
    assert receipt.raw["accepted_request_id"] == "req-1"


async def test_line_invalid_user_is_rejected_with_details(
    network: respx.MockRouter, http: ExternalHttp
) -> None:
    network.post(LINE).mock(return_value=httpx.Response(400, json=recording("line_error_400")))
    with pytest.raises(ChannelRejected, match="Invalid user ID"):
        await build_channels(make_settings(), http)[Channel.LINE].send(
            outbound(Channel.LINE, "nobody")
        )


# --- WeChat ---


async def test_wechat_fetches_a_token_once_and_sends(
    network: respx.MockRouter, http: ExternalHttp
) -> None:
    token_route = network.get(WECHAT_TOKEN).mock(
        return_value=httpx.Response(200, json=recording("wechat_token"))
    )
    send_route = network.post(WECHAT_SEND).mock(
        return_value=httpx.Response(200, json=recording("wechat_ok"))
    )
    settings = make_settings(WECHAT_APP_ID="wx1234567890abcdef")
    adapter = build_channels(settings, http)[Channel.WECHAT]
    message = outbound(Channel.WECHAT, OPENID, body="你好 Dana")
    receipt = await adapter.send(message)
    await adapter.send(message)

    assert token_route.call_count == 1
    assert dict(token_route.calls.last.request.url.params) == {
        "grant_type": "client_credential",
        "appid": "wx1234567890abcdef",
        "secret": "wechat-app-secret",
    }
    request = send_route.calls.last.request
    assert request.url.params["access_token"] == "ACCESS_TOKEN_85_rtBjQ2tz0o5w"
    assert json_body(request) == {
        "touser": OPENID,
        "msgtype": "text",
        "text": {"content": "你好 Dana"},
    }
    assert "你好".encode() in request.content  # sent as UTF-8, not \\u escapes
    assert (receipt.provider, receipt.provider_message_id, receipt.status) == (
        "wechat",
        None,
        "sent",
    )


async def test_wechat_refreshes_an_expired_token_once(
    network: respx.MockRouter, http: ExternalHttp
) -> None:
    token_route = network.get(WECHAT_TOKEN).mock(
        side_effect=[
            httpx.Response(200, json={"access_token": "OLD", "expires_in": 7200}),
            httpx.Response(200, json={"access_token": "NEW", "expires_in": 7200}),
        ]
    )
    send_route = network.post(WECHAT_SEND).mock(
        side_effect=[
            httpx.Response(200, json=recording("wechat_token_expired")),
            httpx.Response(200, json=recording("wechat_ok")),
        ]
    )
    receipt = await build_channels(make_settings(), http)[Channel.WECHAT].send(
        outbound(Channel.WECHAT, OPENID)
    )
    assert receipt.status == "sent"
    assert token_route.call_count == 2
    tokens = [call.request.url.params["access_token"] for call in send_route.calls]
    assert tokens == ["OLD", "NEW"]


async def test_wechat_token_expiry_follows_the_clock(
    network: respx.MockRouter, http: ExternalHttp
) -> None:
    token_route = network.get(WECHAT_TOKEN).mock(
        return_value=httpx.Response(200, json=recording("wechat_token"))
    )
    network.post(WECHAT_SEND).mock(return_value=httpx.Response(200, json=recording("wechat_ok")))
    now = [1000.0]
    adapter = WeChatChannel(settings=make_settings(), http=http, clock=lambda: now[0])
    await adapter.send(outbound(Channel.WECHAT, OPENID))
    now[0] += 7200 - 301
    await adapter.send(outbound(Channel.WECHAT, OPENID))
    assert token_route.call_count == 1
    now[0] += 2
    await adapter.send(outbound(Channel.WECHAT, OPENID))
    assert token_route.call_count == 2


async def test_wechat_errors_arrive_in_a_200(network: respx.MockRouter, http: ExternalHttp) -> None:
    network.get(WECHAT_TOKEN).mock(return_value=httpx.Response(200, json=recording("wechat_token")))
    network.post(WECHAT_SEND).mock(
        side_effect=[
            httpx.Response(200, json=recording("wechat_invalid_openid")),
            httpx.Response(200, json=recording("wechat_system_busy")),
        ]
    )
    adapter = build_channels(make_settings(), http)[Channel.WECHAT]
    with pytest.raises(ChannelRejected, match="invalid openid") as raised:
        await adapter.send(outbound(Channel.WECHAT, "bad-openid"))
    assert raised.value.vendor_code == "40003"
    with pytest.raises(ChannelUnavailable, match="errcode -1"):
        await adapter.send(outbound(Channel.WECHAT, OPENID))


async def test_wechat_bad_app_secret_is_rejected(
    network: respx.MockRouter, http: ExternalHttp
) -> None:
    network.get(WECHAT_TOKEN).mock(
        return_value=httpx.Response(200, json={"errcode": 40125, "errmsg": "invalid appsecret"})
    )
    with pytest.raises(ChannelRejected, match="invalid appsecret"):
        await build_channels(make_settings(), http)[Channel.WECHAT].send(
            outbound(Channel.WECHAT, OPENID)
        )


# --- KakaoTalk ---


async def test_kakao_form_with_json_template(network: respx.MockRouter, http: ExternalHttp) -> None:
    route = network.post(KAKAO).mock(return_value=httpx.Response(200, json=recording("kakao_sent")))
    settings = make_settings(KAKAOTALK_LINK_URL="https://research.example.com")
    message = outbound(Channel.KAKAOTALK, "abcdefgh0123456789", body="안녕하세요 Dana")
    receipt = await build_channels(settings, http)[Channel.KAKAOTALK].send(message)

    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer kakao-user-token"
    fields = form_fields(request)
    assert json.loads(fields["receiver_uuids"]) == ["abcdefgh0123456789"]
    assert json.loads(fields["template_object"]) == {
        "object_type": "text",
        "text": "안녕하세요 Dana",
        "link": {
            "web_url": "https://research.example.com",
            "mobile_web_url": "https://research.example.com",
        },
    }
    assert (receipt.provider, receipt.provider_message_id, receipt.status) == (
        "kakao",
        None,
        "sent",
    )


async def test_kakao_errors(network: respx.MockRouter, http: ExternalHttp) -> None:
    network.post(KAKAO).mock(
        side_effect=[
            httpx.Response(401, json=recording("kakao_error_401")),
            httpx.Response(200, json=recording("kakao_partial_failure")),
        ]
    )
    adapter = build_channels(make_settings(), http)[Channel.KAKAOTALK]
    with pytest.raises(ChannelRejected, match="access token does not exist") as raised:
        await adapter.send(outbound(Channel.KAKAOTALK, "abcdefgh0123456789"))
    assert (raised.value.status, raised.value.vendor_code) == (401, "-401")
    with pytest.raises(ChannelRejected, match="daily message limit") as raised:
        await adapter.send(outbound(Channel.KAKAOTALK, "abcdefgh0123456789"))
    assert raised.value.vendor_code == "-532"
