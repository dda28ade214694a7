"""The bare baselines: the same essential work as the platform with no framework around it.

``python -m bench.baseline http``      Starlette under uvicorn (same server settings as the
                                       gateway): the Yay and Sales Nav webhooks (verify, produce
                                       with acks=all through aiokafka, 202), and
                                       ``GET /api/v1/call-tasks/current`` + the operator requeue
                                       (JWT check, asyncpg, the platform's allocation work by
                                       hand: one statement each, same rows written).
``python -m bench.baseline pipeline``  aiokafka consumer of ``sales-nav-ingestion``: experts,
                                       leads, one sandbox email lookup per lead, the enrichment
                                       attempt and contact rows, lead ``ENRICHED``.
``python -m bench.baseline calls``     aiokafka consumer of ``yay-call-events`` writing the
                                       platform's calls rows (dedup rows, claims, raw events,
                                       call logs, the caller's dial, validation, metric, status
                                       moves, the outbox rows it produces) in one transaction
                                       per batch, where the platform uses three lanes.

Configuration comes from the same environment variables as the platform. Consumers take
batches (``getmany``), write each batch in one transaction and commit offsets after it, like
the platform's batch lanes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import jwt
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.loadgen import loop_factory
from sourcing.allocation.service import (
    BECAME_ACTIVE,
    BECAME_IDLE,
    HOW_TO_RESUME,
    IDLE_SOURCES,
    ExpirySweep,
    open_window,
)
from sourcing.allocation.settings import AllocationSettings
from sourcing.calls.fold import ENDED, FAILED, YayEvent, fold_events, is_call_event
from sourcing.calls.service import (
    CallerActivity,
    StatusThresholds,
    evaluate_allocation_status,
    performance_score,
    validate_call,
)
from sourcing.calls.settings import CallSettings
from sourcing.common.config import load_settings
from sourcing.common.messages.calls import YAY_EVENT_TYPES
from sourcing.common.webhook_events import body_sha256
from sourcing.people.callers import presence_cutoff, shift_start_for_dial
from sourcing.people.suppression import PERSON_REASONS

ENV = os.environ


def _topic(lane: str) -> str:
    return ENV.get("KAFKA_TOPIC_PREFIX", "") + lane


def _dsn() -> str:
    return ENV["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")


def _error(status: int, code: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": code, "details": {}}}, status)


# --- HTTP -----------------------------------------------------------------------------------

# The allocation of one task request, by hand, doing what the platform's statement does
# (sourcing.allocation.repository.assign_from_pool): lock and stamp the caller (shift,
# presence), return stale assignments to the pool (every caller's when the sweep is due, the
# caller's own always), pick the best PENDING task they may take (regions, languages, calling
# window, suppressed experts and phones, ACTIVE project, available), assign it, move the
# caller ACTIVE/IDLE, and write the same audit and history rows. The task view comes back
# with it.
ALLOCATE = """
WITH me AS (
    SELECT ctid AS version, id, is_active, allocation_status,
           (SELECT array_agg(upper(c)) FROM unnest(region_iso_codes) c) AS regions,
           (SELECT array_agg(lower(c)) FROM unnest(language_codes) c) AS languages
    FROM callers WHERE id = $1 FOR UPDATE
),
allowed AS (
    SELECT me.*, me.version = (SELECT ctid FROM callers s WHERE s.id = me.id) AS settled
    FROM me WHERE is_active AND allocation_status <> ALL($7::text[])
),
swept AS (
    SELECT id, caller_id FROM call_tasks
    WHERE status = 'ASSIGNED' AND expires_at <= $2 AND $4
    ORDER BY expires_at LIMIT $5 FOR UPDATE SKIP LOCKED
),
own_stale AS (
    SELECT id, caller_id FROM call_tasks
    WHERE status = 'ASSIGNED' AND expires_at <= $2 AND caller_id = (SELECT id FROM allowed)
    FOR UPDATE SKIP LOCKED
),
expired AS (
    UPDATE call_tasks t SET status = 'PENDING',
           status_reason = 'dial deadline passed: EXPIRED, returned to the pool',
           status_changed_at = $2, caller_id = NULL, assigned_at = NULL, expires_at = NULL,
           requeue_count = t.requeue_count + 1, updated_at = now()
    FROM (SELECT * FROM swept UNION SELECT * FROM own_stale) s WHERE t.id = s.id
    RETURNING t.id, s.caller_id
),
expired_audit AS (
    INSERT INTO system_events (type, entity_type, entity_id, actor, correlation_id, data)
    SELECT 'call_task.expired', 'call_task', id, 'caller:' || $1, $12,
           jsonb_build_object('from', 'ASSIGNED', 'via', 'EXPIRED', 'to', 'PENDING',
                              'callerId', caller_id::text)
    FROM expired
),
held AS (
    SELECT id, status, expires_at FROM call_tasks
    WHERE caller_id = (SELECT id FROM allowed) AND status IN ('ASSIGNED', 'DIALING')
),
candidate AS (
    SELECT t.id FROM call_tasks t
    JOIN experts e ON e.id = t.expert_id
    JOIN projects p ON p.id = t.project_id
    WHERE EXISTS (SELECT 1 FROM allowed WHERE settled) AND NOT EXISTS (SELECT 1 FROM held)
      AND t.status = 'PENDING'
      AND (t.available_after IS NULL OR t.available_after <= $2)
      AND (t.region_iso IS NULL OR t.region_iso = ANY((SELECT regions FROM allowed)::text[]))
      AND (t.language_code IS NULL
           OR lower(t.language_code) = ANY((SELECT languages FROM allowed)::text[]))
      AND e.suppressed_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM expert_suppressions s WHERE s.expert_id = e.id)
      AND NOT EXISTS (
          SELECT 1 FROM contact_suppressions s
          WHERE s.reason = ANY($13::text[]) AND (
              s.expert_id = e.id
              OR s.kind = 'LINKEDIN_URL' AND s.value_hash
                 = encode(sha256(convert_to(e.linkedin_url_normalized, 'UTF8')), 'hex')
              OR s.kind = 'EMAIL' AND s.value_hash
                 = encode(sha256(convert_to(lower(e.primary_email), 'UTF8')), 'hex')))
      AND NOT EXISTS (
          SELECT 1 FROM contact_suppressions s
          WHERE s.kind = 'PHONE'
            AND s.value_hash = encode(sha256(convert_to(t.phone_number, 'UTF8')), 'hex'))
      AND p.status = 'ACTIVE'
      AND (e.timezone = ANY($9::text[]) OR (e.timezone IS NULL AND (
           e.country_iso IS NULL OR upper(e.country_iso) = ANY($10::text[])
           OR upper(e.country_iso) <> ALL($11::text[]))))
    ORDER BY t.priority DESC, t.ranking_score DESC, t.created_at
    LIMIT 1
    FOR UPDATE OF t SKIP LOCKED
),
picked AS (
    UPDATE call_tasks t SET status = 'ASSIGNED', status_reason = NULL, status_changed_at = $2,
           caller_id = (SELECT id FROM allowed), assigned_at = $2, expires_at = $3,
           updated_at = now()
    FROM candidate WHERE t.id = candidate.id
    RETURNING t.*
),
assigned_audit AS (
    INSERT INTO system_events (type, entity_type, entity_id, actor, correlation_id, data)
    SELECT 'call_task.assigned', 'call_task', id, 'caller:' || $1, $12,
           jsonb_build_object('from', 'PENDING', 'to', 'ASSIGNED', 'reason', NULL,
                              'callerId', caller_id::text, 'expiresAt', expires_at)
    FROM picked
),
decision AS (
    SELECT id, allocation_status AS from_status,
           CASE WHEN EXISTS (SELECT 1 FROM picked)
                     AND allocation_status = 'IDLE_NO_AVAILABLE_TASKS' THEN 'ACTIVE'
                WHEN settled AND NOT EXISTS (SELECT 1 FROM picked)
                     AND NOT EXISTS (SELECT 1 FROM held) AND NOT EXISTS (SELECT 1 FROM expired)
                     AND allocation_status = ANY($8::text[]) THEN 'IDLE_NO_AVAILABLE_TASKS'
           END AS to_status
    FROM allowed
),
caller_moved AS (
    UPDATE callers c SET
        allocation_status = coalesce(d.to_status, c.allocation_status),
        status_reason = CASE WHEN d.to_status IS NULL THEN c.status_reason
                             WHEN d.to_status = 'ACTIVE' THEN $14 ELSE $15 END,
        status_changed_at = CASE WHEN d.to_status IS NULL THEN c.status_changed_at ELSE $2 END,
        shift_started_at = CASE WHEN c.shift_started_at IS NULL OR $2 - greatest(
                c.shift_started_at, c.last_dial_at, c.last_task_requested_at) >= $6
            THEN $2 ELSE c.shift_started_at END,
        last_task_requested_at = $2, last_seen_at = $2, updated_at = now()
    FROM decision d WHERE c.id = d.id
    RETURNING c.id, d.from_status, d.to_status,
              CASE WHEN d.to_status = 'ACTIVE' THEN $14 ELSE $15 END AS reason
),
history AS (
    INSERT INTO caller_status_history (caller_id, from_status, to_status, reason, actor,
                                       correlation_id)
    SELECT id, from_status, to_status, reason, 'caller:' || $1, $12
    FROM caller_moved WHERE to_status IS NOT NULL
),
caller_audit AS (
    INSERT INTO system_events (type, entity_type, entity_id, actor, correlation_id, data)
    SELECT 'caller.allocation_status_changed', 'caller', id, 'caller:' || $1, $12,
           jsonb_build_object('from', from_status, 'to', to_status, 'reason', reason)
    FROM caller_moved WHERE to_status IS NOT NULL
)
SELECT me.id AS me_id, me.is_active, me.allocation_status AS caller_status,
       EXISTS (SELECT 1 FROM allowed) AS may_work,
       EXISTS (SELECT 1 FROM allowed WHERE settled) AS settled,
       coalesce((SELECT to_status FROM caller_moved), me.allocation_status) AS allocation_status,
       (SELECT count(*) FROM expired) AS returned,
       task.*, e.full_name AS expert_full_name, e.title AS expert_title,
       e.company_name AS expert_company_name, e.primary_phone AS expert_primary_phone,
       e.timezone AS expert_timezone, e.country_iso AS expert_country_iso,
       e.language_codes AS expert_language_codes, p.name AS project_name
