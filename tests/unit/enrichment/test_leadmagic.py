"""LeadMagic against recorded answers: request shapes, confidence from `status`, phone bonus."""

from __future__ import annotations

import httpx
import respx

from sourcing.common.http import ExternalHttp
from sourcing.enrichment.providers import (
    EmailKind,
    LeadMagicProvider,
    PersonQuery,
    PhoneType,
    ResultStatus,
    Verification,
)
from tests.unit.enrichment.support import make_settings, recording, sent_json

BASE = "https://api.leadmagic.io"
JANE = PersonQuery(
    full_name="Jane Doe",
    company_name="Stripe",
    company_domain="https://www.stripe.com/",
    linkedin_url="https://www.linkedin.com/in/janedoe",
    country_iso="US",
)


def _provider(http: ExternalHttp) -> LeadMagicProvider:
    return LeadMagicProvider(settings=make_settings(), http=http)


async def test_hit_sends_the_documented_requests_and_scores_valid_high(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    email = respx_mock.post(f"{BASE}/v1/people/email-finder").mock(
        return_value=httpx.Response(200, json=recording("leadmagic_email_finder_valid"))
    )
    mobile = respx_mock.post(f"{BASE}/mobile-finder").mock(
        return_value=httpx.Response(200, json=recording("leadmagic_mobile_finder_found"))
    )
    result = await _provider(http).lookup(JANE)

    request = email.calls.last.request
    assert request.headers["X-API-Key"] == "lm-test-key"
    assert request.headers["content-type"] == "application/json"
    assert sent_json(request) == {"first_name": "Jane", "last_name": "Doe", "domain": "stripe.com"}
    assert sent_json(mobile.calls.last.request) == {"profile_url": JANE.linkedin_url}

    assert result.status is ResultStatus.HIT
    assert [(e.address, e.kind, e.verification, e.confidence) for e in result.emails] == [
        ("jane.doe@stripe.com", EmailKind.PROFESSIONAL, Verification.VERIFIED, 0.95)
    ]
    assert [(p.e164, p.type, p.confidence) for p in result.phones] == [
        ("+14155550132", PhoneType.MOBILE, 0.65)
    ]
    assert result.confidence == 0.95
    assert result.http_status == 200
    assert result.raw is not None and set(result.raw) == {"email-finder", "mobile-finder"}
    assert "lm-test-key" not in str(result.model_dump())


async def test_catch_all_is_low_confidence_and_company_name_replaces_a_missing_domain(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    email = respx_mock.post(f"{BASE}/v1/people/email-finder").mock(
        return_value=httpx.Response(200, json=recording("leadmagic_email_finder_catch_all"))
    )
    respx_mock.post(f"{BASE}/mobile-finder").mock(
        return_value=httpx.Response(200, json=recording("leadmagic_mobile_finder_none"))
    )
    person = PersonQuery(full_name="Jane Doe", company_name="Acme", email="jane@acme.test")
    result = await _provider(http).lookup(person)
    assert sent_json(email.calls.last.request) == {
        "first_name": "Jane",
        "last_name": "Doe",
        "company_name": "Acme",
    }
    assert result.status is ResultStatus.HIT
    assert result.confidence == 0.5
    assert result.emails[0].verification is Verification.CATCH_ALL
    assert result.phones == []


async def test_not_found_everywhere_is_a_miss(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(f"{BASE}/v1/people/email-finder").mock(
        return_value=httpx.Response(200, json=recording("leadmagic_email_finder_not_found"))
    )
    respx_mock.post(f"{BASE}/mobile-finder").mock(
        return_value=httpx.Response(200, json=recording("leadmagic_mobile_finder_none"))
    )
    result = await _provider(http).lookup(JANE)
    assert (result.status, result.confidence, result.emails, result.phones) == (
        ResultStatus.MISS,
        None,
        [],
        [],
    )


async def test_a_failed_phone_lookup_keeps_the_email(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(f"{BASE}/v1/people/email-finder").mock(
        return_value=httpx.Response(200, json=recording("leadmagic_email_finder_valid"))
    )
    respx_mock.post(f"{BASE}/mobile-finder").mock(return_value=httpx.Response(500))
    result = await _provider(http).lookup(JANE)
    assert result.status is ResultStatus.HIT
    assert result.confidence == 0.95
    assert result.raw is not None and "mobile-finder:error" in result.raw


async def test_no_credits_is_a_final_error(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(f"{BASE}/v1/people/email-finder").mock(
        return_value=httpx.Response(
            402,
            json=recording("leadmagic_problem_402"),
            headers={"content-type": "application/problem+json"},
        )
    )
    result = await _provider(http).lookup(JANE)
    assert (result.status, result.http_status, result.transient) == (ResultStatus.ERROR, 402, False)
    assert result.error is not None and "run out of credits" in result.error


async def test_without_company_or_linkedin_nothing_is_sent(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    result = await _provider(http).lookup(PersonQuery(full_name="Jane Doe"))
    assert result.status is ResultStatus.MISS
    assert result.error is not None and "needs" in result.error
    assert len(respx_mock.calls) == 0
