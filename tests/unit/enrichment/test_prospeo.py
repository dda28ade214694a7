"""Prospeo against recorded answers: body shape, VERIFIED vs other statuses, NO_MATCH."""

from __future__ import annotations

import httpx
import respx

from sourcing.common.http import ExternalHttp
from sourcing.enrichment.providers import PersonQuery, ProspeoProvider, ResultStatus, Verification
from tests.unit.enrichment.support import make_settings, recording, sent_json

URL = "https://api.prospeo.io/enrich-person"
JANE = PersonQuery(
    full_name="Jane Doe",
    first_name="Jane",
    last_name="Doe",
    company_name="Stripe",
    company_domain="stripe.com",
    linkedin_url="https://www.linkedin.com/in/janedoe",
)


def _provider(http: ExternalHttp) -> ProspeoProvider:
    return ProspeoProvider(settings=make_settings(), http=http)


async def test_hit(http: ExternalHttp, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post(URL).mock(
        return_value=httpx.Response(200, json=recording("prospeo_enrich_person_hit"))
    )
    result = await _provider(http).lookup(JANE)
    request = route.calls.last.request
    assert request.headers["X-KEY"] == "pr-test-key"
    assert sent_json(request) == {
        "only_verified_email": False,
        "enrich_mobile": True,
        "data": {
            "first_name": "Jane",
            "last_name": "Doe",
            "linkedin_url": "https://www.linkedin.com/in/janedoe",
            "company_name": "Stripe",
            "company_website": "stripe.com",
        },
    }
    assert result.status is ResultStatus.HIT
    assert [(e.address, e.verification, e.confidence) for e in result.emails] == [
        ("jane.doe@stripe.com", Verification.VERIFIED, 0.9)
    ]
    assert [(p.e164, p.confidence) for p in result.phones] == [("+14155550147", 0.8)]
    assert result.confidence == 0.9


async def test_full_name_is_sent_when_the_parts_are_unknown(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(URL).mock(
        return_value=httpx.Response(
            200, json=recording("prospeo_enrich_person_unverified_masked_mobile")
        )
    )
    result = await _provider(http).lookup(PersonQuery(full_name="Jane Doe", company_name="Stripe"))
    assert sent_json(route.calls.last.request)["data"] == {
        "full_name": "Jane Doe",
        "company_name": "Stripe",
    }
    # Unverified email: low; a mobile that is not revealed is no contact at all.
    assert (result.status, result.confidence, result.phones) == (ResultStatus.HIT, 0.5, [])


async def test_no_match_is_a_miss(http: ExternalHttp, respx_mock: respx.MockRouter) -> None:
    respx_mock.post(URL).mock(return_value=httpx.Response(400, json=recording("prospeo_no_match")))
    result = await _provider(http).lookup(JANE)
    assert (result.status, result.http_status, result.error) == (ResultStatus.MISS, 400, None)


async def test_other_400_codes_are_errors(http: ExternalHttp, respx_mock: respx.MockRouter) -> None:
    respx_mock.post(URL).mock(
        return_value=httpx.Response(400, json=recording("prospeo_insufficient_credits"))
    )
    result = await _provider(http).lookup(JANE)
    assert (result.status, result.transient, result.http_status) == (ResultStatus.ERROR, False, 400)
    assert result.error is not None and "INSUFFICIENT_CREDITS" in result.error
