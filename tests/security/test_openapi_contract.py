"""Schemathesis against the gateway's own OpenAPI document, with a token of each role.

The document is read from `/api/v1/openapi.json` of the running in-process gateway (real
database in a rolled-back transaction, real broker). For every operation and every role (and
no token at all), schemathesis generates valid and invalid requests; each response must be no
5xx and conform to what the operation declares: status code, content type, headers, body
schema. Invalid requests must be rejected with a 4xx.

Hypothesis drives the generation from a worker thread while the requests run on the test's
event loop, so the requests share the test's transaction like every other API test. The
examples per operation are bounded (`EXAMPLES_PER_OPERATION`, derandomized) so the whole run
stays within a few minutes on two cores.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import create_caller

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 25
REQUEST_TIMEOUT_SECONDS = 30.0
BASE_URL = "http://gateway.test"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _transport_kwargs(case: schemathesis.Case[Any], headers: dict[str, str]) -> dict[str, Any]:
    """The case as keyword arguments of `httpx.AsyncClient.request`."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=headers)
    request: dict[str, Any] = {
        "method": kwargs["method"],
        "url": kwargs["url"],
        "headers": kwargs.get("headers") or {},
        "params": kwargs.get("params") or None,
        "cookies": kwargs.get("cookies") or None,
    }
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    elif isinstance(kwargs.get("data"), dict):  # a form body (the Twilio webhook)
        request["data"] = kwargs["data"]
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        request["content"] = data.encode() if isinstance(data, str) else data
    return request


def _fuzz_operation(
    operation: Any,
    mode: GenerationMode,
    send: Callable[[schemathesis.Case[Any]], httpx.Response],
    failures: list[str],
) -> None:
    """Runs Hypothesis over one operation (blocking: call it from a worker thread)."""

    @hypothesis_settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case[Any]) -> None:
        response = send(case)
        # A body past the edge's size limit is rejected before it is parsed: its 413 is a
        # rejection too, which schemathesis's list of rejecting statuses leaves out.
        rejects_negative = mode is GenerationMode.NEGATIVE and response.status_code != 413
        checks = [*CHECKS, negative_data_rejection] if rejects_negative else CHECKS
        try:
            case.validate_response(response, checks=checks)
        except Exception as exc:
            failures.append(
                f"{operation.label} [{mode.value}] -> {response.status_code}: "
                f"{str(exc)[:800]}\n  reproduce: {case.as_curl_command()}"
            )

    try:
        run()
    except Unsatisfiable:
        # An operation with nothing to get wrong (no parameters, no body) has no negative case.
        if mode is GenerationMode.POSITIVE:
            raise


@pytest.mark.timeout(600)
@pytest.mark.parametrize("role", ["anonymous", "admin", "ops", "caller"])
async def test_every_operation_honours_its_openapi_contract(
    gateway: httpx.AsyncClient,
    bearer: Callable[..., dict[str, str]],
    session: AsyncSession,
    role: str,
) -> None:
    # Header values the fuzzer invents (a random x-sales-nav-secret, say) are not secrets: only
    # the real token below is, and `bearer` records it. Stop recording every sent credential.
    gateway.event_hooks = {"request": [], "response": []}
    document = (await gateway.get("/api/v1/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(document)
    if role == "anonymous":
        auth: dict[str, str] = {}
    elif role == "caller":
        auth = bearer("caller", (await create_caller(session)).email)
    else:
        auth = bearer(role)
    loop = asyncio.get_running_loop()

    def send(case: schemathesis.Case[Any]) -> httpx.Response:
        request = _transport_kwargs(case, auth)
        future = asyncio.run_coroutine_threadsafe(gateway.request(**request), loop)
        return future.result(timeout=REQUEST_TIMEOUT_SECONDS)

    failures: list[str] = []
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), "operations schemathesis could not load"
    assert len(operations) >= len(document["paths"])
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            await asyncio.to_thread(_fuzz_operation, operation, mode, send, failures)
    assert not failures, f"{len(failures)} contract violations:\n" + "\n".join(failures[:20])
