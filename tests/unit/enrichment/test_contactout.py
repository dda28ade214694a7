"""ContactOut against recorded answers: LinkedIn or enrich request, work_email_status."""

from __future__ import annotations

import httpx
import respx

from sourcing.common.http import ExternalHttp
from sourcing.enrichment.providers import (
    ContactOutProvider,
    EmailKind,
    PersonQuery,
    ResultStatus,
    Verification,
)
from tests.unit.enrichment.support import make_settings, recording, sent_json

BASE = "https://api.contactout.com/v1/people"
JANE = PersonQuery(full_name="Jane Doe", linkedin_url="https://www.linkedin.com/in/janedoe")


def _provider(http: ExternalHttp) -> ContactOutProvider:
    return ContactOutProvider(settings=make_settings(), http=http)


async def test_linkedin_lookup_hit(http: ExternalHttp, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(f"{BASE}/linkedin").mock(
        return_value=httpx.Response(200, json=recording("contactout_linkedin_hit"))
    )
    result = await _provider(http).lookup(JANE)
    request = route.calls.last.request
    assert request.headers["token"] == "co-test-key"
    assert dict(request.url.params) == {
        "profile": "https://www.linkedin.com/in/janedoe",
        "include_phone": "true",
    }
    assert result.status is ResultStatus.HIT
    assert [(e.address, e.kind, e.verification, e.confidence) for e in result.emails] == [
        ("jane.doe@stripe.com", EmailKind.PROFESSIONAL, Verification.VERIFIED, 0.9),
        ("jdoe@stripe.com", EmailKind.PROFESSIONAL, Verification.UNVERIFIED, 0.6),
        ("janedoe88@gmail.com", EmailKind.PERSONAL, Verification.UNVERIFIED, 0.6),
    ]
    assert [(p.e164, p.confidence) for p in result.phones] == [("+14155550177", 0.65)]


async def test_enrich_by_name_and_domain(http: ExternalHttp, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(f"{BASE}/enrich").mock(
        return_value=httpx.Response(200, json=recording("contactout_linkedin_hit"))
    )
    await _provider(http).lookup(
        PersonQuery(full_name="Jane Doe", company_domain="stripe.com", country_iso="US")
    )
    await _provider(http).lookup(
        PersonQuery(full_name="Jane Doe", company_domain="stripe.com", country_iso="FR")
    )
    first, second = (sent_json(call.request) for call in route.calls)
    assert first == {
        "full_name": "Jane Doe",
        "company_domain": ["stripe.com"],
        "include": ["work_email", "personal_email", "phone"],
    }
    assert second["include"] == ["work_email", "phone"]  # no personal emails for France


async def test_not_found_is_a_miss(http: ExternalHttp, respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{BASE}/linkedin").mock(
        return_value=httpx.Response(404, json=recording("contactout_not_found"))
    )
    result = await _provider(http).lookup(JANE)
    assert (result.status, result.http_status) == (ResultStatus.MISS, 404)
