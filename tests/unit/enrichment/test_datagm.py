"""DataGM against recorded answers: apiId in the query, status Valid/MostProbable, body codes."""

from __future__ import annotations

import httpx
import respx

from sourcing.common.http import ExternalHttp
from sourcing.enrichment.providers import DataGMProvider, PersonQuery, ResultStatus, Verification
from tests.unit.enrichment.support import make_settings, recording

BASE = "https://gateway.datagma.net/api/ingress"
JANE = PersonQuery(
    full_name="Jane Doe",
    company_name="Stripe",
    company_domain="stripe.com",
    linkedin_url="https://www.linkedin.com/in/janedoe",
)


def _provider(http: ExternalHttp) -> DataGMProvider:
    return DataGMProvider(settings=make_settings(), http=http)


async def test_valid_email_and_phone_search(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    find = respx_mock.get(f"{BASE}/v6/findEmail").mock(
        return_value=httpx.Response(200, json=recording("datagm_find_email_valid"))
    )
    search = respx_mock.get(f"{BASE}/v1/search").mock(
        return_value=httpx.Response(200, json=recording("datagm_search_hit"))
    )
    result = await _provider(http).lookup(JANE)
    assert dict(find.calls.last.request.url.params) == {
        "apiId": "dgm-test-key",
        "fullName": "Jane Doe",
        "company": "stripe.com",
        "linkedInSlug": "janedoe",
    }
    assert dict(search.calls.last.request.url.params) == {
        "apiId": "dgm-test-key",
        "username": "https://www.linkedin.com/in/janedoe",
        "minimumMatch": "1",
    }
    assert result.status is ResultStatus.HIT
    assert [(e.address, e.verification, e.confidence) for e in result.emails] == [
        ("jane.doe@stripe.com", Verification.VERIFIED, 0.9)
    ]
    assert [(p.e164, p.confidence) for p in result.phones] == [("+14155550188", 0.65)]
    assert "dgm-test-key" not in str(result.model_dump())


async def test_most_probable_is_low(http: ExternalHttp, respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{BASE}/v6/findEmail").mock(
        return_value=httpx.Response(200, json=recording("datagm_find_email_most_probable"))
    )
    person = PersonQuery(full_name="Jane Doe", company_name="Stripe")
    result = await _provider(http).lookup(person)
    assert [(e.address, e.confidence) for e in result.emails] == [("jdoe@stripe.com", 0.6)]


async def test_not_found_is_a_miss(http: ExternalHttp, respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{BASE}/v6/findEmail").mock(
        return_value=httpx.Response(200, json=recording("datagm_find_email_not_found"))
    )
    respx_mock.get(f"{BASE}/v1/search").mock(
        return_value=httpx.Response(200, json=recording("datagm_not_found_code"))
    )
    result = await _provider(http).lookup(JANE)
    assert result.status is ResultStatus.MISS


async def test_no_credits_in_the_body_is_a_final_error(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(f"{BASE}/v6/findEmail").mock(
        return_value=httpx.Response(200, json=recording("datagm_no_credits"))
    )
    result = await _provider(http).lookup(JANE)
    assert (result.status, result.transient) == (ResultStatus.ERROR, False)
    assert result.error is not None and "no credits" in result.error
