"""E2E on the embedded stack: a caller's shift told by signed Yay webhooks.

The gateway runs in-process (``serve_api``) on this test's lane topics; the calls service
(yay-call-events → call-validation → performance, with its outbox relay) runs as a real Faust
app on the same topics and database. Deliveries: normal calls, short calls, a replayed event,
an out-of-order pair, a bad signature and a stale timestamp. They must end in the right
CallLogs, tasks, CallerPerformanceMetric rows and allocation status; the rejected deliveries
are answered 401/400 and stored nowhere.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.db import session_scope
from sourcing.common.models import (
    Caller,
    CallerPerformanceMetric,
    CallerStatusHistory,
    CallLog,
    CallLogRaw,
    CallTask,
    ProcessedWebhookEvent,
)
from sourcing.common.models.enums import ContactType
from sourcing.common.statemachines import CALLER_ALLOCATION
from sourcing.people.phones import to_e164
from tests.e2e.stack import Agents
from tests.factories import (
    create_call_task,
    create_caller,
    create_expert,
    create_expert_contact,
    create_project,
)
from tests.fixtures.kafka import running_app, wait_until
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration
ServeApi = Callable[[Settings], AbstractAsyncContextManager[httpx.AsyncClient]]

# 16:00 UTC on a winter day: 11:00 in New York (inside the calling window), 01:00 in Tokyo.
T0 = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)
EMAIL = "Shift.Caller@Example.com"


class ShiftClock:
    """The calls service's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


class Yay:
    """Signs and posts Yay deliveries to the gateway."""

    def __init__(self, client: httpx.AsyncClient, settings: Settings) -> None:
        assert settings.YAY_WEBHOOK_SECRET is not None
        self.client = client
        self.secret = settings.YAY_WEBHOOK_SECRET.get_secret_value().encode()

    async def post(
        self,
        kind: str,
        call_id: str,
        seconds: float,
        *,
        to: str,
        event_id: str | None = None,
        timestamp: float | None = None,
        signature: str | None = None,
        **fields: Any,
    ) -> httpx.Response:
        body = json.dumps(
            {
                "event": kind,
                "callId": call_id,
                "occurredAt": at(seconds),
                "agentEmail": EMAIL.lower() if seconds % 2 else EMAIL,  # any casing matches
                "from": "+442071234567",
                "to": to,
                "direction": "outbound",
                **fields,
            }
        ).encode()
        headers = {
            "content-type": "application/json",
            "x-yay-signature": signature or hmac.new(self.secret, body, hashlib.sha256).hexdigest(),
            "x-yay-timestamp": str(int(timestamp if timestamp is not None else time.time())),
            "x-yay-event-id": event_id or f"evt-{uuid.uuid4()}",
        }
        return await self.client.post("/webhooks/yay", content=body, headers=headers)

    async def call(
        self,
        call_id: str,
        start: float,
        *,
        to: str,
        talk: int,
        task_id: uuid.UUID | None = None,
        order: tuple[str, ...] = ("call.started", "call.answered", "call.ended"),
    ) -> None:
        extra: dict[str, Any] = {"metadata": {"taskId": str(task_id)}} if task_id else {}
        offsets = {"call.started": 0, "call.answered": 4, "call.ended": 4 + talk + 1}
        for kind in order:
            fields = dict(extra)
            if kind == "call.ended":
                fields.update(durationSeconds=talk + 5, talkSeconds=talk)
            response = await self.post(kind, call_id, start + offsets[kind], to=to, **fields)
            assert response.status_code == 202, response.text


async def _expert_with_phone(
    session: AsyncSession, phone: str, **fields: Any
) -> tuple[uuid.UUID, str]:
    expert = await create_expert(session, **fields)
    await create_expert_contact(
        session,
        expert=expert,
        type=ContactType.PHONE.value,
        value=phone,
        value_normalized=to_e164(phone),
        is_dialable=True,
        is_professional=None,
    )
    return expert.id, phone


