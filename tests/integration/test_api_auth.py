"""System and auth endpoints (§4.1, §4.2, §3): tokens, roles, 401 vs 403, minting outside dev."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import jwt
import pytest

from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration
ServeApi = Callable[[Settings], AbstractAsyncContextManager[httpx.AsyncClient]]


async def test_health_is_ok(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/system/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_pings_database_and_broker(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/system/ready")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready"}


async def test_ready_fails_when_the_broker_is_unreachable(
    serve_api: ServeApi, api_settings_factory: Callable[..., Settings]
) -> None:
    settings = api_settings_factory(KAFKA_BROKER_URL="127.0.0.1:1", READINESS_TIMEOUT_SECONDS=1.0)
    async with serve_api(settings) as client:
        response = await client.get("/api/v1/system/ready")
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "not_ready"
    assert set(error["details"]) == {"broker"}


@pytest.mark.parametrize(("user_id", "role"), [("user-1", "admin"), ("ops-user-42", "ops")])
async def test_manual_token_examples_work_verbatim(
    api: httpx.AsyncClient, user_id: str, role: str
) -> None:
    response = await api.post("/api/v1/auth/token", json={"userId": user_id, "role": role})
    assert response.status_code == 200
    body = response.json()
    assert body["tokenType"] == "Bearer"
    me = await api.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {body['accessToken']}"}
    )
    assert me.status_code == 200
    assert me.json() == {"userId": user_id, "role": role}


async def test_token_carries_issuer_audience_and_expiry(
    api: httpx.AsyncClient, api_settings: Settings
) -> None:
    response = await api.post("/api/v1/auth/token", json={"userId": "u", "role": "caller"})
    token = response.json()["accessToken"]
    assert api_settings.JWT_SECRET is not None
    claims = jwt.decode(
        token,
        api_settings.JWT_SECRET.get_secret_value(),
        algorithms=["HS256"],
        audience=api_settings.JWT_AUDIENCE,
        issuer=api_settings.JWT_ISSUER,
    )
    assert claims["sub"] == "u" and claims["role"] == "caller"
    assert claims["exp"] - claims["iat"] == api_settings.JWT_ACCESS_TOKEN_TTL_SECONDS


@pytest.mark.parametrize(
    "body",
    [{}, {"userId": "", "role": "admin"}, {"userId": "u", "role": "root"}, {"userId": "u"}],
)
async def test_token_request_validation(api: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await api.post("/api/v1/auth/token", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_payload"
    assert response.json()["error"]["details"]["errors"]


@pytest.mark.parametrize(("role", "expected"), [("admin", 200), ("ops", 403), ("caller", 403)])
async def test_admin_ping_is_admin_only(
    api: httpx.AsyncClient, auth_headers: Callable[..., dict[str, str]], role: str, expected: int
) -> None:
    response = await api.get("/api/v1/admin/ping", headers=auth_headers(role))
    assert response.status_code == expected
    if expected == 200:
        assert response.json() == {"status": "admin-ok"}
    else:
        assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("role", ["admin", "ops", "caller"])
async def test_me_accepts_every_role(
    api: httpx.AsyncClient, auth_headers: Callable[..., dict[str, str]], role: str
) -> None:
    response = await api.get("/api/v1/auth/me", headers=auth_headers(role, "someone"))
    assert response.json() == {"userId": "someone", "role": role}


def _forge(settings: Settings, **claims: Any) -> str:
    assert settings.JWT_SECRET is not None
    now = int(time.time())
    base = {
        "sub": "user-1",
        "role": "admin",
        "iss": settings.JWT_ISSUER,
        "aud": settings.JWT_AUDIENCE,
        "iat": now,
        "exp": now + 60,
    }
    base.update(claims)
    payload = {k: v for k, v in base.items() if v is not None}
    return jwt.encode(payload, settings.JWT_SECRET.get_secret_value(), algorithm="HS256")


@pytest.mark.parametrize(
    "make_header",
    [
        lambda s: None,
        lambda s: "Bearer",
        lambda s: "Basic dXNlcjpwYXNz",
        lambda s: "Bearer not-a-jwt",
        lambda s: "Bearer " + _forge(s, exp=int(time.time()) - 10),
        lambda s: "Bearer " + _forge(s, iss="someone-else"),
        lambda s: "Bearer " + _forge(s, aud="another-api"),
        lambda s: "Bearer " + _forge(s, role=None),
        lambda s: "Bearer " + _forge(s, role="superuser"),
        lambda s: "Bearer " + _forge(s, sub=None),
        lambda s: (
            "Bearer "
            + jwt.encode({"sub": "x", "role": "admin"}, "a-different-secret-of-32-characters!!")
        ),
        lambda s: (
            "Bearer "
            + jwt.encode(
                {"sub": "x", "role": "admin", "iss": s.JWT_ISSUER, "aud": s.JWT_AUDIENCE},
                None,
                algorithm="none",
            )
        ),
    ],
    ids=[
        "missing",
        "empty-bearer",
        "basic",
        "garbage",
        "expired",
        "wrong-issuer",
        "wrong-audience",
        "no-role",
        "unknown-role",
        "no-subject",
        "wrong-secret",
        "alg-none",
    ],
)
async def test_bad_credentials_are_401(
    api: httpx.AsyncClient, api_settings: Settings, make_header: Callable[[Settings], str | None]
) -> None:
    header = make_header(api_settings)
    headers = {"Authorization": header} if header is not None else {}
    response = await api.get("/api/v1/auth/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_minting_outside_development_needs_admin_or_bootstrap_secret(
    serve_api: ServeApi, api_settings_factory: Callable[..., Settings]
) -> None:
    settings = api_settings_factory(
        APP_ENV="production",
        JWT_SECRET="production-secret-with-at-least-32-characters",
        YAY_WEBHOOK_SECRET="yay-production-secret",
        SALES_NAV_WEBHOOK_SECRET="sales-nav-production-secret",
        SIGNUP_WEBHOOK_SECRET="signup-production-secret-of-32-chars",
        EMAIL_WEBHOOK_PUBLIC_KEY="sendgrid-production-verification-key",
        TWILIO_WEBHOOK_SECRET="twilio-production-auth-token",
        WHATSAPP_WEBHOOK_SECRET="whatsapp-production-app-secret",
        LINKEDIN_WEBHOOK_SECRET="linkedin-production-unipile-auth",
        TELEGRAM_WEBHOOK_SECRET="telegram-production-secret-token",
        MESSENGER_WEBHOOK_SECRET="messenger-production-hmac-key",
        AUTH_BOOTSTRAP_SECRET="bootstrap-production-secret-of-32-chars",
    )
    body = {"userId": "first-admin", "role": "admin"}
    async with serve_api(settings) as client:
        anonymous = await client.post("/api/v1/auth/token", json=body)
        assert anonymous.status_code == 401

        wrong = await client.post(
            "/api/v1/auth/token", json=body, headers={"x-auth-bootstrap-secret": "guess"}
        )
        assert wrong.status_code == 401

        bootstrapped = await client.post(
            "/api/v1/auth/token",
            json=body,
            headers={"x-auth-bootstrap-secret": "bootstrap-production-secret-of-32-chars"},
        )
        assert bootstrapped.status_code == 200
        admin = {"Authorization": f"Bearer {bootstrapped.json()['accessToken']}"}

        minted_by_admin = await client.post(
            "/api/v1/auth/token", json={"userId": "ops-1", "role": "ops"}, headers=admin
        )
        assert minted_by_admin.status_code == 200
        ops = {"Authorization": f"Bearer {minted_by_admin.json()['accessToken']}"}

        minted_by_ops = await client.post(
            "/api/v1/auth/token", json={"userId": "me", "role": "admin"}, headers=ops
        )
        assert minted_by_ops.status_code == 403
