"""Every query of the allocation service (its rules are :mod:`sourcing.allocation.service`).

Call-task creation reads everything it decides on in one prebuilt statement
(:func:`call_task_facts`), then writes the task and its audit event in one
(:func:`insert_initial_task`): the request lane carries a message per ranked lead.
The allocation of a request is one statement (:func:`assign_from_pool`); its pool query walks
``ix_call_tasks_pending_allocation`` and stops at the first row that passes the filters.
Nothing here commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    ColumnElement,
    DateTime,
    Float,
    Integer,
    Table,
    Text,
    Uuid,
    all_,
    and_,
    any_,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    true,
    tuple_,
    union,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by, distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from sourcing.common.db import OneStatement, ResultRow, SessionStatements, Statements
from sourcing.common.models import (
    Caller,
    CallerPerformanceMetric,
    CallerStatusHistory,
    CallTask,
    Expert,
    ExpertContact,
    ExpertSuppression,
    Lead,
    Project,
    RankingSnapshot,
    SignupChase,
    SystemEvent,
)
from sourcing.common.models.base import sql_in
from sourcing.common.models.enums import CallOutcome, CallTaskKind, ContactType
from sourcing.common.statemachines import (
    CALL_TASK_ACTIVE_STATUSES,
    CALL_TASK_OPEN_STATUSES,
    CallerAllocationStatus,
    CallTaskStatus,
    LeadStatus,
    ProjectStatus,
)
from sourcing.people.callers import task_request_stamp
from sourcing.people.suppression import suppressed_expert, suppressed_phone

# The paging types only: the web kernel (FastAPI) stays out of the agent processes.
if TYPE_CHECKING:
    from sourcing.common.web import Keyset


@dataclass(frozen=True, slots=True)
class CallTaskFacts:
    """What decides an expert's call task in a project."""

    project_status: str
    priority: int
    country_iso: str | None
    language_codes: list[str]
    suppressed: bool  # suppressed_at, or a suppression row
    signed_up: bool
    latest_score: float | None
    has_call_task: bool  # any task of the expert in the project, any kind, any status
    phone: str | None  # the best dialable phone (E.164): primary, most confident, oldest
    leads: list[tuple[uuid.UUID, str]]  # the pair's leads (id, status), newest first


