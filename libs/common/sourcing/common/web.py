"""The HTTP kernel every context's endpoints build on: request dependencies (settings, the unit
of work, the clock, who is calling with which role), body base models and the error envelope's
OpenAPI declarations. The gateway (`sourcing.api`) mounts the routers and renders the errors.

Every dependency is ``async def``: FastAPI runs plain ``def`` dependencies in a worker thread,
a thread hop per dependency per request that showed as the gateway's main overhead.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol, TypeVar
from zoneinfo import available_timezones

from fastapi import Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)
from pydantic.alias_generators import to_camel
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Receive, Scope, Send

from sourcing.common.auth import Principal, Role, bearer_token, decode_token
from sourcing.common.config import ConfigurationError, Settings, SettingsT
from sourcing.common.db import Statements, session_scope
from sourcing.common.errors import Forbidden, InvalidPayload, Unauthorized

# The request.state key under which the gateway's edge middleware leaves the token it verified.
VERIFIED_TOKEN_STATE = "verified_token"  # noqa: S105 - a request.state key, not a secret


class RequestModel(BaseModel):
    """Unknown fields are refused, so a misspelt field is a 400 rather than silently ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ResponseModel(BaseModel):
    """camelCase on the wire, as in the manual; read from ORM rows."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class CursorPage(ResponseModel):
    """A page of a list: subclasses add ``items``; ``nextCursor`` asks for the next page."""

    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


# Value types of request bodies, shared by every context's endpoints.

_ISO_ALPHA2 = re.compile(r"^[A-Za-z]{2}$")
_TIMEZONES = frozenset(available_timezones())


def _iso_country(value: str) -> str:
    if not _ISO_ALPHA2.match(value):
        raise ValueError("must be an ISO 3166-1 alpha-2 code (two letters)")
    return value.upper()


def _iana_timezone(value: str) -> str:
    if value not in _TIMEZONES:
        raise ValueError("must be an IANA timezone identifier, e.g. America/New_York")
    return value


NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
LongText = Annotated[str, StringConstraints(max_length=10_000)]
CountryCode = Annotated[str, AfterValidator(_iso_country)]
LanguageCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=16)]
Timezone = Annotated[str, AfterValidator(_iana_timezone)]
JsonObject = dict[str, Any]
Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048)]


def _utc_if_naive(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# ISO-8601; a time without an offset is UTC.
UtcDatetime = Annotated[datetime, AfterValidator(_utc_if_naive)]


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any]


class ErrorEnvelope(BaseModel):
    """The shape of every error response."""

    error: ErrorBody


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations of a route's error responses, all with the envelope schema."""
    descriptions = {
        400: "Invalid payload",
        401: "Missing, malformed or expired token",
        403: "Role lacks permission",
        404: "Entity not found",
        409: "Conflict or invalid state transition",
        410: "The entity's personal data was erased",
        413: "Body over the size limit",
        422: "Refused by a contact rule (the reason is in the message and details)",
        429: "Rate limit exceeded",
        500: "Unexpected error or dependency down",
        503: "Broker unavailable; retry",
    }
    return {s: {"model": ErrorEnvelope, "description": descriptions[s]} for s in statuses}


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


# --- cursor pagination: every list takes `limit` and `cursor`, answers `items` + `nextCursor` ---

Keyset = tuple[datetime, uuid.UUID]

LimitQuery = Annotated[int, Query(ge=1, le=100, description="Page size, 1 to 100.")]
CursorQuery = Annotated[
    str | None,
    Query(max_length=200, description="The `nextCursor` of the previous page; omit for the first."),
]


def encode_cursor(at: datetime, row_id: uuid.UUID) -> str:
    """The opaque cursor of a page's last row, by its ordering key ``(timestamp, id)``."""
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{row_id}".encode()).decode().rstrip("=")


class KeysetRow(Protocol):
    """A row of a list ordered by ``(created_at, id)``."""

    @property
    def created_at(self) -> datetime: ...

    @property
    def id(self) -> uuid.UUID: ...


