"""Forged, expired and malformed JWTs are 401 on every protected route, not only /auth/me.

Each defective token differs from a token that works on the same route by exactly one defect:
the same request with the well-formed token is checked first and must not be a 401, so the
401 that follows is the defect's doing.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.auth import Principal, Role, mint_token
from sourcing.common.config import ConfigurationError
from tests.factories import create_caller
from tests.fixtures.settings import Settings
from tests.integration.test_route_roles import EXPECTED, PUBLIC
from tests.security.conftest import KnownSecrets

pytestmark = pytest.mark.integration

PROTECTED = sorted((key, rule) for key, rule in EXPECTED.items() if rule != PUBLIC)
WRONG_SECRET = "a-different-secret-that-is-long-enough-0123456789"


def _claims(settings: Settings, for_role: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": _SUBJECTS.get(for_role, "user-1"),
        "role": for_role,
        "iss": settings.JWT_ISSUER,
        "aud": settings.JWT_AUDIENCE,
        "iat": now,
        "exp": now + 300,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(settings: Settings, claims: dict[str, Any], *, algorithm: str = "HS256") -> str:
    assert settings.JWT_SECRET is not None
    return jwt.encode(claims, settings.JWT_SECRET.get_secret_value(), algorithm=algorithm)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _escalated(settings: Settings, role: str) -> str:
    """A genuine token for another role whose payload is rewritten to claim `role`."""
    other = "caller" if role != "caller" else "ops"
    header, _, signature = _sign(settings, _claims(settings, other)).split(".")
    return f"{header}.{_b64(_claims(settings, role))}.{signature}"


# Caller tokens name a registered caller, as a phone agent's token does (set per test).
_SUBJECTS: dict[str, str] = {}

Forger = Callable[[Settings, str], str]
DEFECTS: dict[str, Forger] = {
    "alg-none": lambda s, r: jwt.encode(_claims(s, r), "", algorithm="none"),
    "alg-none-uppercase": lambda s, r: (
        _b64({"alg": "NONE", "typ": "JWT"}) + "." + _b64(_claims(s, r)) + "."
    ),
    "alg-hs512-same-secret": lambda s, r: _sign(s, _claims(s, r), algorithm="HS512"),
    "wrong-secret": lambda s, r: jwt.encode(_claims(s, r), WRONG_SECRET, algorithm="HS256"),
    "wrong-issuer": lambda s, r: _sign(s, _claims(s, r, iss="someone-else")),
    "wrong-audience": lambda s, r: _sign(s, _claims(s, r, aud="another-api")),
    "no-issuer": lambda s, r: _sign(s, _claims(s, r, iss=None)),
    "no-audience": lambda s, r: _sign(s, _claims(s, r, aud=None)),
    "expired": lambda s, r: _sign(s, _claims(s, r, exp=int(time.time()) - 5)),
    "no-expiry": lambda s, r: _sign(s, _claims(s, r, exp=None)),
    "not-yet-valid": lambda s, r: _sign(s, _claims(s, r, nbf=int(time.time()) + 600)),
    "missing-role": lambda s, r: _sign(s, _claims(s, r, role=None)),
    "unknown-role": lambda s, r: _sign(s, _claims(s, r, role="root")),
    "role-as-list": lambda s, r: _sign(s, _claims(s, r, role=[r])),
    "missing-subject": lambda s, r: _sign(s, _claims(s, r, sub=None)),
    "payload-tampered": _escalated,
    "signature-stripped": lambda s, r: _sign(s, _claims(s, r)).rsplit(".", 1)[0] + ".",
    "truncated": lambda s, r: _sign(s, _claims(s, r))[:-8],
}


def _url(path: str) -> str:
    return re.sub(r"\{[a-z_]+\}", lambda _: str(uuid.uuid4()), path)


@pytest.fixture
async def caller_subject(session: AsyncSession) -> Any:
    caller = await create_caller(session)
    _SUBJECTS["caller"] = caller.email
    yield
    _SUBJECTS.clear()


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize(
    "defect",
    sorted(DEFECTS),
)
async def test_defective_tokens_are_401_on_every_protected_route(
    gateway: httpx.AsyncClient, security_settings: Settings, caller_subject: None, defect: str
) -> None:
    wrong: list[str] = []
    for (method, path), rule in PROTECTED:
        assert isinstance(rule, frozenset)
        role = sorted(rule)[0]
        url = _url(path)
        body: dict[str, Any] | None = {} if method in ("POST", "PATCH") else None
        good = _sign(security_settings, _claims(security_settings, role))
        control = await gateway.request(
            method, url, json=body, headers={"Authorization": f"Bearer {good}"}
        )
        assert control.status_code not in (401, 403), (method, path, control.text)

        forged = DEFECTS[defect](security_settings, role)
        response = await gateway.request(
            method, url, json=body, headers={"Authorization": f"Bearer {forged}"}
        )
        if response.status_code != 401 or response.json()["error"]["code"] != "unauthorized":
            wrong.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Bearer ", "Token abc", "Basic dXNlcjpwYXNz", "Bearer a.b.c", "Bearer \u202e"],
    ids=["empty", "bare-scheme", "scheme-space", "other-scheme", "basic", "garbage", "rtl"],
)
async def test_malformed_authorization_headers_are_401_everywhere(
    gateway: httpx.AsyncClient, header: str
) -> None:
    wrong = []
    for (method, path), _ in PROTECTED:
        body: dict[str, Any] | None = {} if method in ("POST", "PATCH") else None
        response = await gateway.request(
            method,
            _url(path),
            json=body,
            headers=[(b"Authorization", header.encode("utf-8"))],
        )
        if response.status_code != 401:
            wrong.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
    assert not wrong, "\n".join(wrong)


async def test_rotation_previous_secret_still_verifies_and_new_tokens_use_the_current(
    api_settings_factory: Callable[..., Settings],
    serve_api: Callable[..., Any],
    known_secrets: KnownSecrets,
) -> None:
    old = "jwt-secret-in-use-before-the-rotation-0123456789"
    new = "jwt-secret-in-use-after-the-rotation-9876543210"
    rotating = api_settings_factory(JWT_SECRET=new, JWT_PREVIOUS_SECRET=old)
    before = api_settings_factory(JWT_SECRET=old)
    old_token = mint_token(before, Principal(user_id="u-old", role=Role.OPS))
    new_token = mint_token(rotating, Principal(user_id="u-new", role=Role.OPS))
    for secret in (old, new, old_token, new_token):
        known_secrets.add(secret)  # none may appear in a log line
    # New tokens are signed with the current secret only.
    assert jwt.decode(new_token, new, algorithms=["HS256"], audience=rotating.JWT_AUDIENCE)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(new_token, old, algorithms=["HS256"], audience=rotating.JWT_AUDIENCE)
    async with serve_api(rotating) as client:
        for token, user in ((old_token, "u-old"), (new_token, "u-new")):
            me = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200, me.text
            assert me.json()["userId"] == user
        # Expiry is still checked for tokens of the previous secret.
        expired = _sign(before, _claims(before, "ops", exp=int(time.time()) - 5))
        response = await client.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {expired}"}
        )
        assert response.status_code == 401
        assert response.json()["error"]["message"] == "token expired"
    # Once the rotation is over (previous secret removed) the old tokens stop working.
    async with serve_api(api_settings_factory(JWT_SECRET=new)) as client:
        me = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {old_token}"})
        assert me.status_code == 401


def test_tokens_carry_iss_aud_and_a_bounded_lifetime(
    api_settings_factory: Callable[..., Settings],
) -> None:
    settings = api_settings_factory(JWT_ACCESS_TOKEN_TTL_SECONDS=900)
    token = mint_token(settings, Principal(user_id="u", role=Role.ADMIN))
    claims = jwt.decode(token, options={"verify_signature": False}, algorithms=["HS256"])
    assert claims["iss"] == settings.JWT_ISSUER and claims["aud"] == settings.JWT_AUDIENCE
    assert claims["exp"] - claims["iat"] == 900
    with pytest.raises(ConfigurationError, match="JWT_ACCESS_TOKEN_TTL_SECONDS"):
        api_settings_factory(JWT_ACCESS_TOKEN_TTL_SECONDS=86_401)
    with pytest.raises(ConfigurationError, match="JWT_PREVIOUS_SECRET"):
        api_settings_factory(JWT_PREVIOUS_SECRET="too-short")
