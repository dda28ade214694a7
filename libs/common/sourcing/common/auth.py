"""JWT access tokens (HS256) with the issuer, audience and lifetime from settings.

Signed with ``JWT_SECRET``; while ``JWT_PREVIOUS_SECRET`` is set, tokens it signed still verify
(rotation: set the old value there, a new ``JWT_SECRET``, and drop the previous one once every
old token has expired, at most ``JWT_ACCESS_TOKEN_TTL_SECONDS`` later).
"""

from __future__ import annotations

import time
from collections import OrderedDict
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
    return _verify(settings, token)[0]


class VerifiedTokens:
    """Tokens this process already verified, each kept until it expires (at most ``size``, the
    least recently used dropped first): a client sends the same token with every request, and
    verifying its signature and claims each time was a tenth of the gateway's CPU per request.
    An entry answers only while ``now`` is before the token's ``exp``."""

    def __init__(self, settings: Settings, *, size: int = 4096) -> None:
        self.settings = settings
        self.size = size
        self._entries: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def principal(self, token: str, *, now: float | None = None) -> Principal:
        """:func:`decode_token`, answered from the cache while the token is unexpired."""
        at = time.time() if now is None else now
        entry = self._entries.get(token)
        if entry is not None and at < entry[1]:
            self._entries.move_to_end(token)
            return entry[0]
        principal, expires = _verify(self.settings, token)
        self._entries[token] = (principal, expires)
        self._entries.move_to_end(token)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return principal


def _verify(settings: Settings, token: str) -> tuple[Principal, float]:
    """The token's principal and expiry (Unix seconds), verified."""
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
    expires = claims["exp"]  # required, and a number: verified above
    assert isinstance(expires, int | float)  # noqa: S101 - narrows the type
    return Principal(user_id=subject, role=Role(role)), float(expires)


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
