"""RocketReach against recorded answers: lookup, checkStatus polling, grades and smtp_valid."""

from __future__ import annotations

import httpx
import respx

from sourcing.common.http import ExternalHttp
from sourcing.enrichment.providers import (
    EmailKind,
    PersonQuery,
    PhoneType,
    ResultStatus,
    RocketReachProvider,
    Verification,
)
from tests.unit.enrichment.support import make_settings, recording

BASE = "https://api.rocketreach.co/api/v2"
JANE = PersonQuery(
    full_name="Jane Doe", company_name="Stripe", linkedin_url="https://www.linkedin.com/in/janedoe"
)


def _provider(http: ExternalHttp) -> RocketReachProvider:
    return RocketReachProvider(settings=make_settings(), http=http)


async def test_lookup_then_poll_until_complete(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    lookup = respx_mock.get(f"{BASE}/person/lookup").mock(
        return_value=httpx.Response(200, json=recording("rocketreach_lookup_searching"))
    )
    status = respx_mock.get(f"{BASE}/person/checkStatus").mock(
        return_value=httpx.Response(200, json=recording("rocketreach_check_status_complete"))
    )
    result = await _provider(http).lookup(JANE)

    request = lookup.calls.last.request
    assert request.headers["Api-Key"] == "rr-test-key"
    assert dict(request.url.params) == {"linkedin_url": "https://www.linkedin.com/in/janedoe"}
    assert dict(status.calls.last.request.url.params) == {"ids": "5244106"}
    assert status.call_count == 1

    assert result.status is ResultStatus.HIT
    assert [(e.address, e.kind, e.verification, e.confidence) for e in result.emails] == [
        ("jane.doe@stripe.com", EmailKind.PROFESSIONAL, Verification.VERIFIED, 0.95),
        ("jdoe@stripe.com", EmailKind.PROFESSIONAL, Verification.CATCH_ALL, 0.6),
        ("janedoe88@gmail.com", EmailKind.PERSONAL, Verification.VERIFIED, 0.9),
    ]  # the invalid, grade F address is dropped
    assert [(p.e164, p.type, p.confidence) for p in result.phones] == [
        ("+14155550111", PhoneType.MOBILE, 0.75)
    ]  # the invalid office number is dropped
    assert result.raw is not None and result.raw["polls"] == 1


async def test_name_and_employer_without_linkedin(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    lookup = respx_mock.get(f"{BASE}/person/lookup").mock(
        return_value=httpx.Response(200, json=recording("rocketreach_check_status_complete")[0])
    )
    result = await _provider(http).lookup(PersonQuery(full_name="Jane Doe", company_name="Stripe"))
    assert dict(lookup.calls.last.request.url.params) == {
        "name": "Jane Doe",
        "current_employer": "Stripe",
    }
    assert result.status is ResultStatus.HIT  # already complete: no polling


async def test_failed_lookup_is_a_miss(http: ExternalHttp, respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{BASE}/person/lookup").mock(
        return_value=httpx.Response(200, json=recording("rocketreach_lookup_searching"))
    )
    respx_mock.get(f"{BASE}/person/checkStatus").mock(
        return_value=httpx.Response(200, json=recording("rocketreach_check_status_failed"))
    )
    result = await _provider(http).lookup(JANE)
    assert result.status is ResultStatus.MISS


async def test_unknown_person_404_is_a_miss(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    respx_mock.get(f"{BASE}/person/lookup").mock(
        return_value=httpx.Response(404, json={"detail": "Not found."})
    )
    result = await _provider(http).lookup(JANE)
    assert (result.status, result.http_status) == (ResultStatus.MISS, 404)


async def test_polling_is_bounded(http: ExternalHttp, respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{BASE}/person/lookup").mock(
        return_value=httpx.Response(200, json=recording("rocketreach_lookup_searching"))
    )
    status = respx_mock.get(f"{BASE}/person/checkStatus").mock(
        return_value=httpx.Response(200, json=[recording("rocketreach_lookup_searching")])
    )
    result = await _provider(http).lookup(JANE)
    assert result.status is ResultStatus.TIMEOUT
    assert status.call_count == 3  # ENRICHMENT_POLL_MAX_ATTEMPTS in the test settings
    assert result.error is not None and "pending" in result.error
