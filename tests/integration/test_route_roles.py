"""Every route of the gateway against the manual's role tables (§3, §4).

The expected table is written by hand from the manual; a route added without an entry here
fails `test_every_route_has_a_role_rule`, so nobody ships an endpoint with an accidental policy.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.api.app import ROUTERS
from sourcing.common.web import Authorize
from tests.factories import create_caller

pytestmark = pytest.mark.integration

PUBLIC = "public"
STAFF = frozenset({"admin", "ops"})
ADMIN = frozenset({"admin"})
EVERYONE = frozenset({"admin", "ops", "caller"})
ROLES = ("admin", "ops", "caller")

EXPECTED: dict[tuple[str, str], frozenset[str] | str] = {
    ("GET", "/api/v1/system/health"): PUBLIC,
    ("GET", "/api/v1/system/ready"): PUBLIC,
    ("GET", "/api/v1/system/consumer-lag"): ADMIN,  # the operator CLI's `sourcing lag`
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/api/v1/asyncapi.json"): PUBLIC,  # the event contract, public like OpenAPI
    ("GET", "/asyncapi.json"): PUBLIC,
    ("POST", "/api/v1/auth/token"): PUBLIC,  # open in development; see test_api_auth
    ("GET", "/api/v1/auth/me"): EVERYONE,
    ("GET", "/api/v1/admin/ping"): ADMIN,
    ("POST", "/api/v1/suppressions"): STAFF,
    ("GET", "/api/v1/suppressions"): STAFF,
    ("GET", "/api/v1/suppressions/{suppression_id}"): STAFF,
    ("DELETE", "/api/v1/suppressions/{suppression_id}"): ADMIN,
    ("POST", "/api/v1/projects"): STAFF,
    ("GET", "/api/v1/projects"): STAFF,
    ("GET", "/api/v1/projects/{project_id}"): STAFF,
    ("PATCH", "/api/v1/projects/{project_id}"): STAFF,
    ("GET", "/api/v1/projects/{project_id}/costs"): STAFF,
    ("GET", "/api/v1/providers"): STAFF,
    ("POST", "/api/v1/projects/{project_id}/companies"): STAFF,
    ("POST", "/api/v1/projects/{project_id}/sales-nav-searches"): STAFF,
    ("GET", "/api/v1/projects/{project_id}/screening-questions"): STAFF,
    ("POST", "/api/v1/projects/{project_id}/screening-questions"): STAFF,
    ("PATCH", "/api/v1/projects/{project_id}/screening-questions/{question_id}"): STAFF,
    ("POST", "/api/v1/callers"): STAFF,
    ("GET", "/api/v1/callers"): STAFF,
    ("GET", "/api/v1/system-events"): STAFF,
    ("GET", "/api/v1/documentation/{name}"): STAFF,
    ("GET", "/api/v1/callers/{caller_id}"): STAFF,
    ("PATCH", "/api/v1/callers/{caller_id}"): STAFF,
    ("GET", "/api/v1/callers/{caller_id}/performance/latest"): STAFF,
    # Ops may pause/resume; the admin-only actions answer 403 to ops (test_caller_status).
    ("POST", "/api/v1/callers/{caller_id}/status"): STAFF,
    # Sourcing read side and job-title discovery (issue 3)
    ("GET", "/api/v1/projects/{project_id}/experts"): STAFF,
    ("GET", "/api/v1/experts/{expert_id}"): STAFF,
    ("POST", "/api/v1/experts/{expert_id}/signup"): STAFF,
    ("POST", "/api/v1/experts/{expert_id}/contacts"): STAFF,  # issue 13
    ("POST", "/api/v1/experts/{expert_id}/erasure"): ADMIN,  # issue 16: GDPR / CCPA erasure
    ("POST", "/api/v1/job-title-discovery/trigger"): STAFF,
    # Call tasks (issue 4)
    ("GET", "/api/v1/call-tasks/current"): frozenset({"caller"}),
    ("POST", "/api/v1/call-tasks/{task_id}/outcome"): frozenset({"caller"}),
    ("GET", "/api/v1/call-tasks/operator/tasks"): STAFF,
    ("POST", "/api/v1/call-tasks/operator/tasks/{task_id}/requeue"): STAFF,
    # Call logs (read side)
    ("GET", "/api/v1/call-tasks/{task_id}/call-logs"): STAFF,
    ("GET", "/api/v1/callers/{caller_id}/call-logs"): STAFF,
    # Outreach and screening (issue 5)
    ("POST", "/api/v1/outreach/send"): STAFF,
    ("GET", "/api/v1/outreach/threads"): STAFF,
    ("GET", "/api/v1/outreach/threads/{thread_id}"): STAFF,
    ("POST", "/api/v1/screening/dispatch"): STAFF,
    ("POST", "/api/v1/screening/response"): STAFF,
    # Dead letters and documentation (issue 6)
    ("GET", "/api/v1/dead-letters"): STAFF,
    ("GET", "/api/v1/dead-letters/{dead_letter_id}"): STAFF,
    ("POST", "/api/v1/dead-letters/{dead_letter_id}/replay"): ADMIN,
    ("POST", "/api/v1/documentation/generate"): STAFF,
    # Webhooks carry their own verification (HMAC signature, shared secret), not JWTs.
    ("POST", "/webhooks/yay"): PUBLIC,
    ("POST", "/webhooks/sales-nav"): PUBLIC,
    ("POST", "/webhooks/signup"): PUBLIC,
    ("POST", "/webhooks/zeliq/{requestId}/{kind}"): PUBLIC,  # signed callback URL
    ("POST", "/webhooks/inbound/email"): PUBLIC,
    ("POST", "/webhooks/inbound/twilio"): PUBLIC,
    ("POST", "/webhooks/inbound/whatsapp"): PUBLIC,
    ("POST", "/webhooks/inbound/linkedin"): PUBLIC,
    ("POST", "/webhooks/inbound/telegram"): PUBLIC,
    ("POST", "/webhooks/inbound/messengers"): PUBLIC,
}


def _declared_roles(route: APIRoute) -> frozenset[str] | str:
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        if isinstance(dependant.call, Authorize):
            return frozenset(role.value for role in dependant.call.roles)
        pending.extend(dependant.dependencies)
    return PUBLIC


def _routes() -> dict[tuple[str, str], frozenset[str] | str]:
    found: dict[tuple[str, str], frozenset[str] | str] = {}
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute), route
            for method in route.methods:
                found[(method, route.path)] = _declared_roles(route)
    return found


def test_every_route_has_a_role_rule() -> None:
    assert _routes() == EXPECTED


async def test_the_app_serves_exactly_the_audited_routes(api: httpx.AsyncClient) -> None:
    document = (await api.get("/api/v1/openapi.json")).json()
    served = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    not_rest = {("GET", "/metrics"), ("GET", "/api/v1/asyncapi.json"), ("GET", "/asyncapi.json")}
    assert served == {key for key in EXPECTED if key not in not_rest}


PROTECTED = sorted(key for key, rule in EXPECTED.items() if rule != PUBLIC)


def _url(path: str) -> str:
    return re.sub(r"\{[a-z_]+\}", lambda _: str(uuid.uuid4()), path)


@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=[f"{m} {p}" for m, p in PROTECTED])
async def test_roles_are_enforced_over_http(
    api: httpx.AsyncClient,
    auth_headers: Callable[..., dict[str, str]],
    session: AsyncSession,
    method: str,
    path: str,
) -> None:
    allowed = EXPECTED[(method, path)]
    assert isinstance(allowed, frozenset)
    # Caller tokens name a registered caller, as a phone agent's token does.
    caller = await create_caller(session)
    users = {"admin": "user-1", "ops": "user-1", "caller": caller.email}
    url = _url(path)
    body = {} if method in ("POST", "PATCH") else None
    anonymous = await api.request(method, url, json=body)
    assert anonymous.status_code == 401, anonymous.text
    for role in ROLES:
        headers = auth_headers(role, users[role])
        response = await api.request(method, url, json=body, headers=headers)
        if role in allowed:
            assert response.status_code not in (401, 403), (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            assert response.json()["error"]["code"] == "forbidden"
