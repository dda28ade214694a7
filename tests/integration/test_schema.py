"""The schema on a real PostgreSQL: migrations up and down, models == migration, constraints."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, NullPool, delete, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from sourcing.common.config import to_asyncpg_url
from sourcing.common.migrate import downgrade, head_revision, upgrade
from sourcing.common.models import Base, CallTask, Company, Expert, Lead, Project
from sourcing.common.models.enums import CallOutcome, Channel, values
from sourcing.common.statemachines import MACHINES
from tests import factories as f
from tests.fixtures.database import create_empty_database, drop_database

pytestmark = pytest.mark.integration

EXPECTED_TABLES = {
    "call_logs",
    "call_logs_raw",
    "call_tasks",
    "caller_performance_metrics",
    "caller_status_history",
    "callers",
    "companies",
    "cooldown_logs",
    "dead_letter_jobs",
    "dead_letter_replays",
    "documentation_jobs",
    "enrichment_attempts",
    "provider_circuits",
    "expert_contacts",
    "expert_suppressions",
    "contact_suppressions",
    "experts",
    "google_sheet_exports",
    "google_sheet_row_maps",
    "idempotency_keys",
    "job_title_discovery_runs",
    "job_titles",
    "leads",
    "outbox",
    "outreach_messages",
    "outreach_threads",
    "processed_events",
    "processed_webhook_events",
    "projects",
    "ranking_snapshots",
    "sales_nav_searches",
    "scheduler_cycles",
    "screening_questions",
    "screening_reminders",
    "screening_responses",
    "signup_chases",
    "system_events",
}

# Status columns whose CHECK must list exactly the state machine's states.
STATUS_CHECKS = {
    "ck_projects_status": "project",
    "ck_leads_status": "lead",
    "ck_outreach_threads_status": "outreach_thread",
    "ck_screening_responses_status": "screening_response",
    "ck_call_tasks_status": "call_task",
    "ck_callers_allocation_status": "caller_allocation",
    "ck_caller_performance_metrics_allocation_status": "caller_allocation",
    "ck_caller_status_history_to_status": "caller_allocation",
}


def _engine(database_url: str) -> AsyncEngine:
    return create_async_engine(to_asyncpg_url(database_url), poolclass=NullPool)


async def _tables(database_url: str) -> set[str]:
    engine = _engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            )
            return {row[0] for row in rows}
    finally:
        await engine.dispose()


_CATALOG_QUERIES = {
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attidentity
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0
          AND NOT a.attisdropped AND c.relname <> 'alembic_version'
    """,
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace
          AND conrelid::regclass::text <> 'alembic_version'
    """,
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = 'public' AND tablename <> 'alembic_version'
    """,
}


async def _catalog(database_url: str) -> dict[str, set[tuple[Any, ...]]]:
    """Every column, constraint and index definition as PostgreSQL itself prints them."""
    engine = _engine(database_url)
    try:
        async with engine.connect() as connection:
            return {
                kind: {tuple(row) for row in await connection.execute(text(query))}
                for kind, query in _CATALOG_QUERIES.items()
            }
    finally:
        await engine.dispose()


# --- migrations -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def fresh_migrated_database_url(infra: Any) -> AsyncIterator[str]:
    """A database with nothing but the migration in it (the shared one may hold other tests'
    scratch tables)."""
    url = await create_empty_database(infra.database_url)
    try:
        await asyncio.to_thread(upgrade, url)
        yield url
    finally:
        await drop_database(url, server_url=infra.database_url)


async def test_migrated_database_has_exactly_the_expected_tables(
    fresh_migrated_database_url: str, migrated_database_url: str
) -> None:
    assert await _tables(fresh_migrated_database_url) == EXPECTED_TABLES | {"alembic_version"}
    assert set(Base.metadata.tables) == EXPECTED_TABLES
    assert len(EXPECTED_TABLES) >= 30
    assert await _tables(migrated_database_url) >= EXPECTED_TABLES


async def test_models_and_migration_agree_for_alembic(fresh_migrated_database_url: str) -> None:
    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, Base.metadata))

    engine = _engine(fresh_migrated_database_url)
    try:
        async with engine.connect() as connection:
            diffs = await connection.run_sync(compare)
    finally:
        await engine.dispose()
    assert diffs == []


