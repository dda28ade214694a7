"""/api/v1/suppressions: the operators' list of addresses never to use again, and the one rule
every channel applies to it (issue 16, item 2)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import ContactSuppression, OutreachMessage, SystemEvent
from sourcing.common.models.enums import SuppressedContactKind, SuppressionReason
from sourcing.people.suppression import suppress_contact, value_hash
from tests.factories import create_project
from tests.factories_outreach import create_reachable_expert

pytestmark = pytest.mark.integration
Headers = Callable[..., dict[str, str]]


def _send(project_id: uuid.UUID, expert_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    return {
        "projectId": str(project_id),
        "expertId": str(expert_id),
        "channel": "EMAIL",
        "recipient": "dana@acme.example",
        "body": "Hi Dana",
        **overrides,
    }


async def test_suppressing_is_idempotent_and_audited_without_the_address(
    api: httpx.AsyncClient, session: AsyncSession, auth_headers: Headers
) -> None:
    body = {"kind": "EMAIL", "value": "  Dana@ACME.example ", "note": "asked by phone"}
    first = await api.post("/api/v1/suppressions", headers=auth_headers("ops"), json=body)
    assert first.status_code == 201, first.text
    row = first.json()
    assert row["value"] == "dana@acme.example"
    assert row["valueHash"] == value_hash("dana@acme.example")
    assert (row["reason"], row["kind"], row["note"]) == ("MANUAL", "EMAIL", "asked by phone")
    again = await api.post("/api/v1/suppressions", headers=auth_headers("admin"), json=body)
    assert again.status_code == 200 and again.json()["id"] == row["id"]

    events = list(
        await session.scalars(select(SystemEvent).where(SystemEvent.entity_id == row["id"]))
    )
    assert [event.type for event in events] == ["contact.suppressed"]
    assert "dana" not in str(events[0].data)


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("EMAIL", "not-an-email"),
        ("PHONE", "12"),
        ("LINKEDIN_URL", "https://example.com/in/dana"),
        ("DOMAIN", "no dots"),
        ("FAX", "+14155550100"),
    ],
)
async def test_bad_values_are_400_in_the_envelope(
    api: httpx.AsyncClient, auth_headers: Headers, kind: str, value: str
) -> None:
    response = await api.post(
        "/api/v1/suppressions", headers=auth_headers("ops"), json={"kind": kind, "value": value}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] in {"invalid_payload", "validation_error"}


async def test_roles_list_filters_and_cursor(
    api: httpx.AsyncClient, session: AsyncSession, auth_headers: Headers
) -> None:
    made = []
    for kind, value in [
        ("PHONE", "+44 20 7946 0958"),
        ("DOMAIN", "@Competitor.example"),
        ("LINKEDIN_URL", "linkedin.com/in/Dana-Smith/"),
    ]:
        response = await api.post(
            "/api/v1/suppressions",
            headers=auth_headers("admin"),
            json={"kind": kind, "value": value},
        )
        assert response.status_code == 201, response.text
        made.append(response.json())
    assert [row["value"] for row in made] == [
        "+442079460958",
        "competitor.example",
        "https://www.linkedin.com/in/dana-smith",
    ]
    caller = await api.get("/api/v1/suppressions", headers=auth_headers("caller"))
    assert caller.status_code == 403

    by_value = await api.get(
        "/api/v1/suppressions",
        headers=auth_headers("ops"),
        params={"kind": "PHONE", "value": "+44 (0)20 7946 0958"},
    )
    assert [row["id"] for row in by_value.json()["items"]] == [made[0]["id"]]
    no_kind = await api.get(
        "/api/v1/suppressions", headers=auth_headers("ops"), params={"value": "x"}
    )
    assert no_kind.status_code == 400 and no_kind.json()["error"]["details"]["field"] == "kind"

    ids = {row["id"] for row in made}
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = (
            await api.get("/api/v1/suppressions", headers=auth_headers("ops"), params=params)
        ).json()
        seen.extend(row["id"] for row in page["items"] if row["id"] in ids)
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids)  # each once (one transaction: one created_at, by id)
    one = await api.get(f"/api/v1/suppressions/{made[1]['id']}", headers=auth_headers("ops"))
    assert one.json()["kind"] == "DOMAIN"
    missing = await api.get(f"/api/v1/suppressions/{uuid.uuid4()}", headers=auth_headers("ops"))
    assert missing.status_code == 404


async def test_only_an_admin_lifts_a_suppression_and_it_is_audited(
    api: httpx.AsyncClient, session: AsyncSession, auth_headers: Headers
) -> None:
    created = await api.post(
        "/api/v1/suppressions",
        headers=auth_headers("ops"),
        json={"kind": "EMAIL", "value": "dana@acme.example"},
    )
    suppression_id = created.json()["id"]
    ops = await api.delete(f"/api/v1/suppressions/{suppression_id}", headers=auth_headers("ops"))
    assert ops.status_code == 403
    admin = await api.delete(
        f"/api/v1/suppressions/{suppression_id}", headers=auth_headers("admin")
    )
    assert admin.status_code == 204
    assert await session.get(ContactSuppression, uuid.UUID(suppression_id)) is None
    event = await session.scalar(
        select(SystemEvent).where(
            SystemEvent.entity_id == uuid.UUID(suppression_id),
            SystemEvent.type == "contact.unsuppressed",
        )
    )
    assert event is not None and event.actor is not None
    assert event.data["valueHash"] == value_hash("dana@acme.example")
    gone = await api.delete(f"/api/v1/suppressions/{suppression_id}", headers=auth_headers("admin"))
    assert gone.status_code == 404


async def test_an_erased_persons_hash_cannot_be_lifted(
    api: httpx.AsyncClient, session: AsyncSession, auth_headers: Headers
) -> None:
    row, _ = await suppress_contact(
        session,
        SuppressedContactKind.EMAIL,
        "erased@acme.example",
        reason=SuppressionReason.ERASED,
        actor="admin",
    )
    response = await api.delete(f"/api/v1/suppressions/{row.id}", headers=auth_headers("admin"))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "erased_person_suppression"


@pytest.mark.parametrize(
    ("kind", "value"),
    [("EMAIL", "DANA@acme.example"), ("DOMAIN", "acme.example")],
)
async def test_a_send_to_a_suppressed_address_is_409_with_the_reason(
    api: httpx.AsyncClient, session: AsyncSession, auth_headers: Headers, kind: str, value: str
) -> None:
    project = await create_project(session)
    expert = await create_reachable_expert(session, email="dana@acme.example")
    await api.post(
        "/api/v1/suppressions",
        headers=auth_headers("ops"),
        json={"kind": kind, "value": value, "reason": "BOUNCED"},
    )
    response = await api.post(
        "/api/v1/outreach/send", headers=auth_headers("ops"), json=_send(project.id, expert.id)
    )
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "contact_suppressed"
    assert error["details"]["reason"] == "BOUNCED"
    other = await api.post(
        "/api/v1/outreach/send",
        headers=auth_headers("ops"),
        json=_send(project.id, expert.id, recipient="dana@elsewhere.example"),
    )
    assert other.status_code == 202, other.text


async def test_suppressing_an_address_cancels_what_is_queued_to_it(
    api: httpx.AsyncClient, session: AsyncSession, auth_headers: Headers
) -> None:
    project = await create_project(session)
    expert = await create_reachable_expert(session, email="dana@acme.example")
    queued = await api.post(
        "/api/v1/outreach/send", headers=auth_headers("ops"), json=_send(project.id, expert.id)
    )
    message_id = uuid.UUID(queued.json()["jobId"])
    await api.post(
        "/api/v1/suppressions",
        headers=auth_headers("ops"),
        json={"kind": "EMAIL", "value": "Dana@Acme.example"},
    )
    message = await session.get(OutreachMessage, message_id, populate_existing=True)
    assert message is not None and message.delivery_status == "CANCELLED"
    assert message.error == "email suppressed (MANUAL)"


async def test_a_suppressed_linkedin_url_stops_the_person_on_every_channel(
    api: httpx.AsyncClient, session: AsyncSession, auth_headers: Headers
) -> None:
    project = await create_project(session)
    expert = await create_reachable_expert(session)
    await api.post(
        "/api/v1/suppressions",
        headers=auth_headers("ops"),
        json={"kind": "LINKEDIN_URL", "value": expert.linkedin_url_normalized},
    )
    for channel, recipient in [("EMAIL", "dana@example.com"), ("SMS", "+14155550100")]:
        response = await api.post(
            "/api/v1/outreach/send",
            headers=auth_headers("ops"),
            json=_send(project.id, expert.id, channel=channel, recipient=recipient),
        )
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "expert_suppressed"
        assert response.json()["error"]["details"]["reason"] == "MANUAL"
