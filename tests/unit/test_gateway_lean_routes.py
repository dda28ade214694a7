"""The lean routes (webhooks, a caller's current task, the requeue) are served behind the edge
without FastAPI's per-request stack, with the same answers: the error envelope, the correlation
id, the route's metrics label."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from sourcing.api.app import create_app
from sourcing.api.metrics import HTTP_REQUESTS
from sourcing.common import tracing
from tests.fixtures.settings import load_settings


def gateway() -> FastAPI:
    return create_app(load_settings(APP_ENV="test"))


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw.test")


def answered(route: str, status: str) -> float:
    return HTTP_REQUESTS.labels("POST", route, status)._value.get()


async def test_a_lean_route_skips_fastapis_stack_and_keeps_its_answers() -> None:
    app = gateway()
    before = answered("/webhooks/yay", "401")
    async with client(app) as http:
        response = await http.post(
            "/webhooks/yay", content=b"{}", headers={"x-correlation-id": "corr-lean-1"}
        )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["x-correlation-id"] == "corr-lean-1"
    assert answered("/webhooks/yay", "401") == before + 1
    # Starlette builds its middleware stack on the first request it serves: none was.
    assert app.middleware_stack is None


async def test_unknown_query_parameters_are_still_refused_on_the_lean_path() -> None:
    async with client(gateway()) as http:
        response = await http.post("/webhooks/yay?debug=1", content=b"{}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_payload"


async def test_other_methods_and_tracing_take_the_full_stack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = gateway()
    async with client(app) as http:
        response = await http.get("/webhooks/yay")
        assert response.status_code == 405
        assert app.middleware_stack is not None

    app = gateway()
    monkeypatch.setattr(tracing, "ENABLED", True)  # FastAPI's request span is the trace's root
    async with client(app) as http:
        response = await http.post("/webhooks/yay", content=b"{}")
    assert response.status_code == 401
    assert app.middleware_stack is not None


async def test_a_callers_current_task_and_the_requeue_are_lean_routes() -> None:
    app = gateway()
    async with client(app) as http:
        current = await http.get("/api/v1/call-tasks/current")
        requeue = await http.post(
            "/api/v1/call-tasks/operator/tasks/8d3c4a52-3f5e-4d7a-9f0e-2b1c6d7e8f90/requeue",
            json={"reason": "stuck"},
        )
    assert (current.status_code, requeue.status_code) == (401, 401)
    assert current.json()["error"]["message"] == "missing bearer token"
    assert app.middleware_stack is None


async def test_a_post_with_an_idempotency_key_takes_the_full_stack() -> None:
    app = gateway()
    async with client(app) as http:
        response = await http.post(
            "/api/v1/call-tasks/operator/tasks/8d3c4a52-3f5e-4d7a-9f0e-2b1c6d7e8f90/requeue",
            json={"reason": "stuck"},
            headers={"Idempotency-Key": "requeue-1"},
        )
    assert response.status_code == 401
    assert app.middleware_stack is not None