async def test_a_callers_shift_from_signed_yay_webhooks(
    serve_api: ServeApi,
    api_settings_factory: Callable[..., Settings],
    lane_topics: str,
    kafka_settings: Settings,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    agents: Agents,
) -> None:
    sessions = kafka_sessionmaker
    async with session_scope(sessions) as session:
        caller = await create_caller(session, email=EMAIL)
        project = await create_project(session)
        experts = {
            "a": await _expert_with_phone(session, "+1 415 555 0101"),
            "b": await _expert_with_phone(session, "+1 (415) 555-0102"),
            "tokyo": await _expert_with_phone(
                session, "+81 3 1234 5678", country_iso="JP", timezone=None
            ),
        }
        caller_id = caller.id

    async def assign(key: str) -> uuid.UUID:
        """What allocation does: one ASSIGNED task at a time for the caller."""
        expert_id, phone = experts[key]
        async with session_scope(sessions) as session:
            task = await create_call_task(
                session,
                project=project,
                expert_id=expert_id,
                caller_id=caller_id,
                status="ASSIGNED",
                phone_number=to_e164(phone),
            )
            return task.id

    async def task_status(task_id: uuid.UUID) -> str:
        async with session_scope(sessions) as session:
            return str(await session.scalar(select(CallTask.status).where(CallTask.id == task_id)))

    async def latest_metric() -> CallerPerformanceMetric | None:
        async with session_scope(sessions) as session:
            return (
                await session.execute(
                    select(CallerPerformanceMetric)
                    .where(CallerPerformanceMetric.caller_id == caller_id)
                    .order_by(
                        CallerPerformanceMetric.computed_at.desc(),
                        CallerPerformanceMetric.created_at.desc(),
                    )
                    .limit(1)
                )
            ).scalar_one_or_none()

    async def settled(task_id: uuid.UUID, status: str) -> None:
        async def done() -> bool:
            return await task_status(task_id) == status

        await wait_until(done, timeout=60, message=f"task {task_id} {status}")

    clock = ShiftClock(T0 + timedelta(minutes=2))
    calls_app = agents.build("calls", kafka_settings, clock=clock)
    gateway_settings = api_settings_factory(KAFKA_TOPIC_PREFIX=lane_topics)
    async with serve_api(gateway_settings) as client, running_app(calls_app):
        yay = Yay(client, gateway_settings)

        # 1. A normal call on an assigned task (named by metadata.taskId); its end is
        #    delivered twice with the same event id (a replay).
        task_a = await assign("a")
        await yay.call("call-a", 0, to="+14155550101", talk=60, task_id=task_a)
        replay = await yay.post(
            "call.ended",
            "call-a",
            65,
            to="+14155550101",
            event_id="evt-a-end",
            durationSeconds=65,
            talkSeconds=60,
        )
        again = await yay.post(
            "call.ended",
            "call-a",
            65,
            to="+14155550101",
            event_id="evt-a-end",
            durationSeconds=65,
            talkSeconds=60,
        )
        assert (replay.status_code, again.status_code) == (202, 202)
        await settled(task_a, "COMPLETED")

        async def warm() -> bool:
            metric = await latest_metric()
            return metric is not None and metric.allocation_status == "WARMUP_GRACE"

        await wait_until(warm, timeout=60, message="warm-up grace after the first call")

        # 2. Rejected deliveries: bad signature (401), stale timestamp (400).
        bad = await yay.post(
            "call.started", "call-bad", 90, to="+14155550102", signature="0" * 64,
            event_id="evt-bad-signature",
        )  # fmt: skip
        stale = await yay.post(
            "call.started", "call-stale", 90, to="+14155550102",
            timestamp=time.time() - 600, event_id="evt-stale",
        )  # fmt: skip
        assert bad.status_code == 401 and bad.json()["error"]["code"] == "unauthorized"
        assert stale.status_code == 400 and stale.json()["error"]["code"] == "invalid_payload"

        # The shift goes on: the rest happens after the warm-up.
        clock.now = T0 + timedelta(minutes=8)

        # 3. A short call matched by the dialled number, its end delivered before its answer.
        task_b = await assign("b")
        await yay.call(
            "call-b",
            120,
            to="+14155550102",
            talk=2,
            order=("call.started", "call.ended", "call.answered"),
        )
        await settled(task_b, "RESTRICTED")

        # 4. A normal-length call at 01:00 in Tokyo: a timezone mismatch.
        task_c = await assign("tokyo")
        await yay.call("call-c", 180, to="+81312345678", talk=40, task_id=task_c)
        await settled(task_c, "RESTRICTED")

        # 5. Two more short calls (numbers no active task has): the third short call.
        await yay.call("call-d", 240, to="+14155550999", talk=1)
        await yay.call("call-e", 300, to="+14155550998", talk=3)

        async def restricted() -> bool:
            metric = await latest_metric()
            return metric is not None and metric.short_calls_last_hour == 3

        await wait_until(restricted, timeout=60, message="three short calls in the metrics")

    async with session_scope(sessions) as session:
        logs = {
            log.yay_call_id: log
            for log in (
                await session.execute(select(CallLog).where(CallLog.caller_id == caller_id))
            ).scalars()
        }
        assert set(logs) == {"call-a", "call-b", "call-c", "call-d", "call-e"}
        a, b, c, d, e = (logs[k] for k in sorted(logs))
        assert (a.status, a.call_task_id, a.talk_seconds, a.event_count) == (
            "ENDED",
            task_a,
            60,
            4,  # started, answered, ended, and the replayed end once
        )
        assert not a.is_short_call and not a.timezone_mismatch and a.validated_at is not None
        assert (b.call_task_id, b.is_short_call, b.timezone_mismatch) == (task_b, True, False)
        assert b.answered_at == T0 + timedelta(seconds=124) and b.status == "ENDED"
        assert (c.call_task_id, c.is_short_call, c.timezone_mismatch) == (task_c, False, True)
        assert [f["flag"] for f in c.fraud_flags] == ["TIMEZONE_MISMATCH"]
        assert (d.call_task_id, d.is_short_call) == (None, True)
        assert (e.call_task_id, e.is_short_call) == (None, True)

        # The replay was stored once; the rejected deliveries nowhere.
        assert (
            await session.scalar(
                select(func.count())
                .select_from(CallLogRaw)
                .where(CallLogRaw.event_id == "evt-a-end")
            )
            == 1
        )
        for table, column in (
            (CallLogRaw, CallLogRaw.event_id),
            (ProcessedWebhookEvent, ProcessedWebhookEvent.event_id),
        ):
            stored = await session.scalar(
                select(func.count())
                .select_from(table)
                .where(column.in_(["evt-bad-signature", "evt-stale"]))
            )
            assert stored == 0
        assert (
            await session.scalar(
                select(func.count())
                .select_from(CallLogRaw)
                .where(CallLogRaw.yay_call_id.in_(["call-bad", "call-stale"]))
            )
            == 0
        )
        assert await session.scalar(select(func.count()).select_from(CallLogRaw)) == 16

        caller_row = (
            await session.execute(select(Caller).where(Caller.id == caller_id))
        ).scalar_one()
        assert caller_row.allocation_status == "RESTRICTED_FRAUD"
        assert caller_row.shift_started_at == T0
        assert caller_row.last_dial_at == T0 + timedelta(seconds=300)

        metric = await latest_metric()
        assert metric is not None
        assert (
            metric.rolling_60_minute_dials,
            metric.rolling_60_minute_connections,
            metric.short_calls_last_hour,
            metric.timezone_mismatches_last_hour,
            metric.allocation_status,
        ) == (5, 5, 3, 1, "RESTRICTED_FRAUD")
        # 0.6 * 5/30 + 0.4 * 5/5 - 4/5 < 0: floored at 0
        assert metric.performance_score == 0.0

        history = (
            await session.execute(
                select(CallerStatusHistory.from_status, CallerStatusHistory.to_status)
                .where(CallerStatusHistory.caller_id == caller_id)
                .order_by(CallerStatusHistory.created_at, CallerStatusHistory.id)
            )
        ).all()
        moves = [tuple(row) for row in history]
        assert moves[0] == ("ACTIVE", "WARMUP_GRACE")
        assert moves[-1][1] == "RESTRICTED_FRAUD"
        for source, target in moves:
            assert source is not None and CALLER_ALLOCATION.can(source, str(target))
