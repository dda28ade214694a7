"""People Data Labs against recorded answers: likelihood as confidence, masked free-plan fields."""

from __future__ import annotations

import httpx
import respx

from sourcing.common.http import ExternalHttp
from sourcing.enrichment.providers import (
    EmailKind,
    PeopleDataLabsProvider,
    PersonQuery,
    PhoneType,
    ResultStatus,
)
from tests.unit.enrichment.support import make_settings, recording

URL = "https://api.peopledatalabs.com/v5/person/enrich"
JANE = PersonQuery(
    full_name="Jane Doe",
    company_domain="stripe.com",
    linkedin_url="https://www.linkedin.com/in/janedoe",
)


def _provider(http: ExternalHttp) -> PeopleDataLabsProvider:
    return PeopleDataLabsProvider(settings=make_settings(), http=http)


async def test_hit_scores_by_likelihood(http: ExternalHttp, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get(URL).mock(
        return_value=httpx.Response(200, json=recording("peopledatalabs_enrich_hit"))
    )
    result = await _provider(http).lookup(JANE)
    request = route.calls.last.request
    assert request.headers["X-Api-Key"] == "pdl-test-key"
    assert dict(request.url.params) == {
        "profile": "https://www.linkedin.com/in/janedoe",
        "min_likelihood": "3",
    }
    assert result.status is ResultStatus.HIT
    assert [(e.address, e.kind, e.confidence) for e in result.emails] == [
        ("jane.doe@stripe.com", EmailKind.PROFESSIONAL, 0.8),
        ("janedoe88@gmail.com", EmailKind.PERSONAL, 0.8),
        ("jane@oldcorp.com", EmailKind.PROFESSIONAL, 0.8),
    ]
    assert [(p.e164, p.type, p.confidence) for p in result.phones] == [
        ("+14155550155", PhoneType.MOBILE, 0.8),
        ("+14155550100", PhoneType.OTHER, 0.64),
    ]


async def test_name_and_company_without_linkedin(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.get(URL).mock(
        return_value=httpx.Response(200, json=recording("peopledatalabs_enrich_hit"))
    )
    await _provider(http).lookup(PersonQuery(full_name="Jane Doe", company_name="Stripe"))
    assert dict(route.calls.last.request.url.params) == {
        "first_name": "Jane",
        "last_name": "Doe",
        "company": "Stripe",
        "min_likelihood": "3",
    }


async def test_fields_masked_as_booleans_are_no_contacts(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(URL).mock(
        return_value=httpx.Response(200, json=recording("peopledatalabs_enrich_free_plan"))
    )
    result = await _provider(http).lookup(JANE)
    assert (result.status, result.http_status) == (ResultStatus.MISS, 200)


async def test_404_is_a_miss(http: ExternalHttp, respx_mock: respx.MockRouter) -> None:
    respx_mock.get(URL).mock(
        return_value=httpx.Response(404, json=recording("peopledatalabs_not_found"))
    )
    result = await _provider(http).lookup(JANE)
    assert (result.status, result.http_status, result.transient) == (ResultStatus.MISS, 404, False)
