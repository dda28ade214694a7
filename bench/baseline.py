"""The bare baselines: the same essential work as the platform with no framework around it.

``python -m bench.baseline http``      Starlette under uvicorn (same server settings as the
                                       gateway): the Yay and Sales Nav webhooks (verify, produce
                                       with acks=all through aiokafka, 202), and
                                       ``GET /api/v1/call-tasks/current`` + the operator requeue
                                       (JWT check, asyncpg, the platform's allocation work by
                                       hand: one statement each, same rows written).
``python -m bench.baseline pipeline``  aiokafka consumer of ``sales-nav-ingestion``: what the
                                       ingestion and enrichment agents write (experts, leads,
                                       contacts, the waterfall's attempts against the sandbox,
                                       leads ``ENRICHED`` and audited, ranking snapshots, the
                                       follow-ups' outbox rows) in one transaction per batch.
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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
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
from sourcing.common.events import Envelope, MessagePayload, route
from sourcing.common.http import ExternalHttp
from sourcing.common.messages.allocation import CallTaskRequested, CallTaskTrigger
from sourcing.common.messages.calls import YAY_EVENT_TYPES
from sourcing.common.messages.outreach import AutoOutreachRequested, SheetSyncRequested
from sourcing.common.models.enums import (
    Channel,
    ContactSource,
    ContactType,
    EnrichmentAttemptStatus,
    SuppressedContactKind,
)
from sourcing.common.statemachines import LeadStatus, ProjectStatus
from sourcing.common.webhook_events import body_sha256
from sourcing.enrichment.providers import EmailKind, PersonQuery, build_providers
from sourcing.enrichment.ranking import ContactSignal, RankingInput, score_expert
from sourcing.enrichment.service import EnrichmentDeps
from sourcing.enrichment.settings import EnrichmentSettings
from sourcing.enrichment.waterfall import ProviderStats, WaterfallOutcome, run_waterfall
from sourcing.ingestion.handlers import SUPPRESSED_REASON as INGESTION_SUPPRESSED
from sourcing.people.callers import presence_cutoff, shift_start_for_dial
from sourcing.people.contacts import normalize_country
from sourcing.people.identity import normalize_linkedin_url
from sourcing.people.phones import normalize_phone
from sourcing.people.suppression import PERSON_REASONS, normalize_suppressed_value, value_hash
from sourcing.people.timezones import timezone_for_country

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


# The pipeline: what the platform writes from a Sales Nav delivery to ENRICHED and ranked (the
# ingestion and enrichment agents' rows, audit and outbox rows to the lanes that leave the path),
# by hand: one consumer, one transaction per batch of deliveries, multi-row statements.

PIPELINE_CONSUMER = "baseline.pipeline"
# The follow-up lanes a settled lead feeds (their outbox rows, then their produces).
PIPELINE_OUTBOX = """
INSERT INTO outbox (id, topic, key, envelope, headers)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[])
"""
PIPELINE_PUBLISHED = "UPDATE outbox SET published_at = now() WHERE id = ANY($1::uuid[])"
CLAIM_DELIVERY = """
INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2)
ON CONFLICT DO NOTHING RETURNING event_id
"""
PROJECT_FOR_SHARE = """
SELECT status, priority, geography_iso_codes, auto_outreach_channel FROM projects
WHERE id = $1 FOR SHARE
"""
UPSERT_SEARCH = """
INSERT INTO sales_nav_searches (project_id, source_url, normalized_url, leads_received,
                                last_webhook_at)
VALUES ($1, $2, $2, $3, now())
ON CONFLICT (project_id, normalized_url) DO UPDATE
SET leads_received = sales_nav_searches.leads_received + excluded.leads_received,
    last_webhook_at = greatest(coalesce(sales_nav_searches.last_webhook_at, now()), now()),
    updated_at = now()
RETURNING id
"""
UPSERT_EXPERTS = """
INSERT INTO experts AS x (linkedin_url_normalized, full_name, first_name, last_name, title,
                          company_name, company_domain, country_iso, timezone)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::text[], $9::text[])
