"""Token minting and identity (§4.2)."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Header

from sourcing.api.schemas import MeResponse, StatusResponse, TokenRequest, TokenResponse
from sourcing.common.auth import Principal, Role, bearer_token, decode_token, mint_token
from sourcing.common.config import Settings
from sourcing.common.errors import Forbidden, Unauthorized
from sourcing.common.web import AdminPrincipal, AnyPrincipal, SettingsDep, error_responses

router = APIRouter(prefix="/api/v1", tags=["auth"])

BOOTSTRAP_HEADER = "x-auth-bootstrap-secret"


def _may_mint(settings: Settings, authorization: str | None, bootstrap: str | None) -> None:
    """Open in development; elsewhere only an admin token or the bootstrap secret may mint."""
    if settings.APP_ENV == "development":
        return
    expected = settings.AUTH_BOOTSTRAP_SECRET
    if bootstrap is not None:
        if expected is not None and hmac.compare_digest(
            bootstrap.encode(), expected.get_secret_value().encode()
        ):
            return
        raise Unauthorized("invalid bootstrap secret")
    token = bearer_token(authorization)
    if token is None:
        raise Unauthorized(
            f"token minting outside development needs an admin token or the {BOOTSTRAP_HEADER} "
            "header"
        )
    if decode_token(settings, token).role is not Role.ADMIN:
        raise Forbidden("only an admin may mint tokens outside development")


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    responses=error_responses(400, 401, 403),
    summary="Mint an access token (open in development only)",
)
async def create_access_token(
    body: TokenRequest,
    settings: SettingsDep,
    authorization: str | None = Header(default=None),
    x_auth_bootstrap_secret: str | None = Header(default=None),
) -> TokenResponse:
    _may_mint(settings, authorization, x_auth_bootstrap_secret)
    token = mint_token(settings, Principal(user_id=body.user_id, role=body.role))
    return TokenResponse(access_token=token, expires_in=settings.JWT_ACCESS_TOKEN_TTL_SECONDS)


@router.get(
    "/auth/me",
    response_model=MeResponse,
    responses=error_responses(401, 403),
    summary="Who the bearer token belongs to (user id and role)",
)
async def get_current_user(principal: AnyPrincipal) -> MeResponse:
    return MeResponse(user_id=principal.user_id, role=principal.role)


@router.get(
    "/admin/ping",
    response_model=StatusResponse,
    responses=error_responses(401, 403),
    summary="Check that the token carries the admin role",
)
async def ping_as_admin(_: AdminPrincipal) -> StatusResponse:
    return StatusResponse(status="admin-ok")
