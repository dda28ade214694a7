"""Outbound HTTP to third parties: every call has a timeout, a bounded retry and metrics.

Provider and channel adapters send their vendor's real requests through `ExternalHttp`; tests
and the sandbox point the base URLs at local servers. Retries here are short and few (the
agent's own retry policy sits above them): transport errors, 408/425/429/5xx, honouring a
`Retry-After` up to a cap. A longer `Retry-After` ends the call at once: no request goes out
before it elapses, and :attr:`ProviderError.retry_after` tells the caller when it may ask again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from prometheus_client import Counter, Histogram

from sourcing.common import tracing
from sourcing.common.kafka.retry import TRANSIENT_HTTP_STATUSES, backoff_delay

PROVIDER_REQUESTS = Counter(
    "sourcing_provider_requests_total",
    "Calls to third-party providers by provider and outcome",
    ["provider", "outcome"],
)
PROVIDER_LATENCY = Histogram(
    "sourcing_provider_request_duration_seconds",
    "Latency of third-party provider calls",
    ["provider"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3
    base_seconds: float = 0.2
    cap_seconds: float = 5.0
    max_retry_after_seconds: float = 10.0


class ProviderError(Exception):
    """A provider call failed for good (after retries, or with a non-retryable answer)."""

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        status: int | None = None,
        transient: bool = False,
        timed_out: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.status = status  # the last HTTP status received, if any
        self.transient = transient
        self.timed_out = timed_out  # the last attempt ended in a timeout
        # The last answer's Retry-After, in seconds: the provider asks for no request before.
        self.retry_after = retry_after


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The answer's ``Retry-After`` in seconds (delay-seconds or an HTTP date), if any."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class ExternalHttp:
    """The process's outbound client: one `httpx.AsyncClient` (connection pool) per provider.

    One pool per provider, not one for all: httpcore checks every pooled connection on each
    request, and a shared pool holding every vendor's connections made that scan about a
    quarter of the enrichment service's CPU.
    """

    def __init__(
        self,
        *,
        timeout_seconds: float = 10.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self._timeout = httpx.Timeout(timeout_seconds)
        self._transport = transport
        self._clients: dict[str, httpx.AsyncClient] = {}

    def _client(self, provider: str) -> httpx.AsyncClient:
        client = self._clients.get(provider)
        if client is None:
            client = self._clients[provider] = httpx.AsyncClient(
                timeout=self._timeout,
                transport=self._transport,
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            )
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    async def request(
        self,
        provider: str,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        files: Sequence[tuple[str, tuple[None, str]]] | None = None,
        auth: tuple[str, str] | None = None,
        ok_statuses: frozenset[int] = frozenset(),
    ) -> httpx.Response:
        """Send with retries; return the response when 2xx or in `ok_statuses`.

        Raises :class:`ProviderError` with ``transient=True`` when retries ran out on a
        transient failure (the agent may retry the whole message later), ``False`` otherwise.
        """
        last_error = "no attempt made"
        last_status: int | None = None
        last_retry_after: float | None = None
        timed_out = False
        for attempt in range(1, self.retry.attempts + 1):
            started = time.perf_counter()
            try:
                with tracing.provider_call_span(provider, method, url) as span:
                    response = await self._client(provider).request(
                        method,
                        url,
                        headers=headers,
                        json=json,
                        params=params,
                        data=data,
                        files=files,
                        auth=auth,
                    )
                    if span is not None:
                        span.set_attribute("http.response.status_code", response.status_code)
            except httpx.TransportError as exc:
                PROVIDER_LATENCY.labels(provider).observe(time.perf_counter() - started)
                outcome = (
                    "timeout" if isinstance(exc, httpx.TimeoutException) else "transport_error"
                )
                PROVIDER_REQUESTS.labels(provider, outcome).inc()
                last_error = f"{outcome}: {type(exc).__name__}"
                timed_out = isinstance(exc, httpx.TimeoutException)
                wait = None
            else:
                PROVIDER_LATENCY.labels(provider).observe(time.perf_counter() - started)
                status = response.status_code
                outcome = "success" if response.is_success else f"http_{status // 100}xx"
                PROVIDER_REQUESTS.labels(provider, outcome).inc()
                if response.is_success or status in ok_statuses:
                    return response
                if status not in TRANSIENT_HTTP_STATUSES:
                    raise ProviderError(
                        provider, f"HTTP {status}: {response.text[:300]}", status=status
                    )
                last_error, last_status, timed_out = f"HTTP {status}", status, False
                wait = last_retry_after = retry_after_seconds(response)
                if wait is not None and wait > self.retry.max_retry_after_seconds:
                    raise ProviderError(
                        provider,
                        f"HTTP {status}: asked to retry after {wait:g} s",
                        status=status,
                        transient=True,
                        retry_after=wait,
                    )
            if attempt < self.retry.attempts:
                await asyncio.sleep(
                    wait
                    if wait is not None
                    else backoff_delay(
                        attempt, base=self.retry.base_seconds, cap=self.retry.cap_seconds
                    )
                )
        raise ProviderError(
            provider,
            f"gave up after {self.retry.attempts} attempts ({last_error})",
            status=last_status,
            transient=True,
            timed_out=timed_out,
            retry_after=last_retry_after,
        )
