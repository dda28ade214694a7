"""Zeliq answers only by callback: unavailable without a callback URL, else jobs are submitted."""

from __future__ import annotations

import httpx
import respx

from sourcing.common.http import ExternalHttp
from sourcing.enrichment.providers import PersonQuery, ResultStatus, Verification, ZeliqProvider
from tests.unit.enrichment.support import make_settings, recording, sent_json

BASE = "https://api.zeliq.com/api"
CALLBACK = "https://hooks.example.test/zeliq"


async def test_without_a_callback_url_zeliq_is_unavailable(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    provider = ZeliqProvider(settings=make_settings(ZELIQ_CALLBACK_URL=None), http=http)
    result = await provider.lookup(PersonQuery(full_name="Jane Doe", company_domain="stripe.com"))
    assert result.status is ResultStatus.UNAVAILABLE
    assert len(respx_mock.calls) == 0


async def test_jobs_are_submitted_with_the_callback(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    email = respx_mock.post(f"{BASE}/contact/enrich/email").mock(
        return_value=httpx.Response(202, json=recording("zeliq_accepted"))
    )
    phone = respx_mock.post(f"{BASE}/contact/enrich/phone").mock(
        return_value=httpx.Response(202, json={"jobId": "b0b2c3d4-0000-4000-8000-000000000001"})
    )
    provider = ZeliqProvider(settings=make_settings(), http=http)
    result = await provider.lookup(
        PersonQuery(full_name="Jane Doe", company_domain="stripe.com", company_name="Stripe")
    )
    expected = {
        "first_name": "Jane",
        "last_name": "Doe",
        "domain": "stripe.com",
        "callbackUrl": CALLBACK,
    }
    for route in (email, phone):
        request = route.calls.last.request
        assert request.headers["x-api-key"] == "sk-zeliq-test-key"
        assert "authorization" not in request.headers
        assert sent_json(request) == expected
    assert result.status is ResultStatus.MISS
    assert result.pending_job_ids == [
        "6f1d3c1e-2b7a-4d8e-9a51-0c2f5e7b9d10",
        "b0b2c3d4-0000-4000-8000-000000000001",
    ]
    assert result.http_status == 202


async def test_linkedin_url_is_preferred(http: ExternalHttp, respx_mock: respx.MockRouter) -> None:
    email = respx_mock.post(f"{BASE}/contact/enrich/email").mock(
        return_value=httpx.Response(202, json=recording("zeliq_accepted"))
    )
    respx_mock.post(f"{BASE}/contact/enrich/phone").mock(return_value=httpx.Response(503))
    provider = ZeliqProvider(settings=make_settings(), http=http)
    result = await provider.lookup(
        PersonQuery(full_name="Jane Doe", linkedin_url="https://www.linkedin.com/in/janedoe")
    )
    assert sent_json(email.calls.last.request) == {
        "linkedin_url": "https://www.linkedin.com/in/janedoe",
        "callbackUrl": CALLBACK,
    }
    # The phone submission failed: the email job is still reported.
    assert result.pending_job_ids == ["6f1d3c1e-2b7a-4d8e-9a51-0c2f5e7b9d10"]


def test_callback_bodies_become_contacts() -> None:
    emails, phones = ZeliqProvider.read_callback(
        {
            "contact": {
                "most_probable_email": "Jane.Doe@Stripe.com",
                "most_probable_email_status": "valid",
                "most_probable_phone": "+1 415 555 0122",
            }
        },
        PersonQuery(full_name="Jane Doe", company_domain="stripe.com"),
    )
    assert [(e.address, e.verification, e.confidence) for e in emails] == [
        ("jane.doe@stripe.com", Verification.VERIFIED, 0.9)
    ]
    assert [p.e164 for p in phones] == ["+14155550122"]