def next_cursor(rows: Sequence[KeysetRow], limit: int) -> str | None:
    """The cursor of the page after ``rows`` (a full page of ``limit``), None after the last."""
    if not rows or len(rows) < limit:
        return None
    return encode_cursor(rows[-1].created_at, rows[-1].id)


def decode_cursor(cursor: str | None) -> Keyset | None:
    """The ordering key a cursor carries (``None`` for the first page); anything this API did
    not hand out is a 400 naming the field."""
    if cursor is None:
        return None
    with _refused_cursor():
        moment, row_id = _cursor_parts(cursor)
        at = datetime.fromisoformat(moment)
        if at.tzinfo is None:
            raise ValueError("a cursor's timestamp carries its offset")
        return at, row_id


# Lists best first by a score: ordered by ``(score DESC NULLS LAST, id)``.
ScoreKeyset = tuple[float | None, uuid.UUID]


class ScoredRow(Protocol):
    """A row of a list ordered by ``(score DESC NULLS LAST, id)``."""

    @property
    def score(self) -> float | None: ...

    @property
    def id(self) -> uuid.UUID: ...


def encode_score_cursor(score: float | None, row_id: uuid.UUID) -> str:
    """The opaque cursor of a page's last row, by its ordering key ``(score, id)``; ``repr``
    round-trips a float exactly, so the next page starts at exactly this row."""
    key = "" if score is None else repr(score)
    return base64.urlsafe_b64encode(f"{key}|{row_id}".encode()).decode().rstrip("=")


def next_score_cursor(rows: Sequence[ScoredRow], limit: int) -> str | None:
    """The cursor of the page after ``rows`` (a full page of ``limit``), None after the last."""
    if not rows or len(rows) < limit:
        return None
    return encode_score_cursor(rows[-1].score, rows[-1].id)


def decode_score_cursor(cursor: str | None) -> ScoreKeyset | None:
    """The ``(score, id)`` a score cursor carries (``None`` for the first page); anything this
    API did not hand out is a 400 naming the field."""
    if cursor is None:
        return None
    with _refused_cursor():
        key, row_id = _cursor_parts(cursor)
        if not key:
            return None, row_id
        score = float(key)
        if not math.isfinite(score):
            raise ValueError("a cursor's score is a finite number")
        return score, row_id


def _cursor_parts(cursor: str) -> tuple[str, uuid.UUID]:
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    key, row_id = raw.split("|", 1)
    return key, uuid.UUID(row_id)


@contextmanager
def _refused_cursor() -> Iterator[None]:
    try:
        yield
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidPayload(
            "cursor is not one this endpoint returned", details={"field": "cursor"}
        ) from None


def settings_of(cls: type[SettingsT]) -> Callable[[Request], Awaitable[SettingsT]]:
    """A route dependency handing a context's endpoints the app's settings as that context's
    own class (the gateway's settings class inherits every mounted context's). A coroutine, so
    FastAPI calls it inline rather than through its thread pool."""

    async def context_settings(request: Request) -> SettingsT:
        settings = request.app.state.settings
        if not isinstance(settings, cls):
            raise ConfigurationError(f"the app's settings do not include {cls.__name__}")
        return settings

    return context_settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed when the handler returns, rolled back if it raises."""
    async with session_scope(request.app.state.sessionmaker) as session:
        yield session


# scope="function": the commit happens before the response is sent, so a client never gets a
# 2xx for work whose commit then failed, and its next request sees what it just wrote.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_statements(request: Request) -> Statements:
    """Where a lean route's single statements run (``app.state.statements``): each in its own
    transaction on a pooled connection; a test's gateway runs them in its transaction."""
    statements: Statements = request.app.state.statements
    return statements


_bearer = HTTPBearer(auto_error=False, bearerFormat="JWT")


async def reject_unknown_query_params(request: Request) -> None:
    """A misspelt filter (`?stauts=PENDING`) is a 400, never silently ignored."""
    if not request.scope.get("query_string"):
        return
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        known.update(param.alias for param in current.query_params)
        pending.extend(current.dependencies)
    unknown = sorted(set(request.query_params.keys()) - known)
    if unknown:
        raise InvalidPayload(
            f"unknown query parameter(s): {', '.join(repr(name) for name in unknown)}",
            details={
                "errors": [
                    {"field": name, "in": "query", "message": "unknown parameter"}
                    for name in unknown
                ],
                "allowed": sorted(known),
            },
        )


