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
``python -m bench.baseline calls``     aiokafka consumer of ``yay-call-events``: dedup row, raw
                                       event, the call log folded by upsert and, once the call
                                       ended, a CallerPerformanceMetric row for its caller.

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
from sourcing.common.config import load_settings
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
        signature = request.headers.get("x-yay-signature", "").removeprefix("sha256=")
        expected = hmac.new(yay_secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature, expected):
            return _error(401, "unauthorized")
        try:
            age = time.time() - int(request.headers.get("x-yay-timestamp", ""))
        except ValueError:
            return _error(400, "invalid_payload")
        event_id = request.headers.get("x-yay-event-id", "").strip()
        if not event_id or not -30 <= age <= 300:
            return _error(400, "invalid_payload")
        try:
            event = json.loads(body)
            call_id, event_type = str(event["callId"]), str(event["event"])
        except (ValueError, KeyError, TypeError):
            return _error(400, "invalid_payload")
        envelope = {
            "id": str(uuid.uuid4()),
            "type": "yay.call-event.received.v1",
            "correlation_id": request.headers.get("x-correlation-id") or str(uuid.uuid4()),
            "occurred_at": datetime.now(UTC).isoformat(),
            "payload": {"event_id": event_id, "event_type": event_type, "body": event},
        }
        key = str(event.get("agentEmail") or call_id).lower()
        await state["producer"].send_and_wait(
            _topic("yay-call-events"), json.dumps(envelope).encode(), key=key.encode()
        )
        return JSONResponse({"accepted": True, "eventId": event_id}, 202)

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


CLAIM_EVENT = """
INSERT INTO processed_webhook_events (source, event_id, event_type, correlation_id)
VALUES ('yay', $1, $2, $3) ON CONFLICT (source, event_id) DO NOTHING RETURNING id
"""
RAW_EVENT = """
INSERT INTO call_logs_raw (event_id, event_type, yay_call_id, payload, signature_valid,
                           occurred_at, processing_status, processed_at, correlation_id)
VALUES ($1, $2, $3, $4, true, $5, 'PROCESSED', now(), $6)
"""
FOLD = """
INSERT INTO call_logs AS c (yay_call_id, caller_id, agent_email, direction, from_number,
                            to_number, status, started_at, answered_at, ended_at,
                            duration_seconds, talk_seconds, last_event_at, event_count)
VALUES ($1, (SELECT id FROM callers WHERE lower(email) = lower($2)), $2, 'OUTBOUND', $3, $4,
        $5, $6, $7, $8, $9, $10, $11, 1)
ON CONFLICT (yay_call_id) DO UPDATE SET
    status = CASE WHEN excluded.last_event_at >= c.last_event_at THEN excluded.status
                  ELSE c.status END,
    started_at = coalesce(c.started_at, excluded.started_at),
    answered_at = coalesce(c.answered_at, excluded.answered_at),
    ended_at = coalesce(c.ended_at, excluded.ended_at),
    duration_seconds = coalesce(excluded.duration_seconds, c.duration_seconds),
    talk_seconds = coalesce(excluded.talk_seconds, c.talk_seconds),
    last_event_at = greatest(c.last_event_at, excluded.last_event_at),
    event_count = c.event_count + 1,
    updated_at = now()
RETURNING caller_id
"""
METRIC = """
INSERT INTO caller_performance_metrics (caller_id, computed_at, rolling_60_minute_dials,
    rolling_60_minute_connections, short_calls_last_hour, timezone_mismatches_last_hour,
    allocation_status, previous_allocation_status, performance_score, correlation_id)
SELECT $1, clock_timestamp(), w.dials, w.connections, w.short, w.mismatches,
       k.allocation_status, k.allocation_status, least(1.0, w.connections / 20.0), $2
FROM callers k,
     (SELECT count(*) AS dials, count(answered_at) AS connections,
             count(*) FILTER (WHERE is_short_call) AS short,
             count(*) FILTER (WHERE timezone_mismatch) AS mismatches
      FROM call_logs WHERE caller_id = $1 AND started_at >= now() - interval '60 minutes') w
WHERE k.id = $1
"""
STATUS = {"call.started": "STARTED", "call.answered": "ANSWERED", "call.ended": "ENDED"}


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


async def calls_consumer() -> None:
    """Yay events → dedup + raw row → call log upsert → metric row once the call ended."""

    async def handle(connection: asyncpg.Connection, batch: Batch) -> None:
        for envelope in batch:
            payload, correlation = envelope["payload"], envelope["correlation_id"]
            event_type, body = payload["event_type"], payload["body"]
            if not await connection.fetchval(
                CLAIM_EVENT, payload["event_id"], event_type, correlation
            ):
                continue
            at = _time(body.get("occurredAt")) or datetime.now(UTC)
            await connection.execute(
                RAW_EVENT,
                payload["event_id"],
                event_type,
                body["callId"],
                json.dumps(body),
                at,
                correlation,
            )
            if event_type not in STATUS:
                continue
            ended = event_type == "call.ended"
            folded = await connection.fetchrow(
                FOLD,
                body["callId"],
                body.get("agentEmail"),
                body.get("from"),
                body.get("to"),
                STATUS[event_type],
                at if event_type == "call.started" else None,
                at if event_type == "call.answered" else None,
                at if ended else None,
                body.get("durationSeconds") if ended else None,
                body.get("talkSeconds") if ended else None,
                at,
            )
            if ended and folded is not None and folded["caller_id"] is not None:
                await connection.execute(METRIC, folded["caller_id"], correlation)

    await consume("yay-call-events", handle)


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
