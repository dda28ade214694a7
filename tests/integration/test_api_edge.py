"""The gateway's edge: error envelope, unknown routes, body limit, rate limit, correlation ids,
readiness when PostgreSQL is down, the OpenAPI document and metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest

from sourcing.common.logging import JsonFormatter
from sourcing.devstack import Stack
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration
Headers = Callable[..., dict[str, str]]
ServeApi = Callable[[Settings], AbstractAsyncContextManager[httpx.AsyncClient]]


def _assert_envelope(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


async def test_unknown_route_is_404_envelope(api: httpx.AsyncClient) -> None:
    _assert_envelope(await api.get("/api/v1/nothing-here"), 404, "not_found")
    _assert_envelope(await api.get("/"), 404, "not_found")


async def test_wrong_method_is_405_envelope(api: httpx.AsyncClient) -> None:
    _assert_envelope(await api.delete("/api/v1/system/health"), 405, "method_not_allowed")


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"", b"[1, 2]", b"\xff\xfe\x00garbage", b'{"name": "x"'],
    ids=["broken", "empty", "array", "invalid-utf8", "truncated"],
)
async def test_malformed_bodies_are_400(
    api: httpx.AsyncClient, auth_headers: Headers, content: bytes
) -> None:
    response = await api.post(
        "/api/v1/projects",
        content=content,
        headers=auth_headers("admin") | {"content-type": "application/json"},
    )
    _assert_envelope(response, 400, "invalid_payload")


async def test_body_over_one_megabyte_is_413(api: httpx.AsyncClient, auth_headers: Headers) -> None:
    headers = auth_headers("admin") | {"content-type": "application/json"}
    padding = "x" * (1024 * 1024)
    body = json.dumps({"name": "big", "description": padding}).encode()
    _assert_envelope(
        await api.post("/api/v1/projects", content=body, headers=headers), 413, "payload_too_large"
    )

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    # No Content-Length: the limit is enforced on the bytes actually received.
    streamed = await api.post("/api/v1/projects", content=chunked(), headers=headers)
    _assert_envelope(streamed, 413, "payload_too_large")


async def test_body_just_under_the_limit_reaches_validation(
    api: httpx.AsyncClient, auth_headers: Headers
) -> None:
    headers = auth_headers("admin") | {"content-type": "application/json"}
    body = json.dumps({"name": "n", "description": "x" * (1024 * 1000)}).encode()
    assert len(body) < 1024 * 1024
    _assert_envelope(
        await api.post("/api/v1/projects", content=body, headers=headers), 400, "invalid_payload"
    )


async def test_rate_limit_is_300_per_minute_per_client(
    api: httpx.AsyncClient, auth_headers: Headers
) -> None:
    headers = auth_headers("ops", "busy-client")
    statuses = [(await api.get("/api/v1/auth/me", headers=headers)).status_code for _ in range(300)]
    assert statuses == [200] * 300
    limited = await api.get("/api/v1/auth/me", headers=headers)
    _assert_envelope(limited, 429, "rate_limited")
    retry_after = int(limited.headers["retry-after"])
    assert 1 <= retry_after <= 60
    # Another client is not affected; probes are never limited.
    assert (
        await api.get("/api/v1/auth/me", headers=auth_headers("ops", "quiet"))
    ).status_code == 200
    assert (await api.get("/api/v1/system/health")).status_code == 200


async def test_correlation_id_round_trip(
    api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sourcing.api.access")
    supplied = await api.get("/api/v1/system/health", headers={"x-correlation-id": "trace-abc.123"})
    assert supplied.headers["x-correlation-id"] == "trace-abc.123"

    generated = await api.get("/api/v1/system/health")
    assert len(generated.headers["x-correlation-id"]) == 36

    hostile = await api.get(
        "/api/v1/system/health", headers={"x-correlation-id": "a b\u00e9<script>".encode("latin-1")}
    )
    assert hostile.headers["x-correlation-id"] != "a b\u00e9<script>"

    error = await api.get("/api/v1/missing", headers={"x-correlation-id": "trace-404"})
    assert error.headers["x-correlation-id"] == "trace-404"

    formatter = JsonFormatter("api")
    lines = [json.loads(formatter.format(r)) for r in caplog.records]
    assert any(line.get("correlationId") == "trace-abc.123" for line in lines)
    assert any(line.get("correlationId") == "trace-404" and line["status"] == 404 for line in lines)


async def test_ready_is_500_while_postgres_is_down(
    serve_api: ServeApi, api_settings_factory: Callable[..., Settings], infra: Stack
) -> None:
    if infra.postgres is None:
        pytest.skip("external database: the suite cannot stop it")
    settings = api_settings_factory(READINESS_TIMEOUT_SECONDS=2.0)
    async with serve_api(settings) as client:
        assert (await client.get("/api/v1/system/ready")).status_code == 200
        await infra.postgres.astop()
        try:
            down = await client.get("/api/v1/system/ready")
            _assert_envelope(down, 500, "not_ready")
            assert set(down.json()["error"]["details"]) == {"database"}
            assert (await client.get("/api/v1/system/health")).status_code == 200
        finally:
            await infra.postgres.astart()
        for _ in range(20):
            if (await client.get("/api/v1/system/ready")).status_code == 200:
                break
            await asyncio.sleep(0.25)
        else:
            pytest.fail("gateway did not become ready again after PostgreSQL restarted")


async def test_openapi_document_is_3_1_and_declares_errors(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    for path in (
        "/api/v1/system/health",
        "/api/v1/system/ready",
        "/api/v1/auth/token",
        "/api/v1/auth/me",
        "/api/v1/admin/ping",
        "/api/v1/projects",
        "/api/v1/projects/{project_id}",
        "/api/v1/projects/{project_id}/companies",
        "/api/v1/projects/{project_id}/sales-nav-searches",
        "/api/v1/projects/{project_id}/screening-questions",
        "/api/v1/projects/{project_id}/screening-questions/{question_id}",
        "/api/v1/callers",
        "/api/v1/callers/{caller_id}",
        "/api/v1/callers/{caller_id}/performance/latest",
    ):
        assert path in paths, path
    create = paths["/api/v1/projects"]["post"]
    assert {"400", "401", "403"} <= set(create["responses"])
    assert "422" not in json.dumps(document["paths"])
    assert create["security"] == [{"HTTPBearer": []}]


async def test_metrics_count_requests_by_route(
    api: httpx.AsyncClient, auth_headers: Headers
) -> None:
    await api.get("/api/v1/system/health")
    await api.get(f"/api/v1/projects/{uuid.uuid4()}", headers=auth_headers("ops"))
    body = (await api.get("/metrics")).text
    # Routes are labelled by template, never by concrete id (bounded label cardinality).
    assert 'route="/api/v1/projects/{project_id}",status="404"' in body
    assert (
        'sourcing_http_requests_total{method="GET",route="/api/v1/system/health",status="200"}'
        in body
    )
    assert "sourcing_http_request_duration_seconds_bucket" in body


async def test_unknown_query_parameters_are_400(
    api: httpx.AsyncClient, auth_headers: Headers
) -> None:
    response = await api.get(
        "/api/v1/call-tasks/operator/tasks",
        params={"stauts": "PENDING", "limit": 5},
        headers=auth_headers("ops"),
    )
    _assert_envelope(response, 400, "invalid_payload")
    assert response.json()["error"]["details"]["errors"] == [
        {"field": "stauts", "in": "query", "message": "unknown parameter"}
    ]
    known = await api.get(
        "/api/v1/call-tasks/operator/tasks", params={"limit": 5}, headers=auth_headers("ops")
    )
    assert known.status_code == 200