async def get_now(request: Request) -> datetime:
    """Now, from the app's clock (a Unix-seconds callable that tests replace)."""
    return datetime.fromtimestamp(float(request.app.state.clock()), UTC)


NowDep = Annotated[datetime, Depends(get_now)]


async def authenticate(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise Unauthorized("missing bearer token")
    return _principal(request, settings, credentials.credentials)


def _principal(request: Request, settings: Settings, token: str) -> Principal:
    """The token's principal: the edge middleware's verification when it made one."""
    verified = getattr(request.state, VERIFIED_TOKEN_STATE, None)
    if verified is not None and verified[0] == token:
        principal: Principal = verified[1]
        return principal
    return decode_token(settings, token)


class Authorize:
    """Dependency admitting only the listed roles; `roles` is read by the route-role audit."""

    def __init__(self, *roles: Role) -> None:
        self.roles = frozenset(roles)

    async def __call__(self, principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if principal.role not in self.roles:
            allowed = sorted(r.value for r in self.roles)
            raise Forbidden(
                f"role '{principal.role.value}' may not use this endpoint "
                f"(allowed: {', '.join(allowed)})",
                details={"requiredRoles": allowed},
            )
        return principal

    async def of(self, request: Request) -> Principal:
        """What ``Depends(self)`` resolves to (same errors), for a :class:`LeanRoute`."""
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            raise Unauthorized("missing bearer token")
        return await self(_principal(request, request.app.state.settings, token))


ANY_ROLE = Authorize(Role.ADMIN, Role.OPS, Role.CALLER)
ADMIN_ONLY = Authorize(Role.ADMIN)
STAFF = Authorize(Role.ADMIN, Role.OPS)
CALLERS = Authorize(Role.CALLER)

AnyPrincipal = Annotated[Principal, Depends(ANY_ROLE)]
AdminPrincipal = Annotated[Principal, Depends(ADMIN_ONLY)]
StaffPrincipal = Annotated[Principal, Depends(STAFF)]
CallerPrincipal = Annotated[Principal, Depends(CALLERS)]


class LeanRoute(APIRoute):
    """A route whose endpoint takes the request and returns the response itself.

    Documented like any other route, but served without FastAPI's per-request machinery
    (dependency solving, parameter parsing, response-model serialisation, per-request exit
    stacks), which cost as much CPU as the endpoint's own work on the hottest webhook. The
    endpoint therefore applies the app-wide rules itself (unknown query parameters are
    refused); its errors reach the app's exception handlers like any other route's.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in (self.methods or ()):
            await super().handle(scope, receive, send)  # 405 with Allow, as usual
            return
        response = await self.respond(Request(scope, receive, send))
        await response(scope, receive, send)

    async def respond(self, request: Request) -> Response:
        endpoint: Callable[[Request], Coroutine[Any, Any, Response]] = self.endpoint
        return await endpoint(request)


# What FastAPI's parameter parsing does, for a lean route: the same 400 envelope on bad input.

_UUID = TypeAdapter(uuid.UUID)
ModelT = TypeVar("ModelT", bound=BaseModel)


def _invalid(exc: ValidationError, *location: str) -> RequestValidationError:
    return RequestValidationError(
        [{**error, "loc": (*location, *error["loc"])} for error in exc.errors(include_url=False)]
    )


def path_uuid(request: Request, name: str) -> uuid.UUID:
    """The path parameter ``name`` as a UUID (a bad one is the 400 FastAPI would answer)."""
    try:
        return _UUID.validate_python(request.path_params[name])
    except ValidationError as exc:
        raise _invalid(exc, "path", name) from None


async def json_body(request: Request, model: type[ModelT]) -> ModelT:
    """The request's JSON body as ``model`` (bad JSON or fields: the 400 FastAPI would answer)."""
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise _invalid(exc, "body") from None