ON CONFLICT (linkedin_url_normalized) WHERE linkedin_url_normalized IS NOT NULL
DO UPDATE SET full_name = coalesce(x.full_name, excluded.full_name),
              first_name = coalesce(x.first_name, excluded.first_name),
              last_name = coalesce(x.last_name, excluded.last_name),
              title = coalesce(x.title, excluded.title),
              company_name = coalesce(x.company_name, excluded.company_name),
              company_domain = coalesce(x.company_domain, excluded.company_domain),
              country_iso = coalesce(x.country_iso, excluded.country_iso),
              timezone = coalesce(x.timezone, excluded.timezone)
WHERE x.erased_at IS NULL
RETURNING id, linkedin_url_normalized, full_name, first_name, last_name, title, seniority,
          company_name, company_domain, country_iso, primary_email,
          suppressed_at IS NOT NULL OR EXISTS (
              SELECT FROM expert_suppressions s WHERE s.expert_id = x.id
                  OR s.linkedin_url_normalized = x.linkedin_url_normalized) AS suppressed
"""
ERASED_OR_SUPPRESSED = """
SELECT value_hash FROM contact_suppressions WHERE kind = $1 AND value_hash = ANY($2::text[])
"""
INSERT_LEADS = """
INSERT INTO leads (project_id, sales_nav_search_id, correlation_id, status_changed_at, expert_id,
                   status, status_reason, raw_name, raw_company, raw_title, linkedin_url, email,
                   phone, company_domain, country_iso, payload)
SELECT $1, $2, $3, now(), * FROM unnest($4::uuid[], $5::text[], $6::text[], $7::text[],
    $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
    $15::jsonb[])
ON CONFLICT (expert_id, sales_nav_search_id) DO NOTHING
RETURNING id, expert_id, status
"""
INSERT_INITIAL_CONTACTS = """
INSERT INTO expert_contacts (expert_id, type, channel, value, value_normalized, source)
SELECT e, $1, $2, v, n, $3 FROM unnest($4::uuid[], $5::text[], $6::text[]) AS x(e, v, n)
ON CONFLICT (expert_id, type, value_normalized) DO NOTHING
"""
KNOWN_CONFIDENCE = """
SELECT expert_id, max(confidence) AS confidence FROM expert_contacts
WHERE expert_id = ANY($1::uuid[]) AND source = $2 GROUP BY expert_id
"""
PROVIDER_STATS = """
SELECT provider, count(*) AS attempts, count(*) FILTER (WHERE status = $2) AS successes
FROM enrichment_attempts WHERE created_at >= $1 AND status <> $3 GROUP BY provider
"""
INSERT_PIPELINE_ATTEMPTS = """
INSERT INTO enrichment_attempts (id, expert_id, lead_id, run_id, correlation_id, provider, phase,
                                 status, confidence, latency_ms, http_status, error,
                                 response_payload, callback_request_id, callback_jobs, credits)
SELECT a, e, l, r, $1, p, ph, s, c, ms, h, err, rp, cb, cj, cr
FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::text[], $7::text[], $8::text[],
            $9::float8[], $10::int[], $11::int[], $12::text[], $13::jsonb[], $14::uuid[],
            $15::jsonb[], $16::float8[]) AS x(a, e, l, r, p, ph, s, c, ms, h, err, rp, cb, cj, cr)
"""
SUPPRESSED_ADDRESSES = """
SELECT kind, value_hash FROM contact_suppressions WHERE value_hash = ANY($1::text[])
"""
UPSERT_FOUND_CONTACTS = """
INSERT INTO expert_contacts AS t (id, expert_id, type, channel, value, value_normalized,
                                  is_primary, is_professional, is_dialable, source, provider,
                                  confidence, enrichment_attempt_id)
SELECT i, e, ty, ch, v, n, false, pro, dia, $1, p, c, a
FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::bool[], $9::bool[], $10::text[], $11::float8[], $12::uuid[])
     AS x(i, e, ty, ch, v, n, pro, dia, p, c, a)
