"""JWT access tokens (HS256) with the issuer, audience and lifetime from settings.

Signed with ``JWT_SECRET``; while ``JWT_PREVIOUS_SECRET`` is set, tokens it signed still verify
(rotation: set the old value there, a new ``JWT_SECRET``, and drop the previous one once every
old token has expired, at most ``JWT_ACCESS_TOKEN_TTL_SECONDS`` later).
"""

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
    return jwt.encode(claims, settings.accepted_secrets("JWT")[0], algorithm=ALGORITHM)


def decode_token(settings: Settings, token: str) -> Principal:
    """Verify signature (current or previous secret), algorithm, issuer, audience and expiry;
    any failure is 401."""
    *current, last = settings.accepted_secrets("JWT")
    claims: dict[str, object] | None = None
    try:
        for secret in current:
            try:
                claims = _verified_claims(settings, token, secret)
                break
            except jwt.InvalidSignatureError:
                continue  # perhaps signed before the rotation
        if claims is None:
            claims = _verified_claims(settings, token, last)
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


def _verified_claims(settings: Settings, token: str, secret: str) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(
        token,
        secret,
        algorithms=[ALGORITHM],
        audience=settings.JWT_AUDIENCE,
        issuer=settings.JWT_ISSUER,
        options={"require": ["sub", "exp", "iss", "aud"]},
    )
    return claims


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
