"""Forager against recorded answers: LinkedIn identifier in, three lookups, validation status."""

from __future__ import annotations

from typing import Any

import httpx
import respx

from sourcing.common.http import ExternalHttp
from sourcing.enrichment.providers import (
    EmailKind,
    ForagerProvider,
    PersonQuery,
    ResultStatus,
    Verification,
)
from tests.unit.enrichment.support import make_settings, recording, sent_json

BASE = "https://api-v2.forager.ai/api/acc-42/datastorage/person_contacts_lookup"
JANE = PersonQuery(
    full_name="Jane Doe",
    linkedin_url="https://www.linkedin.com/in/JaneDoe/?originalSubdomain=uk",
    country_iso="US",
)


def _provider(http: ExternalHttp, **settings: Any) -> ForagerProvider:
    return ForagerProvider(settings=make_settings(**settings), http=http)


def _mock(
    respx_mock: respx.MockRouter, work: object, personal: object, phones: object
) -> dict[str, respx.Route]:
    return {
        "work": respx_mock.post(f"{BASE}/work_emails/").mock(
            return_value=httpx.Response(200, json=work)
        ),
        "personal": respx_mock.post(f"{BASE}/personal_emails/").mock(
            return_value=httpx.Response(200, json=personal)
        ),
        "phones": respx_mock.post(f"{BASE}/phone_numbers/").mock(
            return_value=httpx.Response(200, json=phones)
        ),
    }


async def test_hit(http: ExternalHttp, respx_mock: respx.MockRouter) -> None:
    routes = _mock(
        respx_mock,
        recording("forager_work_emails"),
        recording("forager_personal_emails"),
        recording("forager_phone_numbers"),
    )
    result = await _provider(http).lookup(JANE)
    for route in routes.values():
        request = route.calls.last.request
        assert request.headers["X-API-KEY"] == "fg-test-key"
        assert sent_json(request) == {"linkedin_public_identifier": "janedoe"}
    assert result.status is ResultStatus.HIT
    assert [(e.address, e.kind, e.verification, e.confidence) for e in result.emails] == [
        ("jane.doe@stripe.com", EmailKind.PROFESSIONAL, Verification.VERIFIED, 0.9),
        ("jdoe@stripe.com", EmailKind.PROFESSIONAL, Verification.CATCH_ALL, 0.6),
        ("janedoe88@gmail.com", EmailKind.PERSONAL, Verification.VERIFIED, 0.9),
    ]
    assert [(p.e164, p.confidence) for p in result.phones] == [("+14155550166", 0.65)]


async def test_personal_emails_are_not_looked_up_in_europe(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    routes = _mock(respx_mock, recording("forager_work_emails"), [], [])
    person = JANE.model_copy(update={"country_iso": "gb"})
    result = await _provider(http).lookup(person)
    assert routes["personal"].call_count == 0
    assert result.status is ResultStatus.HIT


async def test_empty_lists_are_a_miss(http: ExternalHttp, respx_mock: respx.MockRouter) -> None:
    _mock(respx_mock, [], [], [])
    result = await _provider(http).lookup(JANE)
    assert result.status is ResultStatus.MISS


async def test_without_linkedin_nothing_is_sent(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    result = await _provider(http).lookup(PersonQuery(full_name="Jane Doe", company_name="Stripe"))
    assert result.status is ResultStatus.MISS
    assert len(respx_mock.calls) == 0


def test_an_account_id_is_required(http: ExternalHttp) -> None:
    assert ForagerProvider.is_available(make_settings())
    assert not ForagerProvider.is_available(make_settings(FORAGER_ACCOUNT_ID=None))
