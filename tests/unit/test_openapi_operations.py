"""Every OpenAPI operation is ready for a client generator and a reader: a camelCase
operationId unique in the document, a written summary, and examples for what it sends and
what it answers."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI

from sourcing.api.app import create_app
from tests.fixtures.settings import load_settings

CAMEL_CASE = re.compile(r"[a-z]+(?:[A-Z][a-z0-9]*)*")


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(load_settings(APP_ENV="test"))


@pytest.fixture(scope="module")
def openapi(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _has_example(document: dict[str, Any], media: dict[str, Any]) -> bool:
    """An example on the media type, on the (resolved) schema, or on every `anyOf` branch
    but null (an optional body), or on the items of an array."""
    if "example" in media or "examples" in media:
        return True
    schema = _resolve(document, media.get("schema", {}))
    if schema.get("examples") or "example" in schema:
        return True
    if "anyOf" in schema:
        branches = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return bool(branches) and all(_has_example(document, {"schema": s}) for s in branches)
    if schema.get("type") == "array":
        return _has_example(document, {"schema": schema.get("items", {})})
    return False


def test_the_document_has_operations(openapi: dict[str, Any]) -> None:
    assert len(_operations(openapi)) > 40


def test_operation_ids_are_unique_readable_camel_case(openapi: dict[str, Any]) -> None:
    ids = [operation.get("operationId", "") for _, _, operation in _operations(openapi)]
    for operation_id in ids:
        assert CAMEL_CASE.fullmatch(operation_id), operation_id
        assert "_api_v1_" not in operation_id and "Api" not in operation_id, operation_id
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert {"createProject", "listProjects", "getProject", "sendOutreach"} <= set(ids)


def test_every_operation_has_a_written_summary(openapi: dict[str, Any]) -> None:
    for method, path, operation in _operations(openapi):
        summary = operation.get("summary", "")
        # FastAPI would otherwise title-case the handler's name ("Get Current User").
        generated = re.sub(r"([A-Z])", r" \1", operation["operationId"]).title()
        assert summary and summary != generated, f"{method} {path}: no written summary"


@pytest.mark.parametrize("direction", ["request", "response"])
def test_every_body_shows_an_example(openapi: dict[str, Any], direction: str) -> None:
    missing = []
    for method, path, operation in _operations(openapi):
        if direction == "request":
            bodies = [operation.get("requestBody", {})]
        else:
            bodies = [r for code, r in operation["responses"].items() if code.startswith("2")]
        for body in bodies:
            media = body.get("content", {}).get("application/json")
            if media is not None and not _has_example(openapi, media):
                missing.append(f"{method} {path}")
    assert not missing, f"{direction} bodies without an example: {missing}"
