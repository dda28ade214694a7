"""Every adapter against the failures the waterfall must survive: 5xx, 4xx, timeouts, 429,
an exhausted time budget and a missing credential. The first request's shape is asserted too."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
import pytest
import respx

from sourcing.common.http import ExternalHttp
from sourcing.enrichment.providers import (
    PROVIDERS,
    PersonQuery,
    ResultStatus,
    build_providers,
)
from tests.unit.enrichment.support import API_KEYS, make_settings

JANE = PersonQuery(
    full_name="Jane Doe",
    company_name="Stripe",
    company_domain="stripe.com",
    linkedin_url="https://www.linkedin.com/in/janedoe",
    country_iso="US",
)


@dataclass(frozen=True)
class FirstCall:
    method: str
    host: str
    path: str
    auth: tuple[str, str] | None  # (header, value); None when the key travels in the query


FIRST_CALLS: dict[str, FirstCall] = {
    "leadmagic": FirstCall(
        "POST", "api.leadmagic.io", "/v1/people/email-finder", ("X-API-Key", "lm-test-key")
    ),
    "prospeo": FirstCall("POST", "api.prospeo.io", "/enrich-person", ("X-KEY", "pr-test-key")),
    "exa": FirstCall("POST", "api.exa.ai", "/search", ("x-api-key", "exa-test-key")),
    "rocketreach": FirstCall(
        "GET", "api.rocketreach.co", "/api/v2/person/lookup", ("Api-Key", "rr-test-key")
    ),
    "wiza": FirstCall(
        "POST", "wiza.co", "/api/individual_reveals", ("Authorization", "Bearer wiza-test-key")
    ),
    "forager": FirstCall(
        "POST",
        "api-v2.forager.ai",
        "/api/acc-42/datastorage/person_contacts_lookup/work_emails/",
        ("X-API-KEY", "fg-test-key"),
    ),
    "zeliq": FirstCall(
        "POST", "api.zeliq.com", "/api/contact/enrich/email", ("x-api-key", "sk-zeliq-test-key")
    ),
    "contactout": FirstCall(
        "GET", "api.contactout.com", "/v1/people/linkedin", ("token", "co-test-key")
    ),
    "datagm": FirstCall("GET", "gateway.datagma.net", "/api/ingress/v6/findEmail", None),
    "peopledatalabs": FirstCall(
        "GET", "api.peopledatalabs.com", "/v5/person/enrich", ("X-Api-Key", "pdl-test-key")
    ),
}
KEYS = sorted(FIRST_CALLS)


def test_every_registered_provider_is_covered() -> None:
    assert set(FIRST_CALLS) == set(PROVIDERS)


def _route(respx_mock: respx.MockRouter, key: str) -> respx.Route:
    first = FIRST_CALLS[key]
    return respx_mock.route(method=first.method, scheme="https", host=first.host, path=first.path)


def _assert_first_request(key: str, request: httpx.Request) -> None:
    first = FIRST_CALLS[key]
    assert request.method == first.method
    assert request.url.path == first.path
    if first.auth is None:
        assert request.url.params["apiId"] == API_KEYS["DATAGM_API_KEY"]
    else:
        header, value = first.auth
        assert request.headers[header] == value


@pytest.mark.parametrize("key", KEYS)
async def test_server_errors_are_retried_then_reported_transient(
    key: str, http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    route = _route(respx_mock, key).mock(return_value=httpx.Response(503, json={"error": "down"}))
    provider = build_providers(make_settings(), http)[key]
    result = await provider.lookup(JANE)
    assert result.status is ResultStatus.ERROR
    assert result.transient
    assert result.http_status == 503
    assert route.call_count == 3  # ExternalHttp's bounded retry
    assert result.emails == [] and result.phones == [] and result.confidence is None
    _assert_first_request(key, route.calls[0].request)


@pytest.mark.parametrize("status", [401, 402, 403])
@pytest.mark.parametrize("key", KEYS)
async def test_client_errors_are_final(
    key: str, status: int, http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    route = _route(respx_mock, key).mock(
        return_value=httpx.Response(status, json={"message": "no: " + API_KEYS["DATAGM_API_KEY"]})
    )
    provider = build_providers(make_settings(), http)[key]
    result = await provider.lookup(JANE)
    assert (result.status, result.transient, result.http_status) == (
        ResultStatus.ERROR,
        False,
        status,
    )
    assert route.call_count == 1
    assert result.error is not None and f"HTTP {status}" in result.error
    # A credential echoed by the vendor never reaches the attempt row.
    if key == "datagm":
        assert API_KEYS["DATAGM_API_KEY"] not in result.error


@pytest.mark.parametrize("key", KEYS)
async def test_read_timeouts_become_timeout(
    key: str, http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    route = _route(respx_mock, key).mock(side_effect=httpx.ReadTimeout("slow vendor"))
    provider = build_providers(make_settings(), http)[key]
    result = await provider.lookup(JANE)
    assert result.status is ResultStatus.TIMEOUT
    assert result.transient
    assert route.call_count == 3


@pytest.mark.parametrize("key", KEYS)
async def test_rate_limits_honour_retry_after_then_report_rate_limited(
    key: str, http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    """A Retry-After within the retry policy's cap is waited out and retried."""
    route = _route(respx_mock, key).mock(
        return_value=httpx.Response(
            429, headers={"Retry-After": "0.005"}, json={"error": "slow down"}
        )
    )
    provider = build_providers(make_settings(), http)[key]
    result = await provider.lookup(JANE)
    assert result.status is ResultStatus.RATE_LIMITED
    assert result.transient and result.http_status == 429
    assert route.call_count == 3
    assert result.retry_after == 0.005


@pytest.mark.parametrize("key", KEYS)
async def test_a_long_retry_after_ends_the_lookup_without_an_early_request(
    key: str, http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    """Beyond the cap no request goes before Retry-After elapses: the result carries it (the
    waterfall's breaker holds the provider until then) and costs nothing."""
    route = _route(respx_mock, key).mock(
        return_value=httpx.Response(429, headers={"Retry-After": "120"}, json={"error": "slow"})
    )
    provider = build_providers(make_settings(), http)[key]
    result = await provider.lookup(JANE)
    assert result.status is ResultStatus.RATE_LIMITED
    assert result.http_status == 429
    assert route.call_count == 1
    assert result.retry_after == 120.0
    assert result.credits == 0.0


@pytest.mark.parametrize("key", KEYS)
async def test_the_time_budget_bounds_a_hanging_vendor(
    key: str, http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.5)
        return httpx.Response(200, json={})

    _route(respx_mock, key).mock(side_effect=hang)
    provider = build_providers(make_settings(), http)[key]
    result = await provider.lookup(JANE, budget_seconds=0.05)
    assert result.status is ResultStatus.TIMEOUT
    assert result.latency_ms < 400


@pytest.mark.parametrize("key", KEYS)
async def test_without_credentials_nothing_is_sent(
    key: str, http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    route = _route(respx_mock, key)
    provider = build_providers(make_settings(with_keys=False), http)[key]
    assert not provider.available
    result = await provider.lookup(JANE)
    assert result.status is ResultStatus.UNAVAILABLE
    assert route.call_count == 0


@pytest.mark.parametrize("key", KEYS)
async def test_a_non_json_answer_is_an_error_not_a_crash(
    key: str, http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    _route(respx_mock, key).mock(return_value=httpx.Response(200, text="<html>oops</html>"))
    provider = build_providers(make_settings(), http)[key]
    result = await provider.lookup(JANE)
    assert result.status is ResultStatus.ERROR
    assert not result.transient
    assert result.error is not None and "malformed" in result.error
