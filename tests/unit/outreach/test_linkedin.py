"""LinkedIn through Unipile: multipart chats with X-API-KEY."""

from __future__ import annotations

import httpx
import pytest
import respx

from sourcing.common.http import ExternalHttp
from sourcing.common.models.enums import Channel
from sourcing.outreach.channels import ChannelRejected, build_channels
from tests.unit.outreach.support import make_settings, multipart_fields, outbound, recording

DSN = "https://api8.unipile.com:13851"


async def test_new_chat_is_a_multipart_post(network: respx.MockRouter, http: ExternalHttp) -> None:
    route = network.post(f"{DSN}/api/v1/chats").mock(
        return_value=httpx.Response(201, json=recording("unipile_chat_started"))
    )
    settings = make_settings(LINKEDIN_BASE_URL=f"{DSN}/", LINKEDIN_ACCOUNT_ID="acc-123")
    message = outbound(Channel.LINKEDIN, "ACoAAAdana", body="Bonjour Dana — 30 min?")
    receipt = await build_channels(settings, http)[Channel.LINKEDIN].send(message)

    request = route.calls.last.request
    assert request.headers["x-api-key"] == "unipile-key"
    assert multipart_fields(request) == {
        "account_id": ["acc-123"],
        "attendees_ids": ["ACoAAAdana"],
        "text": ["Bonjour Dana — 30 min?"],
    }
    assert receipt.provider == "unipile"
    assert receipt.provider_message_id == "jk7hg6df5sd4fgh3"
    assert receipt.provider_thread_id == "9f9uio56sopa456s"
    assert receipt.status == "sent"


async def test_known_chat_gets_a_message_in_it(
    network: respx.MockRouter, http: ExternalHttp
) -> None:
    route = network.post(f"{DSN}/api/v1/chats/9f9uio56sopa456s/messages").mock(
        return_value=httpx.Response(201, json=recording("unipile_message_sent"))
    )
    settings = make_settings(LINKEDIN_BASE_URL=DSN)
    message = outbound(Channel.LINKEDIN, "ACoAAAdana", thread_ref="9f9uio56sopa456s")
    receipt = await build_channels(settings, http)[Channel.LINKEDIN].send(message)
    assert multipart_fields(route.calls.last.request) == {"text": [message.body]}
    assert receipt.provider_message_id == "pl0okm9ijn8uhb7y"
    assert receipt.provider_thread_id == "9f9uio56sopa456s"


async def test_unreachable_recipient_is_rejected_with_unipiles_detail(
    network: respx.MockRouter, http: ExternalHttp
) -> None:
    network.post(f"{DSN}/api/v1/chats").mock(
        return_value=httpx.Response(422, json=recording("unipile_error_422"))
    )
    with pytest.raises(ChannelRejected) as raised:
        await build_channels(make_settings(LINKEDIN_BASE_URL=DSN), http)[Channel.LINKEDIN].send(
            outbound(Channel.LINKEDIN, "ACoAAAstranger")
        )
    assert raised.value.status == 422
    assert "not connected with this user" in str(raised.value)


async def test_missing_account_id_is_a_configuration_error(http: ExternalHttp) -> None:
    settings = make_settings(LINKEDIN_ACCOUNT_ID="")
    adapter = build_channels(settings, http)[Channel.LINKEDIN]
    assert adapter.missing_settings(settings) == ["LINKEDIN_ACCOUNT_ID"]
