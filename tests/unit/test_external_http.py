"""Outbound HTTP: bounded retries on transient failures, none on client errors, metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import respx

from sourcing.common.http import PROVIDER_REQUESTS, ExternalHttp, ProviderError, RetryPolicy

URL = "https://provider.test/v1/lookup"
FAST = RetryPolicy(attempts=3, base_seconds=0.0, cap_seconds=0.0, max_retry_after_seconds=0.01)


def _count(provider: str, outcome: str) -> float:
    return PROVIDER_REQUESTS.labels(provider, outcome)._value.get()


@respx.mock
async def test_transient_failures_are_retried_until_success() -> None:
    route = respx.post(URL).mock(
        side_effect=[
            httpx.Response(503),
            httpx.Response(429, headers={"Retry-After": "0"}),
            httpx.Response(200, json={"ok": True}),
        ]
    )
    client = ExternalHttp(retry=FAST)
    before = _count("retrying", "success")
    response = await client.request("retrying", "POST", URL, json={"q": 1})
    assert response.json() == {"ok": True}
    assert route.call_count == 3
    assert _count("retrying", "success") == before + 1
    assert _count("retrying", "http_5xx") >= 1
    await client.aclose()


@respx.mock
async def test_retries_are_bounded_and_reported_transient() -> None:
    route = respx.get(URL).mock(return_value=httpx.Response(502))
    client = ExternalHttp(retry=FAST)
    with pytest.raises(ProviderError) as raised:
        await client.request("down", "GET", URL)
    assert raised.value.transient
    assert route.call_count == 3
    await client.aclose()


@respx.mock
async def test_client_errors_are_not_retried() -> None:
    route = respx.get(URL).mock(return_value=httpx.Response(401, text="bad key"))
    client = ExternalHttp(retry=FAST)
    with pytest.raises(ProviderError) as raised:
        await client.request("strict", "GET", URL)
    assert (raised.value.status, raised.value.transient) == (401, False)
    assert route.call_count == 1
    await client.aclose()


@respx.mock
async def test_ok_statuses_are_returned_and_timeouts_retried() -> None:
    respx.get(URL).mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.Response(404, json={"found": False})]
    )
    client = ExternalHttp(retry=FAST)
    before = _count("lookup", "timeout")
    response = await client.request("lookup", "GET", URL, ok_statuses=frozenset({404}))
    assert response.status_code == 404
    assert _count("lookup", "timeout") == before + 1
    await client.aclose()


@respx.mock
@pytest.mark.parametrize("as_date", [False, True])
async def test_a_retry_after_beyond_the_cap_ends_the_call_without_an_early_request(
    as_date: bool,
) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    header = later if as_date else "90"
    route = respx.get(URL).mock(return_value=httpx.Response(429, headers={"Retry-After": header}))
    client = ExternalHttp(retry=FAST)
    with pytest.raises(ProviderError) as raised:
        await client.request("patient", "GET", URL)
    assert route.call_count == 1
    assert raised.value.status == 429 and raised.value.transient
    assert raised.value.retry_after == pytest.approx(90, abs=2)
    await client.aclose()
