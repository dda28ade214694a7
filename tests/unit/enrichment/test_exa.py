"""Exa against recorded answers: contacts are extracted from text with low confidence."""

from __future__ import annotations

import httpx
import respx

from sourcing.common.http import ExternalHttp
from sourcing.enrichment.providers import EmailKind, ExaProvider, PersonQuery, ResultStatus
from tests.unit.enrichment.support import make_settings, recording, sent_json

URL = "https://api.exa.ai/search"
JANE = PersonQuery(full_name="Jane Doe", company_name="Stripe", company_domain="stripe.com")


def _provider(http: ExternalHttp) -> ExaProvider:
    return ExaProvider(settings=make_settings(), http=http)


async def test_contacts_in_text_are_found_with_low_confidence(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(URL).mock(
        return_value=httpx.Response(200, json=recording("exa_search_hit"))
    )
    result = await _provider(http).lookup(JANE)
    request = route.calls.last.request
    assert request.headers["x-api-key"] == "exa-test-key"
    assert sent_json(request) == {
        "query": '"Jane Doe" Stripe email',
        "type": "auto",
        "category": "people",
        "numResults": 5,
        "contents": {"text": True},
    }
    assert result.status is ResultStatus.HIT
    assert [(e.address, e.kind, e.confidence) for e in result.emails] == [
        ("jane.doe@stripe.com", EmailKind.PROFESSIONAL, 0.5),  # company domain + last name
        ("jdoe.talks@gmail.com", EmailKind.PERSONAL, 0.35),
    ]  # press@stripe.com is a role mailbox: ignored
    assert [(p.e164, p.confidence) for p in result.phones] == [("+14155550199", 0.2)]
    assert result.confidence is not None and result.confidence < 0.7


async def test_pages_without_personal_contacts_are_a_miss(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(URL).mock(return_value=httpx.Response(200, json=recording("exa_search_empty")))
    result = await _provider(http).lookup(JANE)
    assert result.status is ResultStatus.MISS
    assert result.raw is not None and "search" in result.raw