ON CONFLICT (expert_id, type, value_normalized) DO UPDATE SET
    confidence = CASE WHEN excluded.confidence > coalesce(t.confidence, -1.0)
                      THEN excluded.confidence ELSE t.confidence END,
    provider = CASE WHEN excluded.confidence > coalesce(t.confidence, -1.0)
                    THEN excluded.provider ELSE t.provider END,
    enrichment_attempt_id = CASE WHEN excluded.confidence > coalesce(t.confidence, -1.0)
                                 THEN excluded.enrichment_attempt_id
                                 ELSE t.enrichment_attempt_id END,
    is_professional = coalesce(excluded.is_professional, t.is_professional),
    updated_at = now()
"""
SETTLE_LEADS = """
UPDATE leads SET status = x.s, status_reason = x.r, status_changed_at = now(),
                 enriched_at = CASE WHEN x.s = $1 THEN now() ELSE enriched_at END
FROM unnest($2::uuid[], $3::text[], $4::text[]) AS x(l, s, r) WHERE leads.id = x.l
"""
AUDIT_LEADS = """
INSERT INTO system_events (type, entity_type, entity_id, actor, correlation_id, data)
SELECT $1, $2, l, $3, $4, d FROM unnest($5::uuid[], $6::jsonb[]) AS x(l, d)
"""
CONTACT_SIGNALS = """
SELECT expert_id, type, confidence, is_professional FROM expert_contacts
WHERE expert_id = ANY($1::uuid[]) AND type = ANY($2::text[])
"""
JOB_TITLES = "SELECT normalized_title, relevance_score FROM job_titles WHERE project_id = $1"
INSERT_SNAPSHOTS = """
INSERT INTO ranking_snapshots (project_id, correlation_id, expert_id, lead_id, score, components,
                               formula_version)
SELECT $1, $2, * FROM unnest($3::uuid[], $4::uuid[], $5::float8[], $6::jsonb[], $7::text[])
"""
RANK_LEADS = """
UPDATE leads SET ranking_score = x.s FROM unnest($2::uuid[], $3::float8[]) AS x(e, s)
WHERE leads.project_id = $1 AND leads.expert_id = x.e
"""


@dataclass(slots=True)
class _Lead:
    """One new lead of a delivery, through ingestion, the waterfall and ranking."""

    id: uuid.UUID
    expert_id: uuid.UUID
    person: PersonQuery
    # What ranking reads of the expert: title (else the lead's), seniority, country.
    title: str | None
    seniority: str | None
    country_iso: str | None
    known_confidence: float | None = None
    outcome: WaterfallOutcome | None = None
    status: str = ""
    reason: str | None = None
    auto_outreach: bool = False


def _split_full_name(full_name: str) -> tuple[str | None, str | None]:
    parts = full_name.split()
    if len(parts) < 2:
        return (parts[0] if parts else None), None
    return parts[0], " ".join(parts[1:])


def _clean(value: Any, limit: int = 500) -> str | None:
    text = " ".join(str(value).split()) if value is not None else ""
    return text[:limit] or None


class _Waterfalls:
    """The enrichment context's waterfall (its adapters, order and settings) without its
    agent: provider statistics cached like the platform's (one query per 30 s)."""

    def __init__(self) -> None:
        self.settings = load_settings(EnrichmentSettings)
        self.http = ExternalHttp(timeout_seconds=self.settings.PROVIDER_TIMEOUT_SECONDS)
        self.deps = EnrichmentDeps(
            settings=self.settings, providers=build_providers(self.settings, self.http)
        )
        self._stats: tuple[float, dict[str, ProviderStats]] | None = None

    async def stats(self, connection: asyncpg.Connection) -> dict[str, ProviderStats]:
        now = time.monotonic()
        if self._stats is not None and now - self._stats[0] < self.deps.stats_ttl_seconds:
            return self._stats[1]
        since = datetime.now(UTC) - timedelta(days=self.settings.ENRICHMENT_HISTORY_DAYS)
        rows = await connection.fetch(
            PROVIDER_STATS,
            since,
            EnrichmentAttemptStatus.SUCCESS.value,
            EnrichmentAttemptStatus.UNAVAILABLE.value,
        )
        stats = {row["provider"]: ProviderStats(row["attempts"], row["successes"]) for row in rows}
        self._stats = (now, stats)
        return stats

    async def run(self, leads: list[_Lead], stats: dict[str, ProviderStats]) -> None:
        """Every lead's waterfall, ``ENRICHMENT_BATCH_SIZE`` at a time (the platform's batch)."""
        settings = self.settings
        size = settings.ENRICHMENT_BATCH_SIZE
        for start in range(0, len(leads), size):
            chunk = leads[start : start + size]
            outcomes = await asyncio.gather(
                *(
                    run_waterfall(
                        self.deps.providers,
                        lead.person,
                        stats=stats,
                        threshold=settings.ENRICHMENT_CONFIDENCE_THRESHOLD,
                        parallel=settings.ENRICHMENT_PARALLEL_PROVIDERS,
                        budget_seconds=self.deps.waterfall_budget(),
                        per_lookup_seconds=settings.ENRICHMENT_TIME_BUDGET_SECONDS,
                        prior=settings.ENRICHMENT_SUCCESS_PRIOR,
                    )
                    for lead in chunk
                )
            )
            for lead, outcome in zip(chunk, outcomes, strict=True):
                lead.outcome = outcome


