"""The operator's day (manual §12) end to end on the embedded stack, through HTTP, webhooks and
Kafka: the gateway (in-process, committing), the ingestion, enrichment, allocation, calls and
outreach apps (real Faust apps on this test's topics), the provider sandbox, PostgreSQL and the
broker. Nothing is seeded in the database: every step is what an operator, a caller, LinkedIn
Sales Navigator, Yay.com or the sign-up site does.

1. An operator creates a project, adds a screening question and registers a caller whose region
   is the expert's, at an hour inside that region's calling window.
2. A signed Sales Navigator lead arrives with a national-format phone (``(415) 555-0100``).
3. Enrichment runs against the sandbox; the allocation context reacts and creates the expert's
   first call task, with the E.164 phone.
4. The caller pulls the task; Yay reports the call started → answered → ended (with
   ``metadata.taskId``, or without it and matched by the dialled number); validation completes
   the task and the caller's performance shows the dial.
5. The caller records ``INTERESTED_SIGNUP_LINK_SENT``: a sign-up chase is scheduled; a second
   outcome is refused. The sign-up site's signed webhook then closes the loop: ``signed_up_at``,
   leads CONVERTED, chase cancelled.
6. A second expert is called and marked NEVER_CONTACT_AGAIN: outreach to them is refused, and a
   new lead for them makes no call task.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.models import CallTask, Expert, Lead, OutreachMessage
from sourcing.people.timezones import country_timezone
from sourcing.sandbox.server import serve_sandbox
from tests.e2e.stack import Agents, admin_headers, sandboxed_settings
from tests.fixtures.api import serve_gateway
from tests.fixtures.kafka import wait_until
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

SALES_NAV_SECRET = "journey-sales-nav-secret"
YAY_SECRET = "journey-yay-webhook-secret"
SIGNUP_SECRET = "journey-signup-webhook-secret"
CALLER_EMAIL = "day.caller@example.com"
SETTLE_SECONDS = 120.0


@dataclass(frozen=True)
class Region:
    """A country the journey can run in, with two national-format numbers of it."""

    iso: str
    language: str
    phones: tuple[str, str]
    e164: tuple[str, str]


REGIONS = (
    Region("US", "en", ("(415) 555-0100", "(212) 555-0123"), ("+14155550100", "+12125550123")),
    Region("GB", "en", ("020 7946 0018", "020 7946 0019"), ("+442079460018", "+442079460019")),
    Region("IN", "en", ("022 2345 6789", "022 2345 6790"), ("+912223456789", "+912223456790")),
    Region("JP", "ja", ("03-1234-5678", "03-1234-5679"), ("+81312345678", "+81312345679")),
    Region("AU", "en", ("(02) 9876 5432", "(02) 9876 5433"), ("+61298765432", "+61298765433")),
)


def region_inside_calling_window(settings: Settings) -> Region:
    """The first region whose local hour now leaves an hour of margin inside the window."""
    now = datetime.now(UTC)
    for region in REGIONS:
        zone = country_timezone(region.iso)
        assert zone is not None
        hour = now.astimezone(zone).hour
        if settings.CALLING_WINDOW_START_HOUR <= hour < settings.CALLING_WINDOW_END_HOUR - 1:
            return region
    raise AssertionError(f"no journey region inside the calling window at {now:%H:%M} UTC")


def signed(secret: str, body: bytes, prefix: str) -> dict[str, str]:
    """Headers of a signed delivery (Yay's contract, shared by the sign-up webhook)."""
    return {
        "content-type": "application/json",
        f"x-{prefix}-signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        f"x-{prefix}-timestamp": str(int(time.time())),
        f"x-{prefix}-event-id": f"evt-{uuid.uuid4()}",
    }


def iso_now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Day:
    """The running stack and the people of one operator's day."""

    settings: Settings
    api: httpx.AsyncClient
    sessions: async_sessionmaker[AsyncSession]
    staff: dict[str, str]

    async def scalar(self, statement: Any) -> Any:
        async with self.sessions() as session:
            return await session.scalar(statement)

    async def send_lead(
        self, project_id: str, *, name: str, country: str, phone: str, search: str
    ) -> None:
        slug = name.lower().replace(" ", "-")
        response = await self.api.post(
            "/webhooks/sales-nav",
            headers={"x-sales-nav-secret": SALES_NAV_SECRET},
            json={
                "projectId": project_id,
                "searchUrl": f"https://linkedin.com/sales/search/{search}",
                "leads": [
                    {
                        "name": name,
                        "company": "Acme Payments",
                        "title": "VP Payments",
                        "linkedinUrl": f"https://www.linkedin.com/in/{slug}-7x1",
                        "companyDomain": "acmepayments.com",
                        "countryIso": country,
                        "email": None,
                        "phone": phone,
                    }
                ],
            },
        )
        assert response.status_code == 202, response.text

    async def expert_id(self, name: str) -> uuid.UUID:
        async def known() -> bool:
            return await self.scalar(select(Expert.id).where(Expert.full_name == name)) is not None

        await wait_until(known, timeout=SETTLE_SECONDS, interval=0.2, message=f"{name} ingested")
        return uuid.UUID(str(await self.scalar(select(Expert.id).where(Expert.full_name == name))))

    async def yay(self, kind: str, call_id: str, *, to: str, **fields: Any) -> None:
        body = json.dumps(
            {
                "event": kind,
                "callId": call_id,
                "occurredAt": iso_now(),
                "agentEmail": CALLER_EMAIL,
                "from": "+442071234567",
                "to": to,
                "direction": "outbound",
                **fields,
            }
        ).encode()
        response = await self.api.post(
            "/webhooks/yay", content=body, headers=signed(YAY_SECRET, body, "yay")
        )
        assert response.status_code == 202, response.text

    async def call(self, task: dict[str, Any], *, to: str, with_task_id: bool) -> None:
        """A real call: started, answered, 38 s of talk, ended."""
        call_id = f"yay-{uuid.uuid4()}"
        extra = {"metadata": {"taskId": task["id"]}} if with_task_id else {}
        await self.yay("call.started", call_id, to=to, **extra)
        await self.yay("call.answered", call_id, to=to, **extra)
        await self.yay("call.ended", call_id, to=to, durationSeconds=42, talkSeconds=38, **extra)

    async def pull_task(self, caller_headers: dict[str, str]) -> dict[str, Any]:
        """What the caller's client does: poll the current task until one is handed out."""
        answer: dict[str, Any] = {}

        async def handed_out() -> bool:
            response = await self.api.get("/api/v1/call-tasks/current", headers=caller_headers)
            assert response.status_code == 200, response.text
            answer.update(response.json())
            return answer["task"] is not None

        await wait_until(handed_out, timeout=SETTLE_SECONDS, interval=0.3, message="a call task")
        task: dict[str, Any] = answer["task"]
        return task

    async def task_status(self, task_id: str) -> str:
        return str(await self.scalar(select(CallTask.status).where(CallTask.id == task_id)))


@pytest.fixture
async def day(
    infra: Any,
    kafka_settings: Settings,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    agents: Agents,
) -> AsyncIterator[Day]:
    async with serve_sandbox(slow_seconds=1.0) as sandbox_url:
        settings = sandboxed_settings(
            kafka_settings,
            infra,
            sandbox_url,
            SALES_NAV_WEBHOOK_SECRET=SALES_NAV_SECRET,
            YAY_WEBHOOK_SECRET=YAY_SECRET,
            SIGNUP_WEBHOOK_SECRET=SIGNUP_SECRET,
        )
        async with (
            agents.running(settings, "ingestion", "enrichment", "allocation", "calls", "outreach"),
            serve_gateway(settings) as api,
        ):
            yield Day(settings, api, kafka_sessionmaker, admin_headers(settings))


@pytest.mark.parametrize("with_task_id", [True, False], ids=["task-id", "matched-by-phone"])
async def test_the_operators_day_from_project_to_sign_up(day: Day, with_task_id: bool) -> None:
    api, staff = day.api, day.staff
    region = region_inside_calling_window(day.settings)

    # 1. Project, screening question, caller.
    created = await api.post(
        "/api/v1/projects",
        headers=staff,
        json={
            "name": "Payments experts",
            "targetThreshold": 10,
            "geographyIsoCodes": [region.iso],
            "priority": 3,
        },
    )
    assert created.status_code == 201, created.text
    project_id = created.json()["id"]
    # Every confidently enriched expert of the project gets an invitation by email.
    configured = await api.patch(
        f"/api/v1/projects/{project_id}", headers=staff, json={"autoOutreachChannel": "EMAIL"}
    )
    assert configured.json()["autoOutreachChannel"] == "EMAIL", configured.text
    question = await api.post(
        f"/api/v1/projects/{project_id}/screening-questions",
        headers=staff,
        json={"prompt": "How many years in payments?", "displayOrder": 1, "required": True},
    )
    assert question.status_code == 201, question.text
    registered = await api.post(
        "/api/v1/callers",
        headers=staff,
        json={
            "email": CALLER_EMAIL,
            "name": "Day Caller",
            "timezone": "Europe/London",
            "languageCodes": ["en", region.language],
            "regionIsoCodes": [region.iso],
        },
    )
    assert registered.status_code == 201, registered.text
    caller_id = registered.json()["id"]
    # The operator finds both on the read side.
    projects = await api.get("/api/v1/projects", headers=staff, params={"status": "ACTIVE"})
    assert project_id in {project["id"] for project in projects.json()["items"]}
    callers = await api.get("/api/v1/callers", headers=staff, params={"isActive": "true"})
    assert caller_id in {listed["id"] for listed in callers.json()["items"]}
    minted = await api.post(
        "/api/v1/auth/token", headers=staff, json={"userId": CALLER_EMAIL, "role": "caller"}
    )
    assert minted.status_code in (200, 201), minted.text
    caller = {"Authorization": f"Bearer {minted.json()['accessToken']}"}

    # 2-3. A lead with a national-format phone, enriched, becomes a call task.
    await day.send_lead(
        project_id, name="Jane Standard", country=region.iso, phone=region.phones[0], search="d1"
    )
    jane = await day.expert_id("Jane Standard")

    async def enriched() -> bool:
        # Enriched, then on to outreach: the project sends an email to every confident lead.
        return await day.scalar(select(Lead.enriched_at).where(Lead.expert_id == jane)) is not None

    await wait_until(enriched, timeout=SETTLE_SECONDS, interval=0.2, message="Jane enriched")

    # The operator reads the auto-outreach email on Jane's thread once the vendor has it.
    async def emailed() -> bool:
        threads = await api.get(
            "/api/v1/outreach/threads", headers=staff, params={"expertId": str(jane)}
        )
        return any(t["lastMessageAt"] for t in threads.json()["items"])

    await wait_until(emailed, timeout=SETTLE_SECONDS, interval=0.2, message="Jane emailed")
    threads = await api.get(
        "/api/v1/outreach/threads", headers=staff, params={"expertId": str(jane)}
    )
    [thread] = threads.json()["items"]
    assert (thread["projectId"], thread["channel"]) == (project_id, "EMAIL")
    detail = await api.get(f"/api/v1/outreach/threads/{thread['id']}", headers=staff)
    assert detail.status_code == 200, detail.text
    [email] = detail.json()["messages"]
    assert email["purpose"] == "OUTREACH" and email["deliveryStatus"] in ("SENT", "DELIVERED")
    assert email["recipient"] == thread["recipient"] and email["providerMessageId"]
    assert email["sentAt"] is not None

    # The lead came with a phone: its task may exist before ranking; ranking then re-scores it.
    async def ranked_task_waiting() -> bool:
        score = await day.scalar(select(Lead.ranking_score).where(Lead.expert_id == jane))
        response = await api.get(
            "/api/v1/call-tasks/operator/tasks",
            headers=staff,
            params={"status": "PENDING", "projectId": project_id},
        )
        tasks = [t for t in response.json()["items"] if t["expert"]["id"] == str(jane)]
        return score is not None and [t["rankingScore"] for t in tasks] == [float(score)]

    await wait_until(ranked_task_waiting, timeout=SETTLE_SECONDS, interval=0.2, message="ranked")

    # 4. The caller pulls the task and calls; Yay tells the platform.
    task = await day.pull_task(caller)
    assert task["expert"]["id"] == str(jane)
    assert task["status"] == "ASSIGNED" and task["kind"] == "INITIAL"
    assert task["priority"] == 3 and task["regionIso"] == region.iso
    lead_score = await day.scalar(select(Lead.ranking_score).where(Lead.expert_id == jane))
    assert task["rankingScore"] == pytest.approx(float(lead_score))
    stored_phone = await day.scalar(select(CallTask.phone_number).where(CallTask.id == task["id"]))
    assert stored_phone == region.e164[0]

    await day.call(task, to=region.e164[0], with_task_id=with_task_id)

    async def completed() -> bool:
        return await day.task_status(task["id"]) == "COMPLETED"

    await wait_until(completed, timeout=SETTLE_SECONDS, interval=0.2, message="call validated")
    # The operator finds the validated call on the read side, by task and by caller.
    task_logs = await api.get(f"/api/v1/call-tasks/{task['id']}/call-logs", headers=staff)
    assert task_logs.status_code == 200, task_logs.text
    [call_log] = task_logs.json()["items"]
    assert call_log["callerId"] == caller_id and call_log["expertId"] == str(jane)
    assert call_log["status"] == "ENDED" and call_log["talkSeconds"] == 38
    assert call_log["validatedAt"] is not None and call_log["fraudFlags"] == []
    caller_logs = await api.get(
        f"/api/v1/callers/{caller_id}/call-logs", headers=staff, params={"validated": "true"}
    )
    assert caller_logs.status_code == 200, caller_logs.text
    assert [listed["id"] for listed in caller_logs.json()["items"]] == [call_log["id"]]

    async def dial_counted() -> bool:
        response = await api.get(f"/api/v1/callers/{caller_id}/performance/latest", headers=staff)
        return response.status_code == 200 and response.json()["rolling60MinuteDials"] >= 1

    await wait_until(dial_counted, timeout=SETTLE_SECONDS, interval=0.2, message="dial counted")

    # 5. The outcome after the call: a sign-up chase; once only.
    outcome = await api.post(
        f"/api/v1/call-tasks/{task['id']}/outcome",
        headers=caller,
        json={"outcome": "INTERESTED_SIGNUP_LINK_SENT"},
    )
    assert outcome.status_code == 200, outcome.text
    chase_id = outcome.json()["followUpTaskId"]
    assert chase_id is not None
    pending = await api.get(
        "/api/v1/call-tasks/operator/tasks",
        headers=staff,
        params={"status": "PENDING", "projectId": project_id},
    )
    chases = [t for t in pending.json()["items"] if t["kind"] == "SIGNUP_CHASE"]
    assert [(t["id"], t["chaseOfTaskId"]) for t in chases] == [(chase_id, task["id"])]
    again = await api.post(
        f"/api/v1/call-tasks/{task['id']}/outcome",
        headers=caller,
        json={"outcome": "RETRYABLE_REJECTION"},
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_transition"

    body = json.dumps(
        {"event": "expert.signed_up", "expertId": str(jane), "signedUpAt": iso_now()}
    ).encode()
    signup = await api.post(
        "/webhooks/signup", content=body, headers=signed(SIGNUP_SECRET, body, "signup")
    )
    assert signup.status_code == 202, signup.text

    async def signed_up() -> bool:
        return await day.task_status(chase_id) == "CANCELLED"

    await wait_until(signed_up, timeout=SETTLE_SECONDS, interval=0.2, message="chase cancelled")
    assert await day.scalar(select(Expert.signed_up_at).where(Expert.id == jane)) is not None
    assert await day.scalar(select(Lead.status).where(Lead.expert_id == jane)) == "CONVERTED"
    # The operator reads why the chase stopped in its audit history.
    history = await api.get(
        "/api/v1/system-events",
        headers=staff,
        params={"entityType": "call_task", "entityId": chase_id},
    )
    assert history.status_code == 200, history.text
    assert history.json()["items"][-1]["data"]["to"] == "CANCELLED", history.text

    # 6. A second expert, called and marked never to be contacted again.
    await day.send_lead(
        project_id, name="Kai Standard", country=region.iso, phone=region.phones[1], search="d1"
    )
    kai = await day.expert_id("Kai Standard")
    second = await day.pull_task(caller)
    assert second["expert"]["id"] == str(kai)
    await day.call(second, to=region.e164[1], with_task_id=with_task_id)

    async def dialled() -> bool:
        return await day.task_status(second["id"]) in ("DIALING", "COMPLETED")

    await wait_until(dialled, timeout=SETTLE_SECONDS, interval=0.2, message="second call seen")
    never = await api.post(
        f"/api/v1/call-tasks/{second['id']}/outcome",
        headers=caller,
        json={"outcome": "NEVER_CONTACT_AGAIN"},
    )
    assert never.status_code == 200, never.text
    messages_to_kai = (
        select(func.count()).select_from(OutreachMessage).where(OutreachMessage.expert_id == kai)
    )
    messages_before = await day.scalar(messages_to_kai)

    refused = await api.post(
        "/api/v1/outreach/send",
        headers=staff,
        json={
            "projectId": project_id,
            "expertId": str(kai),
            "channel": "EMAIL",
            "recipient": "kai@acmepayments.com",
            "body": "We would love to speak with you about our research.",
        },
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "expert_suppressed"

    # Kai found again by another search: the lead settles, and no task or message follows.
    await day.send_lead(
        project_id, name="Kai Standard", country=region.iso, phone=region.phones[1], search="d2"
    )

    async def second_lead_settled() -> bool:
        async with day.sessions() as session:
            statuses = (
                await session.scalars(select(Lead.status).where(Lead.expert_id == kai))
            ).all()
        return len(statuses) == 2 and "NEW" not in statuses and "ENRICHING" not in statuses

    await wait_until(
        second_lead_settled, timeout=SETTLE_SECONDS, interval=0.2, message="Kai's 2nd lead"
    )
    open_tasks = await day.scalar(
        select(func.count())
        .select_from(CallTask)
        .where(CallTask.expert_id == kai, CallTask.status.in_(["PENDING", "ASSIGNED", "DIALING"]))
    )
    assert open_tasks == 0
    assert await day.scalar(messages_to_kai) == messages_before
    nothing = await api.get("/api/v1/call-tasks/current", headers=caller)
    assert nothing.status_code == 200 and nothing.json()["task"] is None
    assert nothing.json()["reason"] == "NO_AVAILABLE_TASKS"
