"""Wiza against recorded answers: start a reveal, poll it, read email_status."""

from __future__ import annotations

import httpx
import respx

from sourcing.common.http import ExternalHttp
from sourcing.enrichment.providers import (
    EmailKind,
    PersonQuery,
    PhoneType,
    ResultStatus,
    Verification,
    WizaProvider,
)
from tests.unit.enrichment.support import make_settings, recording, sent_json

BASE = "https://wiza.co/api"
JANE = PersonQuery(
    full_name="Jane Doe", company_name="Stripe", linkedin_url="https://www.linkedin.com/in/janedoe"
)


def _provider(http: ExternalHttp) -> WizaProvider:
    return WizaProvider(settings=make_settings(), http=http)


async def test_reveal_is_started_and_polled_to_completion(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    start = respx_mock.post(f"{BASE}/individual_reveals").mock(
        return_value=httpx.Response(200, json=recording("wiza_start"))
    )
    poll = respx_mock.get(f"{BASE}/individual_reveals/9117").mock(
        side_effect=[
            httpx.Response(200, json=recording("wiza_reveal_pending")),
            httpx.Response(200, json=recording("wiza_reveal_finished")),
        ]
    )
    result = await _provider(http).lookup(JANE)

    request = start.calls.last.request
    assert request.headers["Authorization"] == "Bearer wiza-test-key"
    assert sent_json(request) == {
        "individual_reveal": {"profile_url": "https://www.linkedin.com/in/janedoe"},
        "enrichment_level": "full",
        "email_options": {"accept_work": True, "accept_personal": True},
    }
    assert poll.call_count == 2
    assert poll.calls.last.request.headers["Authorization"] == "Bearer wiza-test-key"
    assert result.status is ResultStatus.HIT
    assert [(e.address, e.kind, e.verification, e.confidence) for e in result.emails] == [
        ("jane.doe@stripe.com", EmailKind.PROFESSIONAL, Verification.VERIFIED, 0.9),
        ("jane.doe.88@outlook.com", EmailKind.PERSONAL, Verification.CATCH_ALL, 0.6),
    ]
    assert [(p.e164, p.type, p.confidence) for p in result.phones] == [
        ("+14155550123", PhoneType.MOBILE, 0.75)
    ]


async def test_personal_emails_are_not_requested_where_the_region_rule_forbids_them(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    start = respx_mock.post(f"{BASE}/individual_reveals").mock(
        return_value=httpx.Response(200, json=recording("wiza_start"))
    )
    respx_mock.get(f"{BASE}/individual_reveals/9117").mock(
        return_value=httpx.Response(200, json=recording("wiza_reveal_finished"))
    )
    person = PersonQuery(
        full_name="Hans Muster",
        company_name="Siemens",
        company_domain="siemens.com",
        country_iso="DE",
    )
    await _provider(http).lookup(person)
    assert sent_json(start.calls.last.request) == {
        "individual_reveal": {
            "full_name": "Hans Muster",
            "company": "Siemens",
            "domain": "siemens.com",
        },
        "enrichment_level": "full",
        "email_options": {"accept_work": True, "accept_personal": False},
    }


async def test_failed_reveal_is_a_miss(http: ExternalHttp, respx_mock: respx.MockRouter) -> None:
    respx_mock.post(f"{BASE}/individual_reveals").mock(
        return_value=httpx.Response(200, json=recording("wiza_start"))
    )
    respx_mock.get(f"{BASE}/individual_reveals/9117").mock(
        return_value=httpx.Response(200, json=recording("wiza_reveal_failed"))
    )
    result = await _provider(http).lookup(JANE)
    assert (result.status, result.error) == (ResultStatus.MISS, "profile_not_found")


async def test_polling_is_bounded(http: ExternalHttp, respx_mock: respx.MockRouter) -> None:
    respx_mock.post(f"{BASE}/individual_reveals").mock(
        return_value=httpx.Response(200, json=recording("wiza_start"))
    )
    poll = respx_mock.get(f"{BASE}/individual_reveals/9117").mock(
        return_value=httpx.Response(200, json=recording("wiza_reveal_pending"))
    )
    result = await _provider(http).lookup(JANE)
    assert result.status is ResultStatus.TIMEOUT
    assert poll.call_count == 3
