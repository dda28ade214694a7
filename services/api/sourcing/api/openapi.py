"""The OpenAPI 3.1 document, made honest about validation errors.

FastAPI declares a 422 on every route with parameters; this gateway answers invalid input
with 400 `invalid_payload` in the error envelope instead, so the document says that. Every
rate-limited operation also declares its 429. Operation ids are the handlers' names in
camelCase (`operation_id`), which a client generator turns into method names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from sourcing.common.web import ErrorEnvelope

_ENVELOPE_REF = {"$ref": "#/components/schemas/ErrorEnvelope"}


def operation_id(route: APIRoute) -> str:
    """The operationId a client generator turns into a method: the handler's name in
    camelCase (`create_project` -> `createProject`), so handler names must be unique."""
    first, *rest = route.name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def _honest_errors(document: dict[str, Any]) -> dict[str, Any]:
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if path.startswith("/api/v1/") and not path.startswith("/api/v1/system/"):
                responses.setdefault(
                    "429",
                    {
                        "description": "Rate limit exceeded (see Retry-After)",
                        "content": {"application/json": {"schema": _ENVELOPE_REF}},
                    },
                )
            if responses.pop("422", None) is not None:
                responses.setdefault(
                    "400",
                    {
                        "description": "Invalid payload",
                        "content": {"application/json": {"schema": _ENVELOPE_REF}},
                    },
                )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas.setdefault(
        "ErrorEnvelope",
        ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}"),
    )
    return document


def openapi_builder(app: FastAPI) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _honest_errors(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    openapi_version=app.openapi_version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    return build