def _settle_lead(lead: _Lead, threshold: float) -> None:
    """The lead's final status and reason, as the enrichment context settles it."""
    if lead.known_confidence is not None and lead.known_confidence >= threshold:
        lead.status = LeadStatus.ENRICHED.value
        lead.reason = f"contacts already known (confidence {lead.known_confidence:.2f})"
        lead.auto_outreach = True
    elif lead.outcome is None or lead.outcome.best is None:
        lead.status = LeadStatus.ENRICHMENT_FAILED.value
        lead.reason = lead.outcome.failure_reason if lead.outcome else None
    else:
        lead.status, lead.reason = LeadStatus.ENRICHED.value, lead.outcome.summary
        lead.auto_outreach = lead.outcome.met_threshold


def _found_contacts(lead: _Lead, country: str | None) -> list[tuple[Any, ...]]:
    """The best answer's contacts: (id, expert, type, channel, value, normalized, professional,
    dialable, provider, confidence, attempt)."""
    if lead.status != LeadStatus.ENRICHED.value or lead.outcome is None or not lead.outcome.best:
        return []
    best = lead.outcome.best
    result = best.result
    rows: list[tuple[Any, ...]] = []
    for email in result.emails:
        professional = (
            None if email.kind is EmailKind.UNKNOWN else email.kind is EmailKind.PROFESSIONAL
        )
        rows.append(
            (uuid.uuid4(), lead.expert_id, ContactType.EMAIL.value, Channel.EMAIL.value,
             email.address, email.address.strip().lower(), professional, None, result.provider,
             email.confidence, best.attempt_id)
        )  # fmt: skip
    for phone in result.phones:
        number = normalize_phone(phone.e164 or phone.number, country)
        rows.append(
            (uuid.uuid4(), lead.expert_id, ContactType.PHONE.value, Channel.PHONE.value,
             number.given, number.normalized, None, number.dialable, result.provider,
             phone.confidence, best.attempt_id)
        )  # fmt: skip
    return rows


def _outbox_row(message: MessagePayload, correlation: str) -> tuple[Any, ...]:
    envelope = Envelope.of(message, correlation_id=correlation)
    target = route(message)
    headers = {
        "message-id": envelope.id,
        "message-type": envelope.type,
        "correlation-id": envelope.correlation_id,
    }
    return (uuid.uuid4(), target.lane, target.key, envelope.model_dump_json(), json.dumps(headers))