FROM (SELECT 1) one
LEFT JOIN me ON true
LEFT JOIN (
    SELECT picked.*, true AS newly_assigned FROM picked
    UNION ALL
    SELECT t.*, false FROM call_tasks t
    WHERE t.id IN (SELECT id FROM held WHERE status <> 'ASSIGNED' OR expires_at > $2)
) task ON true
LEFT JOIN experts e ON e.id = task.expert_id
LEFT JOIN projects p ON p.id = task.project_id
"""
# The operator's requeue, audited (call_task.requeued), with the task view.
REQUEUE = """
WITH old AS (
    SELECT id, status, caller_id FROM call_tasks WHERE id = $1 FOR UPDATE
),
requeued AS (
    UPDATE call_tasks t SET status = 'PENDING', status_reason = 'requeued: ' || $2,
           status_changed_at = $3, caller_id = NULL, assigned_at = NULL, expires_at = NULL,
           dialing_started_at = NULL, requeue_count = t.requeue_count + 1, updated_at = now()
    FROM old WHERE t.id = old.id AND old.status IN ('ASSIGNED', 'DIALING', 'EXPIRED')
    RETURNING t.*, old.status AS from_status, old.caller_id AS previous_caller_id
),
audit AS (
    INSERT INTO system_events (type, entity_type, entity_id, actor, correlation_id, data)
    SELECT 'call_task.requeued', 'call_task', id, $4, $5,
           jsonb_build_object('from', from_status, 'to', 'PENDING', 'reason', $2,
                              'previousCallerId', previous_caller_id::text)
    FROM requeued
)
SELECT requeued.*, e.full_name AS expert_full_name, e.title AS expert_title,
       e.company_name AS expert_company_name, e.primary_phone AS expert_primary_phone,
       e.timezone AS expert_timezone, e.country_iso AS expert_country_iso,
       e.language_codes AS expert_language_codes, p.name AS project_name
