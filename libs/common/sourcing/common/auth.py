"""JWT access tokens (HS256) with the issuer, audience and lifetime from settings."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

import jwt

from sourcing.common.config import Settings
from sourcing.common.errors import Unauthorized

ALGORITHM = "HS256"


class Role(StrEnum):
    ADMIN = "admin"
    OPS = "ops"
    CALLER = "caller"


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    role: Role


def _secret(settings: Settings) -> str:
    assert settings.JWT_SECRET is not None  # guaranteed by Settings validation
    return settings.JWT_SECRET.get_secret_value()


def mint_token(settings: Settings, principal: Principal, *, now: float | None = None) -> str:
    issued_at = int(now if now is not None else time.time())
    claims = {
        "sub": principal.user_id,
        "role": principal.role.value,
        "iss": settings.JWT_ISSUER,
        "aud": settings.JWT_AUDIENCE,
        "iat": issued_at,
        "exp": issued_at + settings.JWT_ACCESS_TOKEN_TTL_SECONDS,
    }
    return jwt.encode(claims, _secret(settings), algorithm=ALGORITHM)


def decode_token(settings: Settings, token: str) -> Principal:
    """Verify signature, algorithm, issuer, audience and expiry; any failure is 401."""
    try:
        claims = jwt.decode(
            token,
            _secret(settings),
            algorithms=[ALGORITHM],
            audience=settings.JWT_AUDIENCE,
            issuer=settings.JWT_ISSUER,
            options={"require": ["sub", "exp", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired") from None
    except jwt.PyJWTError:
        raise Unauthorized("invalid token") from None
    subject, role = claims.get("sub"), claims.get("role")
    if not isinstance(subject, str) or not subject:
        raise Unauthorized("token has no subject")
    if not isinstance(role, str) or role not in {r.value for r in Role}:
        raise Unauthorized("token has no valid role")
    return Principal(user_id=subject, role=Role(role))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
