"""Zeliq answers only by callback: unavailable without a callback URL or secret, else jobs are
submitted, each with its own signed callback URL, and the attempt is pending."""

from __future__ import annotations

import httpx
import respx

from sourcing.common.callbacks import callback_signature_valid
from sourcing.common.http import ExternalHttp
from sourcing.enrichment.providers import PersonQuery, ResultStatus, Verification, ZeliqProvider
from tests.unit.enrichment.support import make_settings, recording, sent_json

BASE = "https://api.zeliq.com/api"
CALLBACK = "https://hooks.example.test/zeliq"
SECRET = "zeliq-callback-test-secret"


def _signed_url_of(url: str, kind: str, request_id: object) -> bool:
    """``url`` is ``<CALLBACK>/<requestId>/<kind>?signature=...`` signed with SECRET."""
    head, _, query = url.partition("?signature=")
    return head == f"{CALLBACK}/{request_id}/{kind}" and callback_signature_valid(
        query,
        request_id,
        kind,
        secrets=[SECRET],  # type: ignore[arg-type]
    )


async def test_without_a_callback_url_or_secret_zeliq_is_unavailable(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    for missing in ({"ZELIQ_CALLBACK_URL": None}, {"ZELIQ_CALLBACK_SECRET": None}):
        # Development fills the secret; outside it, it may be unset.
        settings = make_settings().model_copy(update=missing)
        result = await ZeliqProvider(settings=settings, http=http).lookup(
            PersonQuery(full_name="Jane Doe", company_domain="stripe.com")
        )
        assert result.status is ResultStatus.UNAVAILABLE, missing
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
    provider = ZeliqProvider(settings=make_settings(ZELIQ_CALLBACK_SECRET=SECRET), http=http)
    result = await provider.lookup(
        PersonQuery(full_name="Jane Doe", company_domain="stripe.com", company_name="Stripe")
    )
    expected = {"first_name": "Jane", "last_name": "Doe", "domain": "stripe.com"}
    assert result.callback_request_id is not None
    for kind, route in (("email", email), ("phone", phone)):
        request = route.calls.last.request
        assert request.headers["x-api-key"] == "sk-zeliq-test-key"
        assert "authorization" not in request.headers
        sent = sent_json(request)
        assert _signed_url_of(sent.pop("callbackUrl"), kind, result.callback_request_id)
        assert sent == expected
    assert result.status is ResultStatus.PENDING
    assert result.callback_jobs == {
        "email": "6f1d3c1e-2b7a-4d8e-9a51-0c2f5e7b9d10",
        "phone": "b0b2c3d4-0000-4000-8000-000000000001",
    }
    assert result.http_status == 202


async def test_linkedin_url_is_preferred(http: ExternalHttp, respx_mock: respx.MockRouter) -> None:
    email = respx_mock.post(f"{BASE}/contact/enrich/email").mock(
        return_value=httpx.Response(202, json=recording("zeliq_accepted"))
    )
    respx_mock.post(f"{BASE}/contact/enrich/phone").mock(return_value=httpx.Response(503))
    provider = ZeliqProvider(settings=make_settings(ZELIQ_CALLBACK_SECRET=SECRET), http=http)
    result = await provider.lookup(
        PersonQuery(full_name="Jane Doe", linkedin_url="https://www.linkedin.com/in/janedoe")
    )
    sent = sent_json(email.calls.last.request)
    assert _signed_url_of(sent.pop("callbackUrl"), "email", result.callback_request_id)
    assert sent == {"linkedin_url": "https://www.linkedin.com/in/janedoe"}
    # The phone submission failed: the email job is still reported, and awaited alone.
    assert result.status is ResultStatus.PENDING
    assert result.callback_jobs == {"email": "6f1d3c1e-2b7a-4d8e-9a51-0c2f5e7b9d10"}


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


def test_callbacks_settle_the_attempt_hit_miss_or_timeout(http: ExternalHttp) -> None:
    provider = ZeliqProvider(settings=make_settings(ZELIQ_CALLBACK_SECRET=SECRET), http=http)
    person = PersonQuery(full_name="Jane Doe", company_domain="stripe.com")
    email = {
        "contact": {
            "most_probable_email": "jane@stripe.com",
            "most_probable_email_status": "catch_all",
        }
    }
    hit = provider.callback_result(
        [email, {"contact": {}}], person, answered_all=True, latency_ms=5
    )
    assert (hit.status, hit.confidence) == (ResultStatus.HIT, 0.6)
    miss = provider.callback_result([{"contact": {}}], person, answered_all=True, latency_ms=5)
    assert (miss.status, miss.error) == (ResultStatus.MISS, None)
    late = provider.callback_result([], person, answered_all=False, latency_ms=5)
    assert late.status is ResultStatus.TIMEOUT and late.transient
    assert late.error == "no callback within ZELIQ_CALLBACK_TIMEOUT_SECONDS"
