"""Errors that carry their HTTP meaning; the gateway renders them as the manual's envelope."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class AppError(Exception):
    status: int = 500
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.headers = headers or {}

    def envelope(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class InvalidPayload(AppError):
    status = 400
    code = "invalid_payload"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class NotFound(AppError):
    status = 404
    code = "not_found"


class MethodNotAllowed(AppError):
    status = 405
    code = "method_not_allowed"


class Conflict(AppError):
    status = 409
    code = "conflict"


class Gone(AppError):
    """The entity existed and was removed for good (an erased expert)."""

    status = 410
    code = "gone"


class Unprocessable(AppError):
    """Well-formed, but a rule refuses it (e.g. a recipient the region rule forbids)."""

    status = 422
    code = "unprocessable"


class InvalidTransition(AppError):
    """A status change the entity's state machine (or its own rule) does not allow.

    ``details`` names the entity and the refused move (plus ``extra``); ``allowed`` lists the
    states the entity could move to instead. ``message`` replaces the default text when the
    refusal has a more precise reason (a deactivated caller, a second outcome).
    """

    status = 409
    code = "invalid_transition"

    def __init__(
        self,
        machine: str,
        from_state: str,
        to_state: str,
        *,
        allowed: Iterable[str] = (),
        message: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.machine = machine
        self.from_state = str(from_state)
        self.to_state = str(to_state)
        self.allowed = tuple(str(state) for state in allowed)
        allowed_text = ", ".join(self.allowed) if self.allowed else "none (terminal state)"
        super().__init__(
            message
            or (
                f"invalid {machine} transition: {self.from_state} -> {self.to_state} "
                f"(allowed from {self.from_state}: {allowed_text})"
            ),
            details={
                "entity": machine,
                "from": self.from_state,
                "to": self.to_state,
                **(extra or {}),
            },
        )


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(AppError):
    status = 415
    code = "unsupported_media_type"


class RateLimited(AppError):
    status = 429
    code = "rate_limited"


class NotReady(AppError):
    status = 500
    code = "not_ready"


class ServiceUnavailable(AppError):
    status = 503
    code = "service_unavailable"
