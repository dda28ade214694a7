"""Every failure leaves the gateway as the envelope `{"error": {code, message, details}}`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from sourcing.common.errors import (
    AppError,
    InvalidPayload,
    MethodNotAllowed,
    NotFound,
)

log = logging.getLogger("sourcing.api.errors")

# PostgreSQL refuses U+0000 and invalid byte sequences in text: the client's input, not our bug.
UNSTORABLE_TEXT_SQLSTATES = frozenset({"22021", "22P05"})


def _render(error: AppError) -> JSONResponse:
    return JSONResponse(error.envelope(), status_code=error.status, headers=error.headers or None)


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    problems = []
    for err in exc.errors():
        location = [str(part) for part in err.get("loc", ())]
        problems.append(
            {
                "field": ".".join(location[1:]) or location[0] if location else "",
                "in": location[0] if location else "body",
                "message": err.get("msg", "invalid"),
                "type": err.get("type", "invalid"),
            }
        )
    return problems


def register_error_handlers(app: FastAPI) -> None:
    async def app_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AppError)  # noqa: S101 - narrows the type: registered for that class only
        return _render(exc)

    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)  # noqa: S101 - narrows the type: registered for that class only
        errors = _field_errors(exc)
        fields = ", ".join(e["field"] or e["in"] for e in errors)
        return JSONResponse(
            {
                "error": {
                    "code": "invalid_payload",
                    "message": f"request failed validation: {fields}",
                    "details": {"errors": errors},
                }
            },
            status_code=400,
        )

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - narrows the type: registered for that class only
        if exc.status_code == 404:
            return _render(NotFound(f"no route {request.method} {request.url.path}"))
        if exc.status_code == 405:
            return _render(
                MethodNotAllowed(
                    f"method {request.method} not allowed on {request.url.path}",
                    headers=dict(exc.headers or {}),
                )
            )
        error = AppError(str(exc.detail))
        error.status, error.code = exc.status_code, "http_error"
        return _render(error)

    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DBAPIError)  # noqa: S101 - narrows the type: registered for that class only
        if getattr(exc.orig, "sqlstate", None) in UNSTORABLE_TEXT_SQLSTATES:
            return _render(
                InvalidPayload(
                    "the request contains text the database cannot store "
                    "(a NUL character or an invalid byte sequence)",
                    details={"reason": "unstorable_text"},
                )
            )
        return await unexpected(request, exc)

    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return _render(AppError("internal server error"))

    app.add_exception_handler(AppError, app_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(DBAPIError, database_error)
    app.add_exception_handler(Exception, unexpected)
