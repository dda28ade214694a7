"""The OpenAPI 3.1 document, made honest about validation errors.

FastAPI declares a 422 on every route with parameters; this gateway answers invalid input
with 400 `invalid_payload` in the error envelope instead, so the document says that.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from sourcing.api.errors import ErrorEnvelope

_ENVELOPE_REF = {"$ref": "#/components/schemas/ErrorEnvelope"}


def _without_422(document: dict[str, Any]) -> dict[str, Any]:
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
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
            app.openapi_schema = _without_422(
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