async def _ingest(
    connection: asyncpg.Connection, payload: dict[str, Any], correlation: str
) -> tuple[list[_Lead], Any] | None:
    """Search, experts, leads and their LinkedIn contacts; None for an unknown project."""
    project_id = uuid.UUID(payload["projectId"])
    project = await connection.fetchrow(PROJECT_FOR_SHARE, project_id)
    if project is None or project["status"] != ProjectStatus.ACTIVE.value:
        return None
    search_url = payload["searchUrl"].strip()
    search = await connection.fetchval(UPSERT_SEARCH, project_id, search_url, len(payload["leads"]))
    people: dict[str, dict[str, Any]] = {}  # first lead of each person (later ones: no-ops)
    for lead in payload["leads"]:
        identity = normalize_linkedin_url(_clean(lead.get("linkedinUrl"), 2048))
        if identity and _clean(lead.get("name")) and _clean(lead.get("company")):
            people.setdefault(identity, lead)
    if not people:
        return [], project
    identities = list(people)
    names = [_clean(people[i]["name"]) or "" for i in identities]
    countries = [normalize_country(_clean(people[i].get("countryIso"), 8)) for i in identities]
    countries = [c if c and len(c) == 2 else None for c in countries]
    splits = [_split_full_name(name) for name in names]
    experts = await connection.fetch(
        UPSERT_EXPERTS,
        identities,
        names,
        [first for first, _ in splits],
        [last for _, last in splits],
        [_clean(people[i].get("title")) for i in identities],
        [_clean(people[i]["company"]) for i in identities],
        [_clean(people[i].get("companyDomain"), 253) for i in identities],
        countries,
        [timezone_for_country(country) for country in countries],
    )
    named = {
        row["value_hash"]
        for row in await connection.fetch(
            ERASED_OR_SUPPRESSED,
            SuppressedContactKind.LINKEDIN_URL.value,
            [value_hash(i) for i in identities],
        )
    }
    expert_of = {row["linkedin_url_normalized"]: row for row in experts}
    kept = [i for i in identities if i in expert_of]  # erased people store nothing
    suppressed = {i: expert_of[i]["suppressed"] or value_hash(i) in named for i in kept}
    created = await connection.fetch(
        INSERT_LEADS,
        project_id,
        search,
        correlation,
        [expert_of[i]["id"] for i in kept],
        [
            LeadStatus.DISQUALIFIED.value if suppressed[i] else LeadStatus.ENRICHING.value
            for i in kept
        ],
        [INGESTION_SUPPRESSED if suppressed[i] else None for i in kept],
        [_clean(people[i]["name"]) for i in kept],
        [_clean(people[i]["company"]) for i in kept],
        [_clean(people[i].get("title")) for i in kept],
        [_clean(people[i].get("linkedinUrl"), 2048) for i in kept],
        [_clean(people[i].get("email"), 320) for i in kept],
        [_clean(people[i].get("phone"), 64) for i in kept],
        [_clean(people[i].get("companyDomain"), 253) for i in kept],
        [countries[identities.index(i)] for i in kept],
        [json.dumps(people[i]) for i in kept],
    )
    identity_of = {expert_of[i]["id"]: i for i in kept}
    new = [row for row in created if row["status"] == LeadStatus.ENRICHING.value]
    await connection.execute(
        INSERT_INITIAL_CONTACTS,
        ContactType.LINKEDIN.value,
        Channel.LINKEDIN.value,
        ContactSource.SALES_NAV.value,
        [row["expert_id"] for row in new],
        [_clean(people[identity_of[row["expert_id"]]].get("linkedinUrl"), 2048) for row in new],
        [identity_of[row["expert_id"]] for row in new],
    )
    leads = []
    for row in new:
        identity = identity_of[row["expert_id"]]
        lead, expert = people[identity], expert_of[identity]
        country = countries[identities.index(identity)]
        leads.append(
            _Lead(
                id=row["id"],
                expert_id=row["expert_id"],
                person=PersonQuery(
                    full_name=expert["full_name"] or _clean(lead["name"]),
                    first_name=expert["first_name"],
                    last_name=expert["last_name"],
                    company_name=_clean(lead["company"]) or expert["company_name"],
                    company_domain=_clean(lead.get("companyDomain"), 253)
                    or expert["company_domain"],
                    linkedin_url=_clean(lead.get("linkedinUrl"), 2048) or identity,
                    email=_clean(lead.get("email"), 320) or expert["primary_email"],
                    country_iso=country or expert["country_iso"],
                ),
                title=expert["title"] or _clean(lead.get("title")),
                seniority=expert["seniority"],
                country_iso=expert["country_iso"] or country,
            )
        )
    return leads, project