async def test_migration_builds_exactly_what_the_models_declare(
    fresh_migrated_database_url: str, empty_database_url: str
) -> None:
    """Alembic does not compare CHECK constraints or partial-index predicates: compare the
    catalogs of the migrated database and of one built by ``metadata.create_all``."""
    engine = _engine(empty_database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
    finally:
        await engine.dispose()
    migrated = await _catalog(fresh_migrated_database_url)
    declared = await _catalog(empty_database_url)
    for kind in _CATALOG_QUERIES:
        only_migration = sorted(migrated[kind] - declared[kind])
        only_models = sorted(declared[kind] - migrated[kind])
        assert (only_migration, only_models) == ([], []), kind


async def test_status_checks_list_exactly_the_state_machine_states(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'c'")
        )
        definitions = {name: definition for name, definition in rows}
    for name, machine in STATUS_CHECKS.items():
        states = set(re.findall(r"'([A-Z_]+)'", definitions[name]))
        assert states == set(MACHINES[machine].states), name
    channels = set(re.findall(r"'([a-z]+)'", definitions["ck_outreach_threads_channel"]))
    assert channels == set(values(Channel))


async def test_upgrade_downgrade_upgrade_round_trip(empty_database_url: str) -> None:
    await asyncio.to_thread(upgrade, empty_database_url)
    assert await _tables(empty_database_url) == EXPECTED_TABLES | {"alembic_version"}

    await asyncio.to_thread(downgrade, empty_database_url, "base")
    assert await _tables(empty_database_url) == {"alembic_version"}
    engine = _engine(empty_database_url)
    try:
        async with engine.connect() as connection:
            version = await connection.scalar(text("SELECT count(*) FROM alembic_version"))
        assert version == 0
    finally:
        await engine.dispose()

    await asyncio.to_thread(upgrade, empty_database_url)
    assert await _tables(empty_database_url) == EXPECTED_TABLES | {"alembic_version"}


async def test_concurrent_migrations_do_not_collide(empty_database_url: str) -> None:
    # Three migrating processes at once (replicas starting together): the advisory lock
    # serialises them; the first migrates, the others find the database at head.
    env = {**os.environ, "DATABASE_URL": empty_database_url, "APP_ENV": "test"}
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sourcing.common.migrate",
            "upgrade",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    results = await asyncio.gather(*(process.communicate() for process in processes))
    for process, (output, _) in zip(processes, results, strict=True):
        assert process.returncode == 0, output.decode(errors="replace")
    assert await _tables(empty_database_url) == EXPECTED_TABLES | {"alembic_version"}
    engine = _engine(empty_database_url)
    try:
        async with engine.connect() as connection:
            versions = (await connection.execute(text("SELECT * FROM alembic_version"))).all()
        assert [tuple(row) for row in versions] == [(head_revision(),)]
    finally:
        await engine.dispose()


def test_upgrade_works_from_inside_a_running_event_loop(empty_database_url: str) -> None:
    async def migrate_from_loop() -> None:
        upgrade(empty_database_url)  # must not fail with "event loop is already running"

    asyncio.run(migrate_from_loop())
    assert asyncio.run(_tables(empty_database_url)) == EXPECTED_TABLES | {"alembic_version"}


# --- identities and constraints -------------------------------------------------------------


async def _rejected(session: AsyncSession, build: Any) -> None:
    """``build()`` (a coroutine factory) must fail with an IntegrityError; the test goes on."""
    with pytest.raises(IntegrityError):
        async with session.begin_nested():
            await build()


async def test_caller_email_is_unique_case_insensitively(session: AsyncSession) -> None:
    await f.create_caller(session, email="John.Smith@example.com")
    await _rejected(session, lambda: f.create_caller(session, email="john.smith@EXAMPLE.com"))
    await f.create_caller(session, email="john.smith2@example.com")


async def test_expert_identities_are_unique(session: AsyncSession) -> None:
    url = "https://www.linkedin.com/in/janedoe"
    await f.create_expert(session, linkedin_url_normalized=url)
    await _rejected(session, lambda: f.create_expert(session, linkedin_url_normalized=url))

    await f.create_expert(session, linkedin_url_normalized=None, primary_email="jane@stripe.com")
    await _rejected(
        session,
        lambda: f.create_expert(
            session, linkedin_url_normalized=None, primary_email="jane@stripe.com"
        ),
    )
    # Emails are stored lower-case (the normalised identity).
    await _rejected(
        session,
        lambda: f.create_expert(session, primary_email="Jane.Other@stripe.com"),
    )
    # Many experts without a LinkedIn URL or without an email are fine (partial indexes)...
    await f.create_expert(session, linkedin_url_normalized=None, primary_email="a@b.example")
    await f.create_expert(session, primary_email=None)
    # ...but one with neither has no identity.
    await _rejected(
        session, lambda: f.create_expert(session, linkedin_url_normalized=None, primary_email=None)
    )


async def test_processed_webhook_event_is_unique_per_source(session: AsyncSession) -> None:
    await f.create_processed_webhook_event(session, source="yay", event_id="evt-1")
    await _rejected(
        session, lambda: f.create_processed_webhook_event(session, source="yay", event_id="evt-1")
    )
    await f.create_processed_webhook_event(session, source="sales-nav", event_id="evt-1")


async def test_identity_uniques(session: AsyncSession) -> None:
    project = await f.create_project(session)
    await f.create_company(session, project=project, name="Stripe")
    await _rejected(session, lambda: f.create_company(session, project=project, name="STRIPE"))
    await f.create_company(session, name="Stripe")  # another project

    url = "https://linkedin.com/sales/search/1"
    await f.create_sales_nav_search(session, project=project, normalized_url=url)
    await _rejected(
        session, lambda: f.create_sales_nav_search(session, project=project, normalized_url=url)
    )

    company = await f.create_company(session, project=project)
    await f.create_job_title(session, company=company, normalized_title="vp payments")
    await _rejected(
        session,
        lambda: f.create_job_title(session, company=company, normalized_title="vp payments"),
    )

    expert = await f.create_expert(session)
    search = await f.create_sales_nav_search(session, project=project)
    await f.create_lead(session, project=project, expert=expert, search=search)
    await _rejected(
        session, lambda: f.create_lead(session, project=project, expert=expert, search=search)
    )
    # Same person from another search of the same project: a second lead, same expert.
    await f.create_lead(session, project=project, expert=expert)

    await f.create_outreach_thread(session, project=project, expert=expert, channel="email")
    await _rejected(
        session,
        lambda: f.create_outreach_thread(session, project=project, expert=expert, channel="email"),
    )
    await f.create_outreach_thread(session, project=project, expert=expert, channel="whatsapp")

    question = await f.create_screening_question(session, project=project)
    await f.create_screening_response(session, question=question, expert=expert)
    await _rejected(
        session, lambda: f.create_screening_response(session, question=question, expert=expert)
    )

    await f.create_call_log(session, yay_call_id="yay-call-8812")
    await _rejected(session, lambda: f.create_call_log(session, yay_call_id="yay-call-8812"))

    await f.create_dead_letter_job(
        session, origin_topic="ranking", origin_partition=3, origin_offset=42
    )
    await _rejected(
        session,
        lambda: f.create_dead_letter_job(
            session, origin_topic="ranking", origin_partition=3, origin_offset=42
        ),
    )


async def test_sheet_row_map_is_unique_per_entity(session: AsyncSession) -> None:
    from sourcing.common.models import GoogleSheetRowMap

    project = await f.create_project(session)
    entity_id = uuid.uuid4()

    def row(number: int, entity: uuid.UUID) -> GoogleSheetRowMap:
        return GoogleSheetRowMap(
            project_id=project.id,
            entity_type="EXPERT",
            entity_id=entity,
            spreadsheet_id="sheet",
            sheet_tab=str(project.id),
            row_number=number,
        )

    session.add(row(2, entity_id))
    await session.flush()

    async def same_entity() -> None:
        session.add(row(3, entity_id))
        await session.flush()

    async def same_row() -> None:
        session.add(row(2, uuid.uuid4()))
        await session.flush()

    await _rejected(session, same_entity)
    await _rejected(session, same_row)


async def test_foreign_keys_are_enforced(session: AsyncSession) -> None:
    expert = await f.create_expert(session)
    await _rejected(session, lambda: f.create_lead(session, project_id=uuid.uuid4(), expert=expert))
    await _rejected(session, lambda: f.create_call_task(session, expert_id=uuid.uuid4()))
    project = await f.create_project(session)
    await _rejected(
        session,
        lambda: f.create_screening_response(
            session, project_id=project.id, question_id=uuid.uuid4()
        ),
    )


async def test_status_check_rejects_unknown_states(session: AsyncSession) -> None:
    await _rejected(session, lambda: f.create_project(session, status="BOGUS"))
    await _rejected(session, lambda: f.create_call_task(session, status="LOST"))
    await _rejected(session, lambda: f.create_caller(session, allocation_status="PAUSED"))
    await _rejected(session, lambda: f.create_lead(session, status="ENRICHMENT_FAILEd"))
    await _rejected(session, lambda: f.create_outreach_thread(session, channel="EMAIL"))
    await _rejected(session, lambda: f.create_call_task(session, outcome="MAYBE"))
    # Every state the machines know is accepted.
    for state in MACHINES["call_task"].states:
        await f.create_call_task(session, status=state)


async def test_call_task_allocation_guards(session: AsyncSession) -> None:
    caller = await f.create_caller(session)
    await f.create_call_task(session, caller=caller, status="ASSIGNED")
    # One active task per caller.
    await _rejected(session, lambda: f.create_call_task(session, caller=caller, status="DIALING"))
    # An assigned task always has a caller.
    await _rejected(session, lambda: f.create_call_task(session, caller_id=None, status="ASSIGNED"))
    # One open task per expert and project; closed ones do not count.
    project = await f.create_project(session)
    expert = await f.create_expert(session)
    await f.create_call_task(session, project=project, expert=expert, status="COMPLETED")
    await f.create_call_task(session, project=project, expert=expert)
    await _rejected(session, lambda: f.create_call_task(session, project=project, expert=expert))


async def test_at_most_three_signup_chases_per_expert_per_day(session: AsyncSession) -> None:
    source = await f.create_call_task(
        session,
        status="COMPLETED",
        outcome=CallOutcome.INTERESTED_SIGNUP_LINK_SENT.value,
        outcome_at=datetime.now(UTC) - timedelta(hours=25),
    )

    async def chase(number: int) -> None:
        task = await f.create_call_task(
            session,
            project_id=source.project_id,
            expert_id=source.expert_id,
            kind="SIGNUP_CHASE",
            status="COMPLETED",
            chase_of_task_id=source.id,
        )
        await f.create_signup_chase(
            session, source_task=source, chase_task=task, chase_number=number
        )

    for number in (1, 2, 3):
        await chase(number)
    await _rejected(session, lambda: chase(3))  # the same slot twice (two schedulers racing)
    await _rejected(session, lambda: chase(4))  # a fourth chase that day


async def test_server_defaults_and_eager_defaults(session: AsyncSession) -> None:
    # Raw SQL inserts get ids, timestamps and statuses from the server.
    row = (
        await session.execute(
            text(
                "INSERT INTO projects (name, target_threshold, geography_iso_codes) "
                "VALUES ('raw', 1, ARRAY['US']) RETURNING id, status, priority, created_at"
            )
        )
    ).one()
    assert isinstance(row.id, uuid.UUID)
    assert (row.status, row.priority) == ("ACTIVE", 0)
    assert row.created_at.tzinfo is not None

    # ORM: server values are readable after flush and after update, without lazy loads.
    project = await f.create_project(session)
    assert project.created_at is not None and project.updated_at is not None
    first_update = project.updated_at
    await session.commit()  # a savepoint release: timestamps move with the next transaction
    project.priority = 3
    await session.flush()
    assert project.updated_at >= first_update
    assert project.status == "ACTIVE"


async def test_outbox_rows_are_ordered_by_sequence(session: AsyncSession) -> None:
    first = await f.create_outbox_message(session)
    second = await f.create_outbox_message(session)
    assert second.seq > first.seq
    pending = await session.scalars(
        text("SELECT id FROM outbox WHERE published_at IS NULL ORDER BY seq")
    )
    ids = list(pending)
    assert ids.index(first.id) < ids.index(second.id)


async def test_deletes_cascade_or_restrict_as_designed(session: AsyncSession) -> None:
    project = await f.create_project(session)
    company = await f.create_company(session, project=project)
    lead = await f.create_lead(session, project=project)
    caller = await f.create_caller(session)
    task = await f.create_call_task(session, project=project, caller=caller, status="ASSIGNED")
    log = await f.create_call_log(session, caller=caller, call_task=task)

    # A caller with call history cannot be deleted (deactivate instead).
    from sourcing.common.models import Caller

    async def delete_caller() -> None:
        await session.execute(delete(Caller).where(Caller.id == caller.id))

    await _rejected(session, delete_caller)

    # Deleting a project removes what belongs to it; the expert (a person) stays.
    await session.execute(delete(Project).where(Project.id == project.id))
    assert await session.scalar(select(Company.id).where(Company.id == company.id)) is None
    assert await session.scalar(select(Lead.id).where(Lead.id == lead.id)) is None
    assert await session.scalar(select(CallTask.id).where(CallTask.id == task.id)) is None
    assert await session.scalar(select(Expert.id).where(Expert.id == lead.expert_id)) is not None
    # The call log keeps existing, detached from the deleted task.
    from sourcing.common.models import CallLog

    detached = await session.scalar(select(CallLog.call_task_id).where(CallLog.id == log.id))
    assert detached is None


async def test_relationships_refuse_lazy_loading(session: AsyncSession) -> None:
    from sqlalchemy.orm import selectinload

    project = await f.create_project(session)
    await f.create_company(session, project=project)
    session.expunge_all()
    loaded = await session.scalar(select(Project).where(Project.id == project.id))
    assert loaded is not None
    with pytest.raises(Exception, match="lazy"):
        _ = loaded.companies
    eager = await session.scalar(
        select(Project)
        .where(Project.id == project.id)
        .options(selectinload(Project.companies))
        .execution_options(populate_existing=True)
    )
    assert eager is not None and len(eager.companies) == 1


async def test_factories_build_valid_rows(session: AsyncSession) -> None:
    caller = await f.create_caller(session)
    metric = await f.create_performance_metric(session, caller=caller)
    task = await f.create_call_task(session, caller=caller, status="DIALING")
    log = await f.create_call_log(session, caller=caller, call_task=task)
    response = await f.create_screening_response(session)
    message = await f.create_outreach_message(session)
    suppression = await f.create_suppression(session)
    attempt = await f.create_enrichment_attempt(session)
    snapshot = await f.create_ranking_snapshot(session)
    event = await f.create_system_event(session, entity_type="call_task", entity_id=task.id)
    chase = await f.create_signup_chase(session)
    contact = await f.create_expert_contact(session)
    for row in (metric, task, log, response, message, suppression, attempt, snapshot, event):
        assert isinstance(row.id, uuid.UUID)
    assert response.status == "PENDING"
    assert message.delivery_status == "QUEUED"
    assert chase.chase_number == 1
    assert contact.type == "EMAIL"


# --- the fixtures themselves (these two pairs run in file order) ----------------------------

_MARKER = f"fixture-check-{uuid.uuid4().hex}"


async def test_session_writes_are_visible_inside_the_test(
    session: AsyncSession, sessionmaker_rolled_back: Any
) -> None:
    await f.create_project(session, name=_MARKER)
    await session.commit()  # releases a savepoint only
    async with sessionmaker_rolled_back() as other:
        found = await other.scalar(select(Project.id).where(Project.name == _MARKER))
    assert found is not None


async def test_session_writes_were_rolled_back(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        count = await connection.scalar(
            text("SELECT count(*) FROM projects WHERE name = :name"), {"name": _MARKER}
        )
    assert count == 0


async def test_committing_sessionmaker_really_commits(
    sessionmaker_committing: Any, migrated_database_url: str
) -> None:
    async with sessionmaker_committing() as writer:
        await f.create_project(writer, name=f"{_MARKER}-committed")
        await writer.commit()
    engine = _engine(migrated_database_url)
    try:
        async with engine.connect() as connection:
            count = await connection.scalar(
                text("SELECT count(*) FROM projects WHERE name = :name"),
                {"name": f"{_MARKER}-committed"},
            )
    finally:
        await engine.dispose()
    assert count == 1


async def test_committed_rows_are_truncated_after_the_test(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        count = await connection.scalar(
            text("SELECT count(*) FROM projects WHERE name = :name"),
            {"name": f"{_MARKER}-committed"},
        )
    assert count == 0