@lru_cache(maxsize=1)
def _call_task_facts_statement() -> OneStatement:
    """The pair's facts in one row, also when the project or the expert is gone (then every
    column is NULL): the pair's row is LEFT JOINed to a constant one."""
    project_id = bindparam("p_project_id", type_=Uuid)
    expert_id = bindparam("p_expert_id", type_=Uuid)
    latest_score = (
        select(RankingSnapshot.score)
        .where(RankingSnapshot.project_id == Project.id, RankingSnapshot.expert_id == Expert.id)
        .order_by(RankingSnapshot.computed_at.desc(), RankingSnapshot.created_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    has_call_task = exists().where(
        CallTask.project_id == Project.id, CallTask.expert_id == Expert.id
    )
    phone = (
        select(ExpertContact.value_normalized)
        .where(
            ExpertContact.expert_id == Expert.id,
            ExpertContact.type == ContactType.PHONE.value,
            ExpertContact.is_dialable.is_(True),
            ~suppressed_phone(ExpertContact.value_normalized),
        )
        .order_by(
            ExpertContact.is_primary.desc(),
            ExpertContact.confidence.desc().nulls_last(),
            ExpertContact.created_at,
            ExpertContact.id,
        )
        .limit(1)
        .scalar_subquery()
    )

    def newest_first(column: Any) -> Any:
        return (
            select(func.array_agg(aggregate_order_by(column, Lead.created_at.desc(), Lead.id)))
            .where(Lead.project_id == Project.id, Lead.expert_id == Expert.id)
            .scalar_subquery()
        )

    pair = (
        select(
            Project.status.label("project_status"),
            Project.priority.label("priority"),
            Expert.country_iso.label("country_iso"),
            Expert.language_codes.label("language_codes"),
            suppressed_expert().label("suppressed"),
            Expert.signed_up_at.is_not(None).label("signed_up"),
            latest_score.label("latest_score"),
            has_call_task.label("has_call_task"),
            phone.label("phone"),
            newest_first(Lead.id).label("lead_ids"),
            newest_first(Lead.status).label("lead_statuses"),
        )
        .select_from(Project)
        .join(Expert, true())  # one row of each: the pair
        .where(Project.id == project_id, Expert.id == expert_id)
        .lateral("pair")
    )
    one = select(literal(1).label("one")).subquery("one")
    return OneStatement.of(select(pair).select_from(one.outerjoin(pair, true())))


async def call_task_facts(
    session: AsyncSession, project_id: uuid.UUID, expert_id: uuid.UUID
) -> CallTaskFacts | None:
    """None when the project or the expert is gone. One prebuilt statement: the call-task
    lane reads these for every ranked lead."""
    row = await SessionStatements(session).fetchrow(
        _call_task_facts_statement(), {"p_project_id": project_id, "p_expert_id": expert_id}
    )
    if row.project_status is None:
        return None
    return CallTaskFacts(
        project_status=row.project_status,
        priority=row.priority,
        country_iso=row.country_iso,
        language_codes=list(row.language_codes or ()),
        suppressed=row.suppressed,
        signed_up=row.signed_up,
        latest_score=row.latest_score,
        has_call_task=row.has_call_task,
        phone=row.phone,
        leads=list(zip(row.lead_ids or (), row.lead_statuses or (), strict=True)),
    )


async def experts_of_project(session: AsyncSession, project_id: uuid.UUID) -> list[uuid.UUID]:
    """The experts with a lead in the project that is not DISQUALIFIED, in id order."""
    result = await session.scalars(
        select(Lead.expert_id)
        .where(Lead.project_id == project_id, Lead.status != LeadStatus.DISQUALIFIED.value)
        .distinct()
        .order_by(Lead.expert_id)
    )
    return list(result.all())


async def refresh_pending_scores(
    session: AsyncSession, project_id: uuid.UUID, expert_id: uuid.UUID, *, score: float
) -> int:
    result = await session.execute(
        update(CallTask)
        .where(
            CallTask.project_id == project_id,
            CallTask.expert_id == expert_id,
            CallTask.status == CallTaskStatus.PENDING.value,
            CallTask.ranking_score != score,
        )
        .values(ranking_score=score)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


@lru_cache(maxsize=1)
def _new_initial_task_statement() -> OneStatement:
    """A PENDING ``INITIAL`` task and its ``call_task.created`` audit event in one statement;
    nothing when the expert already has an open task in the project (the partial unique index
    decides, also under concurrency). Returns the new id, or NULL."""
    created = (
        pg_insert(CallTask)
        .values(
            id=bindparam("p_id", type_=Uuid),
            project_id=bindparam("p_project_id", type_=Uuid),
            expert_id=bindparam("p_expert_id", type_=Uuid),
            lead_id=bindparam("p_lead_id", type_=Uuid),
            status=_inline(CallTaskStatus.PENDING.value),
            status_changed_at=bindparam("p_now", type_=DateTime(timezone=True)),
            kind=_inline(CallTaskKind.INITIAL.value),
            priority=bindparam("p_priority", type_=Integer),
            ranking_score=bindparam("p_ranking_score", type_=Float),
            region_iso=bindparam("p_region_iso", type_=Text),
            language_code=bindparam("p_language_code", type_=Text),
            phone_number=bindparam("p_phone_number", type_=Text),
            correlation_id=bindparam("p_correlation_id", type_=Text),
        )
        .on_conflict_do_nothing(
            index_elements=[CallTask.project_id, CallTask.expert_id],
            index_where=text(sql_in("status", CALL_TASK_OPEN_STATUSES)),
        )
        .returning(CallTask.id, CallTask.project_id, CallTask.expert_id, CallTask.lead_id)
        .cte("created")
    )
    audit = _audit(
        created,
        actor=bindparam("p_actor", type_=Text),
        event="call_task.created",
        entity_type="call_task",
        entity_id=created.c.id,
        data={
            "projectId": cast(created.c.project_id, Text),
            "expertId": cast(created.c.expert_id, Text),
            "leadId": cast(created.c.lead_id, Text),
            "trigger": bindparam("p_trigger", type_=Text),
            "kind": literal(CallTaskKind.INITIAL.value),
        },
    ).cte("created_audit")
    return OneStatement.of(
        select(select(created.c.id).scalar_subquery().label("task_id")).add_cte(audit)
    )


async def insert_initial_task(
    session: AsyncSession, values: dict[str, Any], *, actor: str, trigger: str
) -> uuid.UUID | None:
    """Insert a PENDING ``INITIAL`` task with its audit event (:func:`_new_initial_task_statement`)
    unless the expert already has an open one in the project. ``values`` names the task's
    columns. Returns the new id, or None."""
    parameters = {f"p_{name}": value for name, value in values.items()}
    row = await SessionStatements(session).fetchrow(
        _new_initial_task_statement(), {**parameters, "p_actor": actor, "p_trigger": trigger}
    )
    task_id: uuid.UUID | None = row.task_id
    return task_id


_S = CallTaskStatus


# --- callers --------------------------------------------------------------------------------


async def find_caller(session: AsyncSession, user_id: str, *, lock: bool = False) -> Caller | None:
    """The Caller a token's ``userId`` names: their id, or their email (case-insensitive)."""
    try:
        condition: ColumnElement[bool] = Caller.id == uuid.UUID(user_id)
    except ValueError:
        condition = func.lower(Caller.email) == user_id.strip().lower()
    query = select(Caller).where(condition)
    if lock:
        query = query.with_for_update()
    return await session.scalar(query)


async def get_caller(session: AsyncSession, caller_id: uuid.UUID) -> Caller | None:
    return await session.get(Caller, caller_id)


async def email_taken(
    session: AsyncSession, email: str, *, except_caller: uuid.UUID | None = None
) -> bool:
    query = select(Caller.id).where(func.lower(Caller.email) == email.lower())
    if except_caller is not None:
        query = query.where(Caller.id != except_caller)
    return (await session.scalar(query.limit(1))) is not None


async def latest_performance(
    session: AsyncSession, caller_id: uuid.UUID
) -> CallerPerformanceMetric | None:
    return await session.scalar(
        select(CallerPerformanceMetric)
        .where(CallerPerformanceMetric.caller_id == caller_id)
        .order_by(CallerPerformanceMetric.computed_at.desc())
        .limit(1)
    )


async def active_caller_ids(
    session: AsyncSession, *, seen_after: datetime | None = None
) -> list[uuid.UUID]:
    """Active callers; only those online (seen after ``seen_after``) when given."""
    query = select(Caller.id).where(Caller.is_active.is_(True))
    if seen_after is not None:
        query = query.where(Caller.last_seen_at > seen_after)
    rows = await session.scalars(query.order_by(Caller.id))
    return list(rows.all())


async def mark_offline(session: AsyncSession, *, seen_by: datetime) -> list[uuid.UUID]:
    """Callers last seen at or before ``seen_by`` lose their presence; callers another
    transaction holds are left alone (taken in id order). Returns those marked offline."""
    idle = (
        select(Caller.id)
        .where(Caller.last_seen_at <= seen_by)
        .order_by(Caller.id)
        .with_for_update(skip_locked=True)
        .cte("idle")
    )
    return list(
        (
            await session.scalars(
                update(Caller)
                .where(Caller.id == idle.c.id)
                .values(last_seen_at=None)
                .returning(Caller.id)
                .execution_options(synchronize_session=False)
            )
        ).all()
    )


# --- call tasks -----------------------------------------------------------------------------


async def lock_task(
    session: AsyncSession, task_id: uuid.UUID, *, refresh: bool = False
) -> CallTask | None:
    """The task row, locked (``refresh``: re-read over what the session holds)."""
    query = select(CallTask).where(CallTask.id == task_id).with_for_update()
    if refresh:
        query = query.execution_options(populate_existing=True)
    return await session.scalar(query)


async def load_task(session: AsyncSession, task_id: uuid.UUID) -> CallTask | None:
    """A task with the expert and project the response shows."""
    return await session.scalar(
        select(CallTask)
        .where(CallTask.id == task_id)
        .options(joinedload(CallTask.expert), joinedload(CallTask.project))
        .execution_options(populate_existing=True)
    )


async def list_callers(
    session: AsyncSession,
    *,
    is_active: bool | None,
    allocation_status: str | None,
    limit: int,
    after: Keyset | None,
) -> list[Caller]:
    """Callers ordered by ``(created_at, id)`` ascending (oldest first), after the cursor."""
    query = select(Caller)
    if is_active is not None:
        query = query.where(Caller.is_active.is_(is_active))
    if allocation_status is not None:
        query = query.where(Caller.allocation_status == allocation_status)
    if after is not None:
        query = query.where(tuple_(Caller.created_at, Caller.id) > tuple_(*after))
    query = query.order_by(Caller.created_at, Caller.id).limit(limit)
    return list((await session.scalars(query)).all())


async def list_tasks(
    session: AsyncSession,
    *,
    status: str | None,
    project_id: uuid.UUID | None,
    limit: int,
    after: Keyset | None,
) -> list[CallTask]:
    """Tasks ordered by ``(created_at, id)`` ascending (oldest first), after the cursor."""
    query = select(CallTask).options(joinedload(CallTask.expert), joinedload(CallTask.project))
    if status is not None:
        query = query.where(CallTask.status == status)
    if project_id is not None:
        query = query.where(CallTask.project_id == project_id)
    if after is not None:
        query = query.where(tuple_(CallTask.created_at, CallTask.id) > tuple_(*after))
    query = query.order_by(CallTask.created_at, CallTask.id).limit(limit)
    return list((await session.scalars(query)).all())


async def release_assigned(
    session: AsyncSession, caller_ids: list[uuid.UUID], *, reason: str, now: datetime
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """The callers' ASSIGNED tasks back to PENDING, unassigned. Returns (task id, caller id)."""
    held = (
        select(CallTask.id, CallTask.caller_id)
        .where(CallTask.caller_id.in_(caller_ids), CallTask.status == _S.ASSIGNED.value)
        .with_for_update()
        .cte("held")
    )
    rows = (
        await session.execute(
            update(CallTask)
            .where(CallTask.id == held.c.id)
            .values(
                status=_S.PENDING.value,
                status_reason=f"released: {reason}",
                status_changed_at=now,
                caller_id=None,
                assigned_at=None,
                expires_at=None,
                requeue_count=CallTask.requeue_count + 1,
            )
            .returning(CallTask.id, held.c.caller_id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    return [(task_id, caller_id) for task_id, caller_id in rows]


async def open_tasks_of_expert(
    session: AsyncSession,
    expert_id: uuid.UUID,
    *,
    kind: str | None = None,
    keep_task_id: uuid.UUID | None = None,
) -> Sequence[CallTask]:
    """The expert's open tasks (only ``kind``'s when given, but ``keep_task_id``), locked."""
    query = select(CallTask).where(
        CallTask.expert_id == expert_id, CallTask.status.in_(CALL_TASK_OPEN_STATUSES)
    )
    if kind is not None:
        query = query.where(CallTask.kind == kind)
    if keep_task_id is not None:
        query = query.where(CallTask.id != keep_task_id)
    return (await session.scalars(query.with_for_update())).all()


async def open_tasks_of_project(session: AsyncSession, project_id: uuid.UUID) -> Sequence[CallTask]:
    """The project's open tasks in id order, locked."""
    return (
        await session.scalars(
            select(CallTask)
            .where(CallTask.project_id == project_id, CallTask.status.in_(CALL_TASK_OPEN_STATUSES))
            .order_by(CallTask.id)
            .with_for_update()
        )
    ).all()


async def reprioritise_pending(
    session: AsyncSession, project_id: uuid.UUID, *, priority: int
) -> int:
    result = await session.execute(
        update(CallTask)
        .where(CallTask.project_id == project_id, CallTask.status == _S.PENDING.value)
        .values(priority=priority)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- the pool -------------------------------------------------------------------------------
#
# The query does not convert timezones per row: it compares the expert's zone (else their
# country) with the zones (countries) inside the calling window at ``now``, bound per request
# (``open_zones``, ``open_countries``, ``known_countries``; see
# :func:`sourcing.allocation.service.open_window`).


def _text_array(name: str) -> Any:
    return bindparam(name, type_=ARRAY(Text))


def _window_clause() -> ColumnElement[bool]:
    """The expert is inside the calling window."""
    country = func.upper(Expert.country_iso)
    return or_(
        Expert.timezone == any_(_text_array("open_zones")),
        and_(
            Expert.timezone.is_(None),
            or_(
                Expert.country_iso.is_(None),
                country == any_(_text_array("open_countries")),
                country != all_(_text_array("known_countries")),
            ),
        ),
    )


def _expiry_values(now: Any) -> dict[str, Any]:
    """An expired assignment back in the pool (``ASSIGNED → EXPIRED → PENDING``), unassigned."""
    return {
        "status": _S.PENDING.value,
        "status_reason": "dial deadline passed: EXPIRED, returned to the pool",
        "status_changed_at": now,
        "caller_id": None,
        "assigned_at": None,
        "expires_at": None,
        "requeue_count": CallTask.requeue_count + 1,
    }


def _table(model: type[Caller] | type[CallTask]) -> Table:
    """A model's table, for the statement's data-modifying CTEs (plain Core DML)."""
    table = model.__table__
    assert isinstance(table, Table)  # noqa: S101 - narrows the type: mapped to a Table
    return table


def _inline(value: str) -> Any:
    """A constant written into the statement's text, not bound: the partial indexes
    (``WHERE status = 'PENDING'``...) then serve even a generic plan of the prepared statement,
    which PostgreSQL may choose after a few executions (bound, the statuses made it scan).
    The values are the state machines' status names (letters and underscores)."""
    return literal_column(f"'{value}'", Text)


def _normalised(codes: Any, to_case: Any) -> Any:
    """A caller's codes in the case the tasks store them (``upper``/``lower``), as an array."""
    code = func.unnest(codes).table_valued("code").render_derived()
    return select(func.array_agg(to_case(code.c.code))).select_from(code).scalar_subquery()


def _audit(
    source: Any,
    *,
    actor: Any,
    event: str,
    entity_type: str,
    entity_id: Any,
    data: dict[str, Any],
) -> Any:
    """``INSERT INTO system_events ... SELECT`` one audit row per row of ``source``."""
    correlation_id = bindparam("p_correlation_id", type_=Text)
    pairs = [part for key, value in data.items() for part in (literal(key), value)]
    return insert(SystemEvent).from_select(
        ["type", "entity_type", "entity_id", "actor", "correlation_id", "data"],
        select(
            literal(event),
            literal(entity_type),
            entity_id,
            actor,
            correlation_id,
            func.jsonb_build_object(*pairs),
        ).select_from(source),
        include_defaults=False,
    )


# The columns of the expert the task view shows, as ``expert_<name>`` in the statement's row.
EXPERT_VIEW_COLUMNS = (
    "full_name",
    "title",
    "company_name",
    "primary_phone",
    "timezone",
    "country_iso",
    "language_codes",
)


@lru_cache(maxsize=2)
def _assignment_statement(by_email: bool) -> OneStatement:
    """The whole allocation of one request in one statement (one round trip):

    ``me`` locks the caller (by id, or by email when ``by_email``); ``allowed`` is that caller
    when they may work (active, not in ``p_refused_statuses``, online after ``p_online_after``
    when given). ``expired`` returns stale assignments to the pool (every caller's when
    ``p_sweep``, at most ``p_expiry_limit``; always the caller's own), skipping rows another
    transaction holds. ``held`` is the caller's ASSIGNED/DIALING task as it was; without one,
    ``picked`` assigns the best PENDING task they may take (``FOR UPDATE SKIP LOCKED``). The
    caller's row is stamped (``p_task_request``: shift, presence) and moves to ACTIVE (from
    IDLE, a task given) or to IDLE (nothing given, from ``p_idle_sources``). Every move is
    audited, the caller's with its history row. The one row returned carries the caller as
    locked, their status after, the task (picked or active) with its expert and project, and
    how many tasks went back to the pool.

    One snapshot: a task expired here is in the pool only for the next statement, and an
    overdue task of the caller's blocks the pick (the one-active-task index would refuse it);
    the service runs the statement again when it returned tasks and gave none. Built once,
    every varying value a bound parameter; run on the driver's connection (:class:`OneStatement`).
    """
    now = bindparam("p_now", type_=DateTime(timezone=True))
    online_after = bindparam("p_online_after", type_=DateTime(timezone=True))
    task_request = bindparam("p_task_request", type_=Boolean)
    idle, active = CallerAllocationStatus.IDLE_NO_AVAILABLE_TASKS, CallerAllocationStatus.ACTIVE

    match = (
        func.lower(Caller.email) == bindparam("p_caller_email", type_=Text)
        if by_email
        else Caller.id == bindparam("p_caller_id", type_=Uuid)
    )
    me = (
        select(
            literal_column("callers.ctid").label("version"),
            Caller.id,
            Caller.email,
            Caller.is_active,
            Caller.allocation_status,
            Caller.status_reason,
            Caller.status_changed_at,
            Caller.last_seen_at,
            _normalised(Caller.region_iso_codes, func.upper).label("regions"),
            _normalised(Caller.language_codes, func.lower).label("languages"),
        )
        .where(match)
        .limit(1)
        .with_for_update(of=Caller)
        .cte("me")
    )
    # ``settled``: the caller's row is the version this statement's snapshot sees. When the
    # lock waited for another transaction that changed it (say, gave them a task), the
    # snapshot predates that change: the statement then neither picks nor idles, and the
    # service runs it again (its next snapshot sees the change).
    seen = _table(Caller).alias("seen")
    allowed = (
        select(
            me,
            (
                me.c.version
                == select(literal_column("seen.ctid")).where(seen.c.id == me.c.id).scalar_subquery()
            ).label("settled"),
        )
        .where(
            me.c.is_active,
            me.c.allocation_status != all_(_text_array("p_refused_statuses")),
            or_(online_after.is_(None), me.c.last_seen_at > online_after),
        )
        .cte("allowed")
    )
    caller_id = select(allowed.c.id).scalar_subquery()
    may_work = exists(select(allowed.c.id))
    settled = exists(select(allowed.c.id).where(allowed.c.settled))
    actor = func.coalesce(
        bindparam("p_actor", type_=Text),
        func.concat("caller:", cast(select(me.c.id).scalar_subquery(), Text)),
    )
    overdue = and_(CallTask.status == _inline(_S.ASSIGNED), CallTask.expires_at <= now)

    swept = (
        select(CallTask.id, CallTask.caller_id)
        .where(overdue, bindparam("p_sweep", type_=Boolean))
        .order_by(CallTask.expires_at)
        .limit(bindparam("p_expiry_limit", type_=Integer))
        .with_for_update(skip_locked=True)
        .cte("swept")
    )
    own_stale = (
        select(CallTask.id, CallTask.caller_id)
        .where(overdue, CallTask.caller_id == caller_id)
        .with_for_update(skip_locked=True)
        .cte("own_stale")
    )
    stale = union(select(swept), select(own_stale)).subquery("stale")
    expired = (
        update(_table(CallTask))
        .where(CallTask.id == stale.c.id)
        .values(**_expiry_values(now))
        .returning(CallTask.id, stale.c.caller_id)
        .cte("expired")
    )

    held = (
        select(CallTask.id, CallTask.status, CallTask.expires_at)
        .where(
            CallTask.caller_id == caller_id,
            CallTask.status.in_([_inline(status) for status in CALL_TASK_ACTIVE_STATUSES]),
        )
        .cte("held")
    )
    candidate = (
        select(CallTask.id)
        .join(Expert, Expert.id == CallTask.expert_id)
        .join(Project, Project.id == CallTask.project_id)
        .where(
            settled,
            ~exists(select(held.c.id)),
            CallTask.status == _inline(_S.PENDING),
            or_(CallTask.available_after.is_(None), CallTask.available_after <= now),
            or_(
                CallTask.region_iso.is_(None),
                CallTask.region_iso
                == any_(cast(select(allowed.c.regions).scalar_subquery(), ARRAY(Text))),
            ),
            or_(
                CallTask.language_code.is_(None),
                func.lower(CallTask.language_code)
                == any_(cast(select(allowed.c.languages).scalar_subquery(), ARRAY(Text))),
            ),
            ~suppressed_expert(),
            ~suppressed_phone(CallTask.phone_number),
            Project.status == ProjectStatus.ACTIVE.value,
            _window_clause(),
        )
        .order_by(CallTask.priority.desc(), CallTask.ranking_score.desc(), CallTask.created_at)
        .limit(1)
        .with_for_update(of=CallTask, skip_locked=True)
        .cte("candidate")
    )
    picked = (
        update(_table(CallTask))
        .where(CallTask.id == candidate.c.id)
        .values(
            status=_S.ASSIGNED.value,
            status_reason=None,
            status_changed_at=now,
            caller_id=caller_id,
            assigned_at=now,
            expires_at=bindparam("p_expires_at", type_=DateTime(timezone=True)),
        )
        .returning(*_table(CallTask).c)
        .cte("picked")
    )

    given = exists(select(picked.c.id))
    decision = select(
        allowed.c.id,
        allowed.c.allocation_status.label("from_status"),
        case(
            (and_(given, allowed.c.allocation_status == idle.value), active.value),
            (
                and_(
                    allowed.c.settled,
                    ~given,
                    ~exists(select(held.c.id)),
                    ~exists(select(expired.c.id)),
                    allowed.c.allocation_status == any_(_text_array("p_idle_sources")),
                ),
                idle.value,
            ),
        ).label("to_status"),
    ).cte("decision")
    moves = decision.c.to_status.is_not(None)
    reason = case(
        (decision.c.to_status == active.value, bindparam("p_reason_active", type_=Text)),
        else_=bindparam("p_reason_idle", type_=Text),
    )
    caller_moved = (
        update(_table(Caller))
        .where(Caller.id == decision.c.id, or_(task_request, moves))
        .values(
            **task_request_stamp(now=now, when=task_request),
            allocation_status=func.coalesce(decision.c.to_status, Caller.allocation_status),
            status_reason=case((moves, reason), else_=Caller.status_reason),
            status_changed_at=case((moves, now), else_=Caller.status_changed_at),
        )
        .returning(Caller.id, decision.c.from_status, decision.c.to_status, reason.label("reason"))
        .cte("caller_moved")
    )
    moved = select(caller_moved).where(caller_moved.c.to_status.is_not(None)).subquery("moved")
    history = insert(CallerStatusHistory).from_select(
        ["caller_id", "from_status", "to_status", "reason", "actor", "correlation_id"],
        select(
            moved.c.id,
            moved.c.from_status,
            moved.c.to_status,
            moved.c.reason,
            actor,
            bindparam("p_correlation_id", type_=Text),
        ),
        include_defaults=False,
    )

    active_now = select(*_table(CallTask).c, false().label("newly_assigned")).where(
        CallTask.id.in_(
            select(held.c.id).where(
                or_(held.c.status != _S.ASSIGNED.value, held.c.expires_at > now)
            )
        )
    )
    task = union_all(select(picked, true().label("newly_assigned")), active_now).subquery("task")
    one = select(literal(1).label("one")).subquery("one")
    statement = (
        select(
            me.c.id.label("caller_id"),
            me.c.email.label("caller_email"),
            me.c.is_active.label("caller_is_active"),
            me.c.allocation_status.label("caller_status"),
            me.c.status_reason.label("caller_status_reason"),
            me.c.status_changed_at.label("caller_status_changed_at"),
            may_work.label("may_work"),
            settled.label("settled"),
            func.coalesce(
                select(caller_moved.c.to_status).scalar_subquery(), me.c.allocation_status
            ).label("allocation_status"),
            select(func.count()).select_from(expired).scalar_subquery().label("returned"),
            *task.c,
            *(getattr(Expert, name).label(f"expert_{name}") for name in EXPERT_VIEW_COLUMNS),
            Project.name.label("project_name"),
        )
        .select_from(
            one.outerjoin(me, true())
            .outerjoin(task, true())
            .outerjoin(Expert, Expert.id == task.c.expert_id)
            .outerjoin(Project, Project.id == task.c.project_id)
        )
        .add_cte(
            _audit(
                expired,
                actor=actor,
                event="call_task.expired",
                entity_type="call_task",
                entity_id=expired.c.id,
                data={
                    "from": literal(_S.ASSIGNED.value),
                    "via": literal(_S.EXPIRED.value),
                    "to": literal(_S.PENDING.value),
                    "callerId": cast(expired.c.caller_id, Text),
                },
            ).cte("expired_audit"),
            _audit(
                picked,
                actor=actor,
                event="call_task.assigned",
                entity_type="call_task",
                entity_id=picked.c.id,
                data={
                    "from": literal(_S.PENDING.value),
                    "to": literal(_S.ASSIGNED.value),
                    "reason": null(),
                    "callerId": cast(picked.c.caller_id, Text),
                    "expiresAt": picked.c.expires_at,
                },
            ).cte("assigned_audit"),
            history.cte("history"),
            _audit(
                moved,
                actor=actor,
                event="caller.allocation_status_changed",
                entity_type="caller",
                entity_id=moved.c.id,
                data={
                    "from": moved.c.from_status,
                    "to": moved.c.to_status,
                    "reason": moved.c.reason,
                },
            ).cte("caller_audit"),
        )
    )
    return OneStatement.of(statement)


def _view(task: Any) -> Any:
    """A select of ``task``'s columns with the expert's (``expert_<column>``) and the project's
    name: the task view (:meth:`sourcing.allocation.schemas.CallTaskOut.of_row`)."""
    return select(
        *task.c,
        *(getattr(Expert, name).label(f"expert_{name}") for name in EXPERT_VIEW_COLUMNS),
        Project.name.label("project_name"),
    ).select_from(
        task.join(Expert, Expert.id == task.c.expert_id).join(
            Project, Project.id == task.c.project_id
        )
    )


@lru_cache(maxsize=1)
def _requeue_statement() -> OneStatement:
    """An operator's requeue in one statement: the task locked, moved back to the pool (from
    ``p_from_statuses``), unassigned, audited (``call_task.requeued``), and its view. The row
    has ``found_status`` (null: no such task) and, when it moved, the view."""
    now = bindparam("p_now", type_=DateTime(timezone=True))
    reason = bindparam("p_reason", type_=Text)
    old = (
        select(CallTask.id, CallTask.status, CallTask.caller_id)
        .where(CallTask.id == bindparam("p_task_id", type_=Uuid))
        .with_for_update()
        .cte("old")
    )
    requeued = (
        update(_table(CallTask))
        .where(CallTask.id == old.c.id, old.c.status == any_(_text_array("p_from_statuses")))
        .values(
            status=_S.PENDING.value,
            status_reason=func.concat("requeued: ", reason),
            status_changed_at=now,
            caller_id=None,
            assigned_at=None,
            expires_at=None,
            dialing_started_at=None,
            requeue_count=CallTask.requeue_count + 1,
        )
        .returning(
            *_table(CallTask).c,
            old.c.status.label("from_status"),
            old.c.caller_id.label("previous_caller_id"),
        )
        .cte("requeued")
    )
    view = _view(requeued).subquery("view")
    statement = (
        select(old.c.status.label("found_status"), view)
        .select_from(select(literal(1).label("one")).subquery("one"))
        .outerjoin(old, true())
        .outerjoin(view, true())
        .add_cte(
            _audit(
                requeued,
                actor=bindparam("p_actor", type_=Text),
                event="call_task.requeued",
                entity_type="call_task",
                entity_id=requeued.c.id,
                data={
                    "from": requeued.c.from_status,
                    "to": literal(_S.PENDING.value),
                    "reason": reason,
                    "previousCallerId": cast(requeued.c.previous_caller_id, Text),
                },
            ).cte("requeued_audit")
        )
    )
    return OneStatement.of(statement)


async def requeue(statements: Statements, parameters: dict[str, Any]) -> ResultRow:
    """Run :func:`_requeue_statement` (``parameters``: every ``p_`` value); its one row."""
    return await statements.fetchrow(_requeue_statement(), parameters)


async def assign_from_pool(
    statements: Statements, parameters: dict[str, Any], *, by_email: bool
) -> ResultRow:
    """Run :func:`_assignment_statement` (``parameters``: every ``p_`` value and the open
    window); its one row."""
    return await statements.fetchrow(_assignment_statement(by_email), parameters)


# --- experts, leads and suppression ---------------------------------------------------------


async def get_expert(session: AsyncSession, expert_id: uuid.UUID) -> Expert | None:
    return await session.get(Expert, expert_id)


async def lock_expert(session: AsyncSession, expert_id: uuid.UUID) -> Expert | None:
    return await session.scalar(select(Expert).where(Expert.id == expert_id).with_for_update())


async def find_expert_for_signup(
    session: AsyncSession, *, expert_id: uuid.UUID | None, email: str | None
) -> Expert | None:
    """The signed-up expert, by id, else by primary email (case-insensitive), row locked."""
    if expert_id is not None:
        condition: ColumnElement[bool] = Expert.id == expert_id
    elif email:
        condition = Expert.primary_email == email.strip().lower()
    else:
        return None
    return await session.scalar(select(Expert).where(condition).with_for_update())


async def insert_suppression(session: AsyncSession, values: dict[str, Any]) -> None:
    """The expert's suppression row, unless they have one."""
    await session.execute(
        pg_insert(ExpertSuppression)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["expert_id"])
    )


async def move_leads(
    session: AsyncSession,
    expert_id: uuid.UUID,
    *,
    from_statuses: list[str],
    to_status: str,
    reason: str,
    now: datetime,
) -> list[uuid.UUID]:
    """The expert's leads in ``from_statuses`` moved to ``to_status``. Returns their ids."""
    rows = await session.execute(
        update(Lead)
        .where(Lead.expert_id == expert_id, Lead.status.in_(from_statuses))
        .values(status=to_status, status_reason=reason, status_changed_at=now)
        .returning(Lead.id)
        .execution_options(synchronize_session=False)
    )
    return [row[0] for row in rows.all()]


# --- sign-up chases -------------------------------------------------------------------------


async def chases_on(session: AsyncSession, *, expert_id: uuid.UUID, chase_date: date) -> int:
    """How many sign-up chases of the expert are dated ``chase_date``."""
    count = await session.scalar(
        select(func.count())
        .select_from(SignupChase)
        .where(SignupChase.expert_id == expert_id, SignupChase.chase_date == chase_date)
    )
    return int(count or 0)


@dataclass(frozen=True, slots=True)
class ChaseCandidate:
    """The latest signup-link task of an expert who has not signed up."""

    source_task_id: uuid.UUID
    expert_id: uuid.UUID
    project_id: uuid.UUID
    priority: int
    ranking_score: float
    region_iso: str | None
    language_code: str | None
    phone_number: str | None


async def signup_chase_candidates(
    session: AsyncSession, *, link_sent_before: datetime, chase_date: date, limit: int
) -> list[ChaseCandidate]:
    """Experts whose LATEST signup-link outcome is older than ``link_sent_before``, who have
    not signed up, are not suppressed, have no chase dated ``chase_date`` yet and no open
    task in that project (e.g. a chase the outcome endpoint already scheduled)."""
    latest = (
        select(
            CallTask.id,
            CallTask.expert_id,
            CallTask.project_id,
            CallTask.outcome_at,
            CallTask.priority,
            CallTask.ranking_score,
            CallTask.region_iso,
            CallTask.language_code,
            CallTask.phone_number,
        )
        .where(
            CallTask.outcome == CallOutcome.INTERESTED_SIGNUP_LINK_SENT.value,
            CallTask.outcome_at.is_not(None),
        )
        .ext(distinct_on(CallTask.expert_id))
        .order_by(CallTask.expert_id, CallTask.outcome_at.desc(), CallTask.id)
        .subquery("latest")
    )
    chased_today = exists().where(
        SignupChase.expert_id == latest.c.expert_id, SignupChase.chase_date == chase_date
    )
    open_task = exists().where(
        CallTask.expert_id == latest.c.expert_id,
        CallTask.project_id == latest.c.project_id,
        CallTask.status.in_(CALL_TASK_OPEN_STATUSES),
    )
    rows = await session.execute(
        select(latest)
        .join(Expert, Expert.id == latest.c.expert_id)
        .join(Project, Project.id == latest.c.project_id)
        .where(
            latest.c.outcome_at <= link_sent_before,
            Expert.signed_up_at.is_(None),
            ~suppressed_expert(),
            Project.status == ProjectStatus.ACTIVE.value,
            ~chased_today,
            ~open_task,
        )
        .order_by(latest.c.outcome_at, latest.c.expert_id)
        .limit(limit)
    )
    return [
        ChaseCandidate(
            source_task_id=row.id,
            expert_id=row.expert_id,
            project_id=row.project_id,
            priority=row.priority,
            ranking_score=row.ranking_score,
            region_iso=row.region_iso,
            language_code=row.language_code,
            phone_number=row.phone_number,
        )
        for row in rows.all()
    ]