async def _enrich_and_rank(
    connection: asyncpg.Connection,
    waterfalls: _Waterfalls,
    project_id: uuid.UUID,
    project: Any,
    leads: list[_Lead],
    correlation: str,
) -> list[tuple[Any, ...]]:
    """Waterfalls, attempts, contacts, leads settled and audited, ranking snapshots; returns
    the outbox rows of the follow-ups (sheet row, call task, auto outreach)."""
    settings = waterfalls.settings
    experts = [lead.expert_id for lead in leads]
    known = dict(await connection.fetch(KNOWN_CONFIDENCE, experts, ContactSource.ENRICHMENT.value))
    for lead in leads:
        lead.known_confidence = known.get(lead.expert_id)
    threshold = settings.ENRICHMENT_CONFIDENCE_THRESHOLD
    to_run = [
        lead for lead in leads if lead.known_confidence is None or lead.known_confidence < threshold
    ]
    await waterfalls.run(to_run, await waterfalls.stats(connection))
    attempts: list[tuple[Any, ...]] = []
    for lead in to_run:
        run_id = uuid.uuid4()
        for attempt in lead.outcome.attempts if lead.outcome else ():
            result = attempt.result
            payload = result.model_dump(mode="json", exclude={"raw"})
            payload["response"] = result.raw
            attempts.append(
                (attempt.attempt_id, lead.expert_id, lead.id, run_id, result.provider,
                 attempt.phase.value, attempt.status.value, result.confidence,
                 max(result.latency_ms, 0), result.http_status, result.error,
                 json.dumps(payload), result.callback_request_id,
                 json.dumps(result.callback_jobs or None), result.credits)
            )  # fmt: skip
    if attempts:
        await connection.execute(
            INSERT_PIPELINE_ATTEMPTS, correlation, *zip(*attempts, strict=True)
        )
    for lead in leads:
        _settle_lead(lead, threshold)
    found = [row for lead in leads for row in _found_contacts(lead, lead.person.country_iso)]
    kinds = {ContactType.EMAIL.value: SuppressedContactKind.EMAIL,
             ContactType.PHONE.value: SuppressedContactKind.PHONE}  # fmt: skip
    hashes = {}
    for row in found:
        normalized = normalize_suppressed_value(kinds[row[2]], row[5])
        hashes[row[0]] = value_hash(normalized) if normalized else None
    refused = {
        row["value_hash"]
        for row in await connection.fetch(
            SUPPRESSED_ADDRESSES, [h for h in hashes.values() if h is not None]
        )
    }
    found = [row for row in found if hashes[row[0]] not in refused]
    if found:
        columns = list(zip(*found, strict=True))
        await connection.execute(
            UPSERT_FOUND_CONTACTS,
            ContactSource.ENRICHMENT.value,
            columns[0], columns[1], columns[2], columns[3], columns[4], columns[5],
            columns[6], columns[7], columns[8], columns[9], columns[10],
        )  # fmt: skip
    await connection.execute(
        SETTLE_LEADS,
        LeadStatus.ENRICHED.value,
        [lead.id for lead in leads],
        [lead.status for lead in leads],
        [lead.reason for lead in leads],
    )
    await connection.execute(
        AUDIT_LEADS,
        "lead.status_changed",
        "lead",
        "enrichment",
        correlation,
        [lead.id for lead in leads],
        [
            json.dumps(
                {"from": LeadStatus.ENRICHING.value, "to": lead.status, "reason": lead.reason}
            )
            for lead in leads
        ],
    )
    signals: dict[uuid.UUID, list[ContactSignal]] = {}
    for row in await connection.fetch(
        CONTACT_SIGNALS, experts, [ContactType.EMAIL.value, ContactType.PHONE.value]
    ):
        signals.setdefault(row["expert_id"], []).append(
            ContactSignal(
                kind="email" if row["type"] == ContactType.EMAIL.value else "phone",
                confidence=float(row["confidence"] or 0.0),
                personal=row["is_professional"] is False,
            )
        )
    titles = tuple(
        (row[0], float(row[1])) for row in await connection.fetch(JOB_TITLES, project_id)
    )
    scores = [
        score_expert(
            RankingInput(
                title=lead.title,
                seniority_label=lead.seniority,
                country_iso=lead.country_iso,
                contacts=tuple(signals.get(lead.expert_id, ())),
                project_geographies=tuple(project["geography_iso_codes"] or ()),
                project_priority=project["priority"],
                job_titles=titles,
            )
        )
        for lead in leads
    ]
    await connection.execute(
        INSERT_SNAPSHOTS,
        project_id,
        correlation,
        experts,
        [lead.id for lead in leads],
        [score.score for score in scores],
        [json.dumps(dict(score.components)) for score in scores],
        [score.formula_version for score in scores],
    )
    await connection.execute(RANK_LEADS, project_id, experts, [s.score for s in scores])
    follow_ups: list[tuple[Any, ...]] = []
    for lead in leads:
        follow_ups.append(
            _outbox_row(
                CallTaskRequested(
                    project_id=project_id,
                    expert_id=lead.expert_id,
                    lead_id=lead.id,
                    trigger=CallTaskTrigger.RANKING,
                ),
                correlation,
            )
        )
        if lead.auto_outreach and project["auto_outreach_channel"]:
            follow_ups.append(
                _outbox_row(
                    AutoOutreachRequested(
                        project_id=project_id, expert_id=lead.expert_id, lead_id=lead.id
                    ),
                    correlation,
                )
            )
        follow_ups.append(
            _outbox_row(
                SheetSyncRequested.for_expert(project_id=project_id, expert_id=lead.expert_id),
                correlation,
            )
        )
    return follow_ups


