"""Voicemail drop through Slybroadcast's gateway: form fields, audio choice, ERROR bodies."""

from __future__ import annotations

import httpx
import pytest
import respx

from sourcing.common.http import ExternalHttp
from sourcing.common.models.enums import Channel
from sourcing.outreach.channels import ChannelRejected, build_channels
from sourcing.outreach.channels.voicemail import audio_fields
from tests.unit.outreach.support import form_fields, make_settings, outbound, recording

URL = "https://www.slybroadcast.com/gateway/vmb.json.php"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (
            "https://cdn.example.com/invite.wav",
            {"c_url": "https://cdn.example.com/invite.wav", "c_audio": "wav"},
        ),
        (
            "https://cdn.example.com/voice",
            {"c_url": "https://cdn.example.com/voice", "c_audio": "mp3"},
        ),
        ("Hi Dana, call us back", {"c_record_audio": "expert-invite"}),
    ],
)
def test_audio_is_a_url_or_a_stored_recording(body: str, fields: dict[str, str]) -> None:
    assert audio_fields(body, "expert-invite") == fields


async def test_campaign_form_and_receipt(network: respx.MockRouter, http: ExternalHttp) -> None:
    route = network.post(URL).mock(
        return_value=httpx.Response(200, json=recording("slybroadcast_ok"))
    )
    settings = make_settings(
        VOICEMAIL_DROP_ACCOUNT="ops@example.com",
        VOICEMAIL_DROP_CALLER_ID="+1 (500) 555-0006",
        VOICEMAIL_DROP_AUDIO_NAME="invite-v2",
    )
    message = outbound(Channel.VOICEMAIL, "+1 415-555-0100", idempotency_key="msg-9")
    receipt = await build_channels(settings, http)[Channel.VOICEMAIL].send(message)

    assert form_fields(route.calls.last.request) == {
        "c_uid": "ops@example.com",
        "c_password": "slybroadcast-password",
        "c_method": "new_campaign",
        "c_phone": "14155550100",
        "c_callerID": "15005550006",
        "c_date": "now",
        "c_title": "msg-9",
        "c_record_audio": "invite-v2",
    }
    assert receipt.provider == "slybroadcast"
    assert receipt.provider_message_id == "6547312890"
    assert receipt.status == "queued"


async def test_gateway_error_in_a_200_is_rejected(
    network: respx.MockRouter, http: ExternalHttp
) -> None:
    network.post(URL).mock(return_value=httpx.Response(200, json=recording("slybroadcast_error")))
    with pytest.raises(ChannelRejected, match="Bad Audio Login"):
        await build_channels(make_settings(), http)[Channel.VOICEMAIL].send(
            outbound(Channel.VOICEMAIL, "+14155550100")
        )