FROM requeued
JOIN experts e ON e.id = requeued.expert_id
JOIN projects p ON p.id = requeued.project_id
"""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _task_json(row: asyncpg.Record) -> dict[str, Any]:
    """The task view the platform answers (``CallTaskOut``)."""
    return {
        "id": str(row["id"]),
        "status": row["status"],
        "statusReason": row["status_reason"],
        "kind": row["kind"],
        "projectId": str(row["project_id"]),
        "projectName": row["project_name"],
        "expert": {
            "id": str(row["expert_id"]),
            "name": row["expert_full_name"],
            "title": row["expert_title"],
            "company": row["expert_company_name"],
            "phone": row["phone_number"] or row["expert_primary_phone"],
            "timezone": row["expert_timezone"],
            "countryIso": row["expert_country_iso"],
            "languageCodes": list(row["expert_language_codes"] or []),
        },
        "callerId": str(row["caller_id"]) if row["caller_id"] else None,
        "priority": row["priority"],
        "rankingScore": row["ranking_score"],
        "regionIso": row["region_iso"],
        "languageCode": row["language_code"],
        "availableAfter": _iso(row["available_after"]),
        "assignedAt": _iso(row["assigned_at"]),
        "expiresAt": _iso(row["expires_at"]),
        "dialingStartedAt": _iso(row["dialing_started_at"]),
        "completedAt": _iso(row["completed_at"]),
        "outcome": row["outcome"],
        "outcomeAt": _iso(row["outcome_at"]),
        "outcomeNotes": row["outcome_notes"],
        "requeueCount": row["requeue_count"],
        "chaseOfTaskId": str(row["chase_of_task_id"]) if row["chase_of_task_id"] else None,
        "createdAt": _iso(row["created_at"]),
        "updatedAt": _iso(row["updated_at"]),
    }


async def allocate(
    connection: asyncpg.Connection,
    caller_id: uuid.UUID,
    *,
    now: datetime,
    settings: AllocationSettings,
    sweep: bool,
    correlation_id: str,
) -> asyncpg.Record:
    """One task request (:data:`ALLOCATE`), run again when it returned tasks to the pool and
    gave none or its caller lock waited for a change, like the platform."""
    window = open_window(now, settings)
    arguments = [
        caller_id,
        now,
        now + timedelta(seconds=settings.CALL_TASK_DIAL_DEADLINE_SECONDS),
        sweep,
        settings.ALLOCATION_EXPIRY_BATCH_SIZE,
        timedelta(seconds=settings.CALLER_SHIFT_GAP_SECONDS),
        list(HOW_TO_RESUME),  # the statuses that get no work
        list(IDLE_SOURCES),
        list(window.zones),
        list(window.countries),
        list(window.known_countries),
        correlation_id,
        list(PERSON_REASONS),
        BECAME_ACTIVE,
        BECAME_IDLE,
    ]
    async with connection.transaction():
        row = await connection.fetchrow(ALLOCATE, *arguments)
        if row["may_work"] and row["id"] is None and (row["returned"] or not row["settled"]):
            arguments[3] = False
            row = await connection.fetchrow(ALLOCATE, *arguments)
    return row


async def requeue(
    connection: asyncpg.Connection,
    task_id: uuid.UUID,
    *,
    reason: str,
    actor: str,
    now: datetime,
    correlation_id: str,
) -> asyncpg.Record | None:
    """The operator's requeue (:data:`REQUEUE`); None when the task may not be requeued."""
    return await connection.fetchrow(REQUEUE, task_id, reason, now, actor, correlation_id)


YAY_EVENT_ID_MAX = 200
YAY_MESSAGE_TYPE = "yay.call-event.received.v1"


def _utc_text(moment: datetime) -> str:
    """A time as the platform's envelopes write it (ISO 8601, UTC, ``Z``)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _yay_message(
    event: dict[str, Any],
    event_id: str,
    call_id: str,
    event_type: str,
    signed: float,
    correlation: str,
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The platform's ``yay.call-event.received.v1`` envelope and its headers, by hand."""
    for name in ("durationSeconds", "talkSeconds"):
        if event.get(name) is not None:
            event[name] = float(event[name])
    received = _utc_text(datetime.now(UTC))
    message_id = str(uuid.uuid4())
    envelope = {
        "id": message_id,
        "type": YAY_MESSAGE_TYPE,
        "correlation_id": correlation,
        "occurred_at": received,
        "attempt": 1,
        "payload": {
            "eventId": event_id,
            "eventType": event_type,
            "callId": call_id,
            "agentEmail": event.get("agentEmail"),
            "signatureTimestamp": _utc_text(datetime.fromtimestamp(signed, UTC)),
            "receivedAt": received,
            "body": event,
        },
    }
    headers = [
        ("message-id", message_id.encode()),
        ("message-type", YAY_MESSAGE_TYPE.encode()),
        ("correlation-id", correlation.encode()),
    ]
    return json.dumps(envelope, separators=(",", ":")).encode(), headers