async def pipeline_consumer() -> None:
    """Sales Nav deliveries → experts, leads, LinkedIn contacts → the enrichment waterfall
    (the platform's adapters, order, parallelism and budgets) → attempts, contacts, leads
    ENRICHED and audited → ranking snapshots → the follow-ups' outbox rows, produced after the
    commit (a minimal relay). One transaction per batch of deliveries, offsets committed after
    it; a delivery seen before (its body's hash in ``processed_events``) is skipped.

    Only leads with a LinkedIn URL are taken (the benchmark and its test send no other kind).
    """
    waterfalls = _Waterfalls()
    consumer = AIOKafkaConsumer(
        _topic("sales-nav-ingestion"),
        bootstrap_servers=ENV["KAFKA_BROKER_URL"],
        group_id=_topic("baseline.sales-nav-ingestion"),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=ENV["KAFKA_BROKER_URL"],
        acks="all",
        enable_idempotence=ENV.get("KAFKA_IDEMPOTENT_PRODUCER") == "1",
    )
    connection = await asyncpg.connect(_dsn(), command_timeout=60)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await consumer.start()
    await producer.start()
    try:
        while not stopping.is_set():
            records = await consumer.getmany(timeout_ms=50, max_records=200)
            bodies = [r.value for rs in records.values() for r in rs if r.value]
            if not bodies:
                continue
            outbox: list[tuple[Any, ...]] = []
            async with connection.transaction():
                for body in bodies:
                    digest = hashlib.sha256(body).hexdigest()
                    if not await connection.fetchval(CLAIM_DELIVERY, PIPELINE_CONSUMER, digest):
                        continue
                    payload, correlation = json.loads(body), str(uuid.uuid4())
                    ingested = await _ingest(connection, payload, correlation)
                    if ingested is None or not ingested[0]:
                        continue
                    leads, project = ingested
                    outbox += await _enrich_and_rank(
                        connection,
                        waterfalls,
                        uuid.UUID(payload["projectId"]),
                        project,
                        leads,
                        correlation,
                    )
                if outbox:
                    await connection.execute(PIPELINE_OUTBOX, *zip(*outbox, strict=True))
            if outbox:
                sent = [
                    await producer.send(
                        _topic(lane),
                        envelope.encode(),
                        key=key.encode() if key else None,
                        headers=[(k, v.encode()) for k, v in json.loads(headers).items()],
                    )
                    for _, lane, key, envelope, headers in outbox
                ]
                await asyncio.gather(*sent)
                await connection.execute(PIPELINE_PUBLISHED, [row[0] for row in outbox])
            await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()
        await connection.close()
        await waterfalls.http.aclose()


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
