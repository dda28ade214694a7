"""Request dependencies: settings, the unit of work, and who is calling with which role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.auth import Principal, Role, decode_token
from sourcing.common.config import Settings
from sourcing.common.db import session_scope
from sourcing.common.errors import Forbidden, Unauthorized


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed when the handler returns, rolled back if it raises."""
    async with session_scope(request.app.state.sessionmaker) as session:
        yield session


# scope="function": the commit happens before the response is sent, so a client never gets a
# 2xx for work whose commit then failed, and its next request sees what it just wrote.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


_bearer = HTTPBearer(auto_error=False, bearerFormat="JWT")


def get_now(request: Request) -> datetime:
    """Now, from the app's clock (a Unix-seconds callable that tests replace)."""
    return datetime.fromtimestamp(float(request.app.state.clock()), UTC)


NowDep = Annotated[datetime, Depends(get_now)]


def authenticate(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise Unauthorized("missing bearer token")
    return decode_token(settings, credentials.credentials)


class Authorize:
    """Dependency admitting only the listed roles; `roles` is read by the route-role audit."""

    def __init__(self, *roles: Role) -> None:
        self.roles = frozenset(roles)

    def __call__(self, principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if principal.role not in self.roles:
            allowed = sorted(r.value for r in self.roles)
            raise Forbidden(
                f"role '{principal.role.value}' may not use this endpoint "
                f"(allowed: {', '.join(allowed)})",
                details={"requiredRoles": allowed},
            )
        return principal


ANY_ROLE = Authorize(Role.ADMIN, Role.OPS, Role.CALLER)
ADMIN_ONLY = Authorize(Role.ADMIN)
STAFF = Authorize(Role.ADMIN, Role.OPS)
CALLERS = Authorize(Role.CALLER)

AnyPrincipal = Annotated[Principal, Depends(ANY_ROLE)]
AdminPrincipal = Annotated[Principal, Depends(ADMIN_ONLY)]
StaffPrincipal = Annotated[Principal, Depends(STAFF)]
CallerPrincipal = Annotated[Principal, Depends(CALLERS)]