def create_http_app() -> Starlette:
    settings = load_settings(AllocationSettings)  # the secrets, claims, window and deadlines
    yay_secret = ENV["YAY_WEBHOOK_SECRET"].encode()
    sales_nav_secret = ENV["SALES_NAV_WEBHOOK_SECRET"]
    jwt_secret = ENV["JWT_SECRET"]
    state: dict[str, Any] = {}
    sweep = ExpirySweep(timedelta(seconds=settings.ALLOCATION_EXPIRY_SWEEP_SECONDS))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        producer = AIOKafkaProducer(
            bootstrap_servers=ENV["KAFKA_BROKER_URL"],
            acks="all",
            enable_idempotence=ENV.get("KAFKA_IDEMPOTENT_PRODUCER") == "1",
            linger_ms=0,
        )
        await producer.start()
        pool = await asyncpg.create_pool(_dsn(), min_size=2, max_size=40, command_timeout=30)
        state.update(producer=producer, pool=pool)
        try:
            yield
        finally:
            await producer.stop()
            await pool.close()

    def principal(request: Request, roles: set[str]) -> dict[str, Any] | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                jwt_secret,
                algorithms=["HS256"],
                audience=settings.JWT_AUDIENCE,
                issuer=settings.JWT_ISSUER,
                options={"require": ["sub", "exp", "iss", "aud"]},
            )
        except jwt.PyJWTError:
            return None
        return claims if claims.get("role") in roles else None

    async def yay(request: Request) -> Response:
        body = await request.body()
        signature = request.headers.get("x-yay-signature", "").strip().lower()
        expected = hmac.new(yay_secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature.removeprefix("sha256="), expected):
            return _error(401, "unauthorized")
        now = time.time()
        try:
            signed = float(request.headers.get("x-yay-timestamp", ""))
        except ValueError:
            return _error(400, "invalid_payload")
        event_id = request.headers.get("x-yay-event-id", "").strip()
        if not event_id or len(event_id) > YAY_EVENT_ID_MAX or not now - 300 <= signed <= now + 30:
            return _error(400, "invalid_payload")
        try:
            event = json.loads(body)
            call_id, event_type = str(event["callId"]), str(event["event"])
            event["occurredAt"] = _utc_text(datetime.fromisoformat(event["occurredAt"]))
        except (ValueError, KeyError, TypeError):
            return _error(400, "invalid_payload")
        correlation = request.headers.get("x-correlation-id") or str(uuid.uuid4())
        value, headers = _yay_message(event, event_id, call_id, event_type, signed, correlation)
        key = str(event.get("agentEmail") or call_id).lower()
        await state["producer"].send_and_wait(
            _topic("yay-call-events"), value, key=key.encode(), headers=headers
        )
        return JSONResponse(
            {"accepted": True, "eventId": event_id, "leads": None},
            202,
            headers={"x-correlation-id": correlation},
        )

    async def sales_nav(request: Request) -> Response:
        provided = request.headers.get("x-sales-nav-secret", "")
        if not hmac.compare_digest(provided.encode(), sales_nav_secret.encode()):
            return _error(401, "unauthorized")
        body = await request.body()
        try:
            project_id = str(uuid.UUID(json.loads(body)["projectId"]))
        except (ValueError, KeyError, TypeError):
            return _error(400, "invalid_payload")
        await state["producer"].send_and_wait(
            _topic("sales-nav-ingestion"), body, key=project_id.encode()
        )
        return JSONResponse({"accepted": True}, 202)

    async def current(request: Request) -> Response:
        claims = principal(request, {"caller", "admin"})
        if claims is None:
            return _error(401, "unauthorized")
        now = datetime.now(UTC)
        async with state["pool"].acquire() as connection:
            row = await allocate(
                connection,
                uuid.UUID(claims["sub"]),
                now=now,
                settings=settings,
                sweep=sweep.due(now),
                correlation_id=request.headers.get("x-correlation-id") or str(uuid.uuid4()),
            )
        if row["me_id"] is None or not row["is_active"]:
            return _error(403, "forbidden")
        if not row["may_work"]:
            return _error(409, "caller_paused")
        if row["id"] is None:
            return JSONResponse(
                {
                    "task": None,
                    "newlyAssigned": False,
                    "reason": "NO_AVAILABLE_TASKS",
                    "message": "No call task is available for you right now; ask again shortly.",
                    "allocationStatus": row["allocation_status"],
                }
            )
        return JSONResponse(
            {
                "task": _task_json(row),
                "newlyAssigned": row["newly_assigned"],
                "reason": None,
                "message": None,
                "allocationStatus": row["allocation_status"],
            }
        )

    async def requeue_task(request: Request) -> Response:
        claims = principal(request, {"ops", "admin"})
        if claims is None:
            return _error(401, "unauthorized")
        reason = str(json.loads(await request.body()).get("reason", ""))[:400]
        async with state["pool"].acquire() as connection:
            row = await requeue(
                connection,
                uuid.UUID(request.path_params["task_id"]),
                reason=reason,
                actor=f"{claims['role']}:{claims['sub']}",
                now=datetime.now(UTC),
                correlation_id=request.headers.get("x-correlation-id") or str(uuid.uuid4()),
            )
        if row is None:
            return _error(404, "not_found")
        return JSONResponse(_task_json(row))

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/webhooks/yay", yay, methods=["POST"]),
            Route("/webhooks/sales-nav", sales_nav, methods=["POST"]),
            Route("/api/v1/call-tasks/current", current, methods=["GET"]),
            Route(
                "/api/v1/call-tasks/operator/tasks/{task_id}/requeue",
                requeue_task,
                methods=["POST"],
            ),
            Route("/health", health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


# --- consumers ------------------------------------------------------------------------------

Batch = list[dict[str, Any]]
Handler = Callable[[asyncpg.Connection, Batch], Awaitable[None]]


async def consume(lane: str, handle: Handler) -> None:
    """Batches from ``lane``: one transaction each, offsets committed after it, until SIGTERM."""
    consumer = AIOKafkaConsumer(
        _topic(lane),
        bootstrap_servers=ENV["KAFKA_BROKER_URL"],
        group_id=_topic(f"baseline.{lane}"),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    connection = await asyncpg.connect(_dsn(), command_timeout=30)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await consumer.start()
    try:
        while not stopping.is_set():
            records = await consumer.getmany(timeout_ms=50, max_records=200)
            batch = [json.loads(r.value) for rs in records.values() for r in rs if r.value]
            if not batch:
                continue
            async with connection.transaction():
                await handle(connection, batch)
            await consumer.commit()
    finally:
        await consumer.stop()
        await connection.close()


UPSERT_SEARCH = """
INSERT INTO sales_nav_searches (project_id, source_url, normalized_url, leads_received,
                                last_webhook_at)
VALUES ($1, $2, lower($2), $3, now())
ON CONFLICT (project_id, normalized_url) DO UPDATE
SET leads_received = sales_nav_searches.leads_received + excluded.leads_received,
    last_webhook_at = now()
RETURNING id
"""
UPSERT_EXPERTS = """
INSERT INTO experts (full_name, linkedin_url_normalized, title, company_name, company_domain,
                     country_iso)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
ON CONFLICT (linkedin_url_normalized) WHERE linkedin_url_normalized IS NOT NULL
DO UPDATE SET updated_at = now()
RETURNING id, linkedin_url_normalized
"""
INSERT_LEADS = """
INSERT INTO leads (project_id, sales_nav_search_id, expert_id, status, raw_name, raw_company,
                   raw_title, linkedin_url, company_domain, country_iso, payload)
SELECT $1, $2, e, 'ENRICHING', n, c, t, u, d, i, p
FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
            $9::text[], $10::jsonb[]) AS x(e, n, c, t, u, d, i, p)
ON CONFLICT (expert_id, sales_nav_search_id) DO NOTHING
RETURNING id, expert_id
"""
INSERT_ATTEMPTS = """
INSERT INTO enrichment_attempts (id, expert_id, lead_id, run_id, provider, phase, status,
                                 confidence, latency_ms, http_status, response_payload)
SELECT a, e, l, gen_random_uuid(), 'leadmagic', 'PARALLEL', s, 0.95, ms, 200, r
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::int[], $6::jsonb[])
     AS x(a, e, l, s, ms, r)
"""
INSERT_CONTACTS = """
INSERT INTO expert_contacts (expert_id, type, channel, value, value_normalized, is_primary,
                             source, provider, confidence, enrichment_attempt_id)
SELECT e, 'EMAIL', 'email', v, lower(v), true, 'ENRICHMENT', 'leadmagic', 0.95, a
FROM unnest($1::uuid[], $2::text[], $3::uuid[]) AS x(e, v, a)
ON CONFLICT DO NOTHING
"""
SET_EMAILS = """
UPDATE experts SET primary_email = x.v, updated_at = now()
FROM unnest($1::uuid[], $2::text[]) AS x(e, v) WHERE experts.id = x.e
"""
ENRICHED = """
UPDATE leads SET status = 'ENRICHED', status_changed_at = now(), enriched_at = now()
WHERE id = ANY($1::uuid[])
"""


def _normalized_linkedin(url: str) -> str:
    return url.lower().split("?")[0].rstrip("/")


async def pipeline_consumer() -> None:
    """Sales Nav payload → experts + leads → one email lookup per lead → ENRICHED."""
    sandbox = httpx.AsyncClient(
        base_url=ENV["SANDBOX_URL"],
        timeout=10.0,
        limits=httpx.Limits(max_connections=16),
        headers={"X-API-Key": "bench"},
    )

    async def lookup(lead: dict[str, Any]) -> tuple[dict[str, Any], float]:
        started = time.perf_counter()
        response = await sandbox.post(
            "/leadmagic/v1/people/email-finder",
            json={"full_name": lead["name"], "domain": lead.get("companyDomain")},
        )
        response.raise_for_status()
        return response.json(), (time.perf_counter() - started) * 1000

    async def handle(connection: asyncpg.Connection, batch: Batch) -> None:
        for payload in batch:
            leads = payload["leads"]
            search = await connection.fetchval(
                UPSERT_SEARCH, uuid.UUID(payload["projectId"]), payload["searchUrl"], len(leads)
            )
            experts = await connection.fetch(
                UPSERT_EXPERTS,
                [lead["name"] for lead in leads],
                [_normalized_linkedin(lead["linkedinUrl"]) for lead in leads],
                [lead.get("title") for lead in leads],
                [lead["company"] for lead in leads],
                [lead.get("companyDomain") for lead in leads],
                [lead.get("countryIso") for lead in leads],
            )
            expert_of = {row["linkedin_url_normalized"]: row["id"] for row in experts}
            expert_ids = [expert_of[_normalized_linkedin(lead["linkedinUrl"])] for lead in leads]
            created = await connection.fetch(
                INSERT_LEADS,
                uuid.UUID(payload["projectId"]),
                search,
                expert_ids,
                [lead["name"] for lead in leads],
                [lead["company"] for lead in leads],
                [lead.get("title") for lead in leads],
                [lead.get("linkedinUrl") for lead in leads],
                [lead.get("companyDomain") for lead in leads],
                [lead.get("countryIso") for lead in leads],
                [json.dumps(lead) for lead in leads],
            )
            lead_of = {row["expert_id"]: row["id"] for row in created}
            todo = [(lead, e) for lead, e in zip(leads, expert_ids, strict=True) if e in lead_of]
            answers = await asyncio.gather(*(lookup(lead) for lead, _ in todo))
            attempt_ids = [uuid.uuid4() for _ in todo]
            found = [
                (e, answer["email"]) for (_, e), (answer, _) in zip(todo, answers, strict=True)
            ]
            await connection.execute(
                INSERT_ATTEMPTS,
                attempt_ids,
                [e for _, e in todo],
                [lead_of[e] for _, e in todo],
                ["SUCCESS" if answer["email"] else "NO_MATCH" for answer, _ in answers],
                [round(ms) for _, ms in answers],
                [json.dumps(answer) for answer, _ in answers],
            )
            with_email = [(e, v, a) for (e, v), a in zip(found, attempt_ids, strict=True) if v]
            await connection.execute(
                INSERT_CONTACTS,
                [e for e, _, _ in with_email],
                [v for _, v, _ in with_email],
                [a for _, _, a in with_email],
            )
            await connection.execute(
                SET_EMAILS, [e for e, _, _ in with_email], [v for _, v, _ in with_email]
            )
            await connection.execute(ENRICHED, [lead_of[e] for _, e in todo])

    try:
        await consume("sales-nav-ingestion", handle)
    finally:
        await sandbox.aclose()


# Every row below is one the platform's calls service writes for the same events (checked by
# tests/bench/test_equal_work_calls.py): its three consumers' dedup rows, the Yay delivery
# claims, the raw events, the folded call log, the caller's dial, shift and presence, the
# validation, the metric, the status moves with their history and audit rows, and the three
# messages it sends (outbox rows, produced and marked published). What the platform spreads
# over three lanes and two relay hops happens here in one transaction per batch. The bench's
# calls dial no call task: the task's DIALING and settling moves are not part of this baseline.
YAY_CONSUMER, VALIDATION_CONSUMER, PERFORMANCE_CONSUMER = (
    "calls.yay-call-events",
    "calls.call-validation",
    "calls.performance",
)
MARK_PROCESSED = """
INSERT INTO processed_events (consumer, event_id) SELECT $1, unnest($2::text[])
ON CONFLICT DO NOTHING RETURNING event_id
"""
LOCK_CALLERS = """
SELECT id, lower(email) AS email, allocation_status, status_changed_at, shift_started_at,
       last_dial_at, last_task_requested_at, last_seen_at
FROM callers WHERE lower(email) = ANY($1::text[]) ORDER BY id FOR UPDATE
"""
CLAIM_EVENTS = """
INSERT INTO processed_webhook_events (source, event_id, event_type, payload_sha256,
                                      received_at, correlation_id)
SELECT 'yay', e, left(t, 64), h, r, c
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[]) AS x(e, t, h, r, c)
ON CONFLICT (source, event_id) DO NOTHING RETURNING event_id
"""
RAW_EVENTS = """
INSERT INTO call_logs_raw (event_id, event_type, yay_call_id, payload, signature_valid,
                           occurred_at, received_at, processing_status, processed_at,
                           correlation_id)
SELECT e, left(t, 64), y, p, true, o, r, s, pa, c
FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::timestamptz[],
            $6::timestamptz[], $7::text[], $8::timestamptz[], $9::text[])
     AS x(e, t, y, p, o, r, s, pa, c)
ON CONFLICT (event_id) DO NOTHING
"""
CALL_EVENTS = """
SELECT event_id, event_type, yay_call_id, occurred_at, payload FROM call_logs_raw
WHERE yay_call_id = ANY($1::text[]) AND event_type = ANY($2::text[])
"""
FOLD_CALLS = """
INSERT INTO call_logs AS c (yay_call_id, caller_id, status, started_at, ringing_at,
    answered_at, ended_at, failed_at, failure_reason, duration_seconds, talk_seconds,
    recording_url, direction, from_number, to_number, agent_email, last_event_at, event_count)
SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::timestamptz[],
    $5::timestamptz[], $6::timestamptz[], $7::timestamptz[], $8::timestamptz[], $9::text[],
    $10::int[], $11::int[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[],
    $17::timestamptz[], $18::int[])
ON CONFLICT (yay_call_id) DO UPDATE SET
    caller_id = coalesce(c.caller_id, excluded.caller_id), status = excluded.status,
    started_at = excluded.started_at, ringing_at = excluded.ringing_at,
    answered_at = excluded.answered_at, ended_at = excluded.ended_at,
    failed_at = excluded.failed_at, failure_reason = excluded.failure_reason,
    duration_seconds = excluded.duration_seconds, talk_seconds = excluded.talk_seconds,
    recording_url = excluded.recording_url, direction = excluded.direction,
    from_number = excluded.from_number, to_number = excluded.to_number,
    agent_email = excluded.agent_email, last_event_at = excluded.last_event_at,
    event_count = excluded.event_count, updated_at = now()
RETURNING id, yay_call_id, caller_id, answered_at, talk_seconds, started_at, status,
          failure_reason
"""
LINK_RAW = """
UPDATE call_logs_raw r SET call_log_id = c.id, processing_status = 'PROCESSED',
       processed_at = $3
FROM call_logs c
WHERE c.yay_call_id = ANY($1::text[]) AND r.yay_call_id = c.yay_call_id
  AND r.event_type = ANY($2::text[])
  AND (r.call_log_id IS NULL OR r.processing_status <> 'PROCESSED')
"""
CALLER_ACTIVITY = """
UPDATE callers SET shift_started_at = x.s, last_dial_at = x.d, last_seen_at = x.l,
       updated_at = now()
FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[], $4::timestamptz[])
     AS x(i, s, d, l)
WHERE callers.id = x.i
"""
VALIDATE = """
UPDATE call_logs SET is_short_call = x.s, timezone_mismatch = x.m, fraud_flags = x.f,
       validated_at = $5, updated_at = now()
FROM unnest($1::uuid[], $2::bool[], $3::bool[], $4::jsonb[]) AS x(i, s, m, f)
WHERE call_logs.id = x.i
"""
WINDOW = """
SELECT count(*) AS dials,
       count(*) FILTER (WHERE answered_at IS NOT NULL OR talk_seconds > 0) AS connections,
       count(*) FILTER (WHERE is_short_call) AS short,
       count(*) FILTER (WHERE timezone_mismatch) AS mismatches,
       (SELECT coalesce(array_agg(started_at ORDER BY started_at DESC), '{}')
        FROM (SELECT started_at FROM call_logs WHERE caller_id = $1 AND started_at >= $4
              AND started_at <= $3 ORDER BY started_at DESC LIMIT $5) d) AS shift_dials
FROM call_logs WHERE caller_id = $1 AND started_at > $2 AND started_at <= $3
"""
METRIC = """
INSERT INTO caller_performance_metrics (caller_id, computed_at, rolling_60_minute_dials,
    rolling_60_minute_connections, short_calls_last_hour, timezone_mismatches_last_hour,
    allocation_status, previous_allocation_status, performance_score, details, correlation_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id
"""
STATUS_MOVES = """
WITH moves AS (
    SELECT * FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS m(f, t, n)
), audit AS (
    INSERT INTO system_events (type, entity_type, entity_id, actor, correlation_id, data)
    SELECT 'caller.allocation_status_changed', 'caller', $1, 'performance', $6,
           jsonb_build_object('from', f, 'to', t, 'reason', $4::text)
    FROM moves ORDER BY n
), history AS (
    INSERT INTO caller_status_history (caller_id, from_status, to_status, reason, actor,
                                       metric_id, correlation_id)
    SELECT $1, f, t, $4, 'performance', $5, $6 FROM moves ORDER BY n
)
UPDATE callers SET allocation_status = $7, status_reason = $4, status_changed_at = $8,
       updated_at = $8
WHERE id = $1
"""
OUTBOX = """
INSERT INTO outbox (topic, key, envelope, headers)
SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::jsonb[])
RETURNING id
"""
PUBLISHED = "UPDATE outbox SET published_at = now() WHERE id = ANY($1::uuid[])"
FINISHING = (ENDED, FAILED)


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


class _Outbox:
    """The messages of one batch: outbox rows, produced before the commit, marked published."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, dict[str, Any]]] = []

    def add(self, lane: str, type_: str, key: uuid.UUID, correlation: str, payload: Any) -> str:
        envelope_id = str(uuid.uuid4())
        envelope = {
            "id": envelope_id,
            "type": type_,
            "correlation_id": correlation,
            "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "attempt": 1,
            "payload": payload,
        }
        self.rows.append((lane, str(key), envelope))
        return envelope_id

    async def flush(self, connection: asyncpg.Connection, producer: AIOKafkaProducer) -> None:
        if not self.rows:
            return
        headers = [
            {
                "message-id": envelope["id"],
                "message-type": envelope["type"],
                "correlation-id": envelope["correlation_id"],
            }
            for _, _, envelope in self.rows
        ]
        values = [json.dumps(envelope, separators=(",", ":")) for _, _, envelope in self.rows]
        ids = await connection.fetch(
            OUTBOX,
            [lane for lane, _, _ in self.rows],
            [key for _, key, _ in self.rows],
            values,
            [json.dumps(h) for h in headers],
        )
        sent = [
            await producer.send(
                _topic(lane),
                value.encode(),
                key=key.encode(),
                headers=[(name, text.encode()) for name, text in header.items()],
            )
            for (lane, key, _), value, header in zip(self.rows, values, headers, strict=True)
        ]
        await asyncio.gather(*sent)
        await connection.execute(PUBLISHED, [row["id"] for row in ids])


async def calls_consumer() -> None:
    """Yay events → dedup, claims, raw rows → call logs folded → caller's dial and shift →
    validation → metric and status moves → the messages the platform sends (module comment)."""
    settings = load_settings(CallSettings)
    thresholds = StatusThresholds.from_settings(settings)
    shift_gap = timedelta(seconds=settings.CALLER_SHIFT_GAP_SECONDS)
    window = timedelta(minutes=settings.PERFORMANCE_WINDOW_MINUTES)
    producer = AIOKafkaProducer(
        bootstrap_servers=ENV["KAFKA_BROKER_URL"],
        acks="all",
        enable_idempotence=ENV.get("KAFKA_IDEMPOTENT_PRODUCER") == "1",
        linger_ms=0,
    )

    async def handle(connection: asyncpg.Connection, batch: Batch) -> None:
        now = datetime.now(UTC)
        fresh = {
            row["event_id"]
            for row in await connection.fetch(
                MARK_PROCESSED, YAY_CONSUMER, [envelope["id"] for envelope in batch]
            )
        }
        items = []
        for envelope in batch:
            if envelope["id"] in fresh:
                fresh.discard(envelope["id"])  # one envelope twice in one batch: once
                items.append((envelope["payload"], envelope["correlation_id"]))
        emails = sorted({p["agentEmail"].strip().lower() for p, _ in items if p.get("agentEmail")})
        callers = {row["email"]: dict(row) for row in await connection.fetch(LOCK_CALLERS, emails)}
        claimed = {
            row["event_id"]
            for row in await connection.fetch(
                CLAIM_EVENTS,
                [p["eventId"] for p, _ in items],
                [p["eventType"] for p, _ in items],
                [body_sha256(p["body"]) for p, _ in items],
                [_time(p["receivedAt"]) for p, _ in items],
                [c for _, c in items],
            )
        }
        events = []
        for payload, correlation in items:
            if payload["eventId"] in claimed:
                claimed.discard(payload["eventId"])  # a delivery twice in one batch: once
                events.append((payload, correlation))
        occurred = {
            p["eventId"]: _time(p["body"].get("occurredAt")) or _time(p["signatureTimestamp"])
            for p, _ in events
        }
        known = [(p, c) for p, c in events if is_call_event(p["eventType"])]
        await connection.execute(
            RAW_EVENTS,
            [p["eventId"] for p, _ in events],
            [p["eventType"] for p, _ in events],
            [p["callId"] for p, _ in events],
            [json.dumps(p["body"]) for p, _ in events],
            [occurred[p["eventId"]] for p, _ in events],
            [_time(p["receivedAt"]) for p, _ in events],
            ["RECEIVED" if is_call_event(p["eventType"]) else "IGNORED" for p, _ in events],
            [None if is_call_event(p["eventType"]) else now for p, _ in events],
            [c for _, c in events],
        )
        if not known:
            return
        calls = list(dict.fromkeys(p["callId"] for p, _ in known))
        stored: dict[str, list[YayEvent]] = {call: [] for call in calls}
        for row in await connection.fetch(CALL_EVENTS, calls, list(YAY_EVENT_TYPES)):
            stored[row["yay_call_id"]].append(
                YayEvent(
                    row["event_id"],
                    row["event_type"],
                    row["occurred_at"],
                    json.loads(row["payload"]),
                )
            )
        folds = {call: fold_events(stored[call]) for call in calls}
        first_email = {}
        for payload, _ in known:
            first_email.setdefault(payload["callId"], payload.get("agentEmail"))

        def caller_of(call: str) -> Any:
            email = folds[call].agent_email or first_email[call]
            caller = callers.get(email.strip().lower()) if email else None
            return caller["id"] if caller else None

        logs = {
            row["yay_call_id"]: row
            for row in await connection.fetch(
                FOLD_CALLS,
                calls,
                [caller_of(call) for call in calls],
                *(
                    [getattr(folds[call], name) for call in calls]
                    for name in (
                        "status",
                        "started_at",
                        "ringing_at",
                        "answered_at",
                        "ended_at",
                        "failed_at",
                        "failure_reason",
                        "duration_seconds",
                        "talk_seconds",
                        "recording_url",
                        "direction",
                        "from_number",
                        "to_number",
                        "agent_email",
                        "last_event_at",
                        "event_count",
                    )
                ),
            )
        }
        await connection.execute(LINK_RAW, calls, list(YAY_EVENT_TYPES), now)

        by_id = {caller["id"]: caller for caller in callers.values()}
        touched: dict[uuid.UUID, dict[str, Any]] = {}
        validations: list[tuple[str, str]] = []  # (call, correlation), one per request
        finished = {
            call: any(e.event_type in FINISHING for e in stored[call] if e.event_id not in occurred)
            for call in calls
        }
        for payload, correlation in known:
            call = payload["callId"]
            caller = by_id.get(logs[call]["caller_id"])
            if caller is None:
                continue
            touched[caller["id"]] = caller
            at = min(occurred[payload["eventId"]] or now, now)
            seen = caller["last_seen_at"]
            if seen is not None and seen > presence_cutoff(at, settings) and at > seen:
                caller["last_seen_at"] = at
            dialled = folds[call].started_at
            if dialled is not None:
                shift = shift_start_for_dial(
                    dialled_at=dialled,
                    shift_started_at=caller["shift_started_at"],
                    last_dial_at=caller["last_dial_at"],
                    last_task_requested_at=caller["last_task_requested_at"],
                    shift_gap=shift_gap,
                )
                if shift is not None:
                    caller["shift_started_at"] = shift
                if caller["last_dial_at"] is None or dialled > caller["last_dial_at"]:
                    caller["last_dial_at"] = dialled
            finished[call] = finished[call] or payload["eventType"] in FINISHING
            if finished[call]:
                validations.append((call, correlation))
        if touched:
            await connection.execute(
                CALLER_ACTIVITY,
                list(touched),
                [c["shift_started_at"] for c in touched.values()],
                [c["last_dial_at"] for c in touched.values()],
                [c["last_seen_at"] for c in touched.values()],
            )
        outbox = _Outbox()
        requests = []
        for call, correlation in validations:
            log = logs[call]
            request = outbox.add(
                "call-validation",
                "call-validation.requested.v1",
                log["caller_id"],
                correlation,
                {"callLogId": str(log["id"]), "callerId": str(log["caller_id"]), "yayCallId": call},
            )
            requests.append((request, call, correlation))
        await validate(connection, outbox, requests, logs, now)
        await outbox.flush(connection, producer)

    async def validate(
        connection: asyncpg.Connection,
        outbox: _Outbox,
        requests: list[tuple[str, str, str]],
        logs: dict[str, asyncpg.Record],
        now: datetime,
    ) -> None:
        """The call-validation and performance consumers' work for these requests."""
        if not requests:
            return
        await connection.execute(MARK_PROCESSED, VALIDATION_CONSUMER, [r for r, _, _ in requests])
        verdicts = {}
        for _, call, _ in requests:
            log = logs[call]
            verdicts[call] = validate_call(
                dialled_at=log["started_at"],
                answered=log["answered_at"] is not None or (log["talk_seconds"] or 0) > 0,
                talk_seconds=log["talk_seconds"],
                zone=None,  # no call task, so no expert: no timezone to check
                short_call_seconds=settings.SHORT_CALL_SECONDS,
                window_start_hour=settings.CALLING_WINDOW_START_HOUR,
                window_end_hour=settings.CALLING_WINDOW_END_HOUR,
            )
        await connection.execute(
            VALIDATE,
            [logs[call]["id"] for call in verdicts],
            [v.is_short_call for v in verdicts.values()],
            [v.timezone_mismatch for v in verdicts.values()],
            [json.dumps([dict(flag) for flag in v.flags]) for v in verdicts.values()],
            now,
        )
        recalculations = [
            (
                outbox.add(
                    "performance",
                    "performance.recalculate.v1",
                    logs[call]["caller_id"],
                    correlation,
                    {"callerId": str(logs[call]["caller_id"])},
                ),
                logs[call]["caller_id"],
                correlation,
            )
            for _, call, correlation in requests
        ]
        await connection.execute(
            MARK_PROCESSED, PERFORMANCE_CONSUMER, [r for r, _, _ in recalculations]
        )
        for _, caller_id, correlation in recalculations:
            await recalculate(connection, outbox, caller_id, correlation)

    async def recalculate(
        connection: asyncpg.Connection, outbox: _Outbox, caller_id: uuid.UUID, correlation: str
    ) -> None:
        now = datetime.now(UTC)
        caller = await connection.fetchrow(
            "SELECT allocation_status, status_changed_at, shift_started_at, last_dial_at"
            " FROM callers WHERE id = $1",
            caller_id,
        )
        shift = caller["shift_started_at"]
        counts = await connection.fetchrow(
            WINDOW, caller_id, now - window, now, shift, thresholds.min_dials_per_window
        )
        decision = evaluate_allocation_status(
            CallerActivity(
                status=caller["allocation_status"],
                status_changed_at=caller["status_changed_at"],
                shift_started_at=shift,
                last_dial_at=caller["last_dial_at"],
                shift_dial_times=list(counts["shift_dials"]) if shift is not None else [],
                short_calls=counts["short"],
                timezone_mismatches=counts["mismatches"],
            ),
            thresholds,
            now=now,
        )
        details = {
            "reason": decision.reason,
            "target": decision.target,
            "path": list(decision.path),
            "windowMinutes": settings.PERFORMANCE_WINDOW_MINUTES,
            "shiftStartedAt": _iso(shift),
            "lastDialAt": _iso(caller["last_dial_at"]),
        }
        metric = await connection.fetchval(
            METRIC,
            caller_id,
            now,
            counts["dials"],
            counts["connections"],
            counts["short"],
            counts["mismatches"],
            decision.final,
            caller["allocation_status"],
            performance_score(
                dials=counts["dials"],
                connections=counts["connections"],
                short_calls=counts["short"],
                timezone_mismatches=counts["mismatches"],
                target_dials=settings.PERFORMANCE_TARGET_DIALS,
            ),
            json.dumps(details),
            correlation,
        )
        if not decision.changed:
            return
        steps = [decision.current, *decision.path]
        await connection.execute(
            STATUS_MOVES,
            caller_id,
            steps[:-1],
            steps[1:],
            decision.reason,
            metric,
            correlation,
            decision.final,
            now,
        )
        outbox.add(
            "call-allocation",
            "call-allocation.assign-current.v1",
            caller_id,
            correlation,
            {"callerId": str(caller_id)},
        )

    await producer.start()
    try:
        await consume("yay-call-events", handle)
    finally:
        await producer.stop()


def main() -> int:
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role == "http":
        uvicorn.run(
            create_http_app(),
            host="127.0.0.1",
            port=int(ENV["PORT"]),
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
    elif role in ("pipeline", "calls"):
        consumer = pipeline_consumer if role == "pipeline" else calls_consumer
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            runner.run(consumer())
    else:
        print("usage: python -m bench.baseline http|pipeline|calls", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
