"""google-sheets-sync against the Sheets API stub of the sandbox (in process): a tab per
project with a header, a row per expert appended once, updated in place, never duplicated;
each push a GoogleSheetExport; disabled (and quiet) when unconfigured."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.events import Envelope
from sourcing.common.messages.outreach import SheetSyncRequested
from sourcing.common.models import (
    Expert,
    GoogleSheetExport,
    GoogleSheetRowMap,
    OutboxMessage,
    Project,
)
from sourcing.ingestion.service import erase_expert
from sourcing.outreach.handlers import SheetSyncHandlers
from sourcing.outreach.service import SHEET_HEADER, tab_title
from sourcing.outreach.sheets import GoogleSheetsClient
from sourcing.sandbox.app import create_sandbox_app
from sourcing.sandbox.sheets import SHEETS_STATE
from tests.factories import create_expert_contact, create_project
from tests.factories_outreach import create_reachable_expert, rsa_test_key
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def sheets_settings(api_settings_factory: Callable[..., Settings]) -> Settings:
    pem, _ = rsa_test_key()
    key = {
        "type": "service_account",
        "client_email": "sync@project.iam.gserviceaccount.com",
        "private_key_id": "k1",
        "private_key": pem,
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    return api_settings_factory(
        GOOGLE_SHEETS_SERVICE_ACCOUNT_JSON=json.dumps(key),
        GOOGLE_SHEETS_SPREADSHEET_ID="sheet-test-1",
        SANDBOX_PROVIDERS=True,
        SANDBOX_URL="http://sandbox.test",
    )


@pytest.fixture
async def sheets(sheets_settings: Settings) -> AsyncIterator[GoogleSheetsClient]:
    SHEETS_STATE.pop("sheet-test-1", None)
    client = GoogleSheetsClient(
        sheets_settings, transport=httpx.ASGITransport(app=create_sandbox_app())
    )
    yield client
    await client.aclose()


async def _sync(
    handlers: SheetSyncHandlers, session: AsyncSession, project: Project, expert: Expert
) -> None:
    payload = SheetSyncRequested(project_id=project.id, entity_type="expert", entity_id=expert.id)
    await handlers.sync(session, Envelope.new(SheetSyncRequested.message_type, payload), payload)


async def _exports(session: AsyncSession) -> list[tuple[Any, ...]]:
    rows = (
        await session.execute(select(GoogleSheetExport).order_by(GoogleSheetExport.created_at))
    ).scalars()
    return [(e.operation, e.status, e.row_number) for e in rows]


async def test_create_update_in_place_and_no_duplicate_rows(
    session: AsyncSession, sheets_settings: Settings, sheets: GoogleSheetsClient
) -> None:
    handlers = SheetSyncHandlers(settings=sheets_settings, sheets=sheets)
    project = await create_project(session, name="Fintech / Payments")
    dana = await create_reachable_expert(session, full_name="Dana Scully", title="CFO")
    fox = await create_reachable_expert(session, email="fox@example.com", full_name="Fox Mulder")

    await _sync(handlers, session, project, dana)
    tab = tab_title(project)
    rows = SHEETS_STATE["sheet-test-1"][tab]
    assert rows[0][:2] == ["Expert ID", "Name"]
    assert rows[1][:3] == [str(dana.id), "Dana Scully", "CFO"]

    dana.title = "Chief Financial Officer"
    await session.flush()
    await _sync(handlers, session, project, dana)  # update in place
    await _sync(handlers, session, project, dana)  # unchanged: skipped
    await _sync(handlers, session, project, fox)  # a second expert: a new row
    rows = SHEETS_STATE["sheet-test-1"][tab]
    assert len(rows) == 3
    assert rows[1][:3] == [str(dana.id), "Dana Scully", "Chief Financial Officer"]
    assert rows[1][4] == "dana@example.com"
    assert rows[2][:2] == [str(fox.id), "Fox Mulder"]
    assert [r[0] for r in rows[1:]].count(str(dana.id)) == 1
    assert await _exports(session) == [
        ("APPEND", "SUCCEEDED", 2),
        ("UPDATE", "SUCCEEDED", 2),
        ("UPDATE", "SKIPPED", 2),
        ("APPEND", "SUCCEEDED", 3),
    ]
    maps = (await session.execute(select(GoogleSheetRowMap))).scalars().all()
    assert sorted((m.entity_id, m.row_number) for m in maps) == sorted([(dana.id, 2), (fox.id, 3)])


async def test_unconfigured_sync_is_disabled_and_acknowledged(
    session: AsyncSession,
    api_settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = GoogleSheetsClient(api_settings)
    handlers = SheetSyncHandlers(settings=api_settings, sheets=client)
    project = await create_project(session)
    expert = await create_reachable_expert(session)
    with caplog.at_level("INFO"):
        await _sync(handlers, session, project, expert)
        await _sync(handlers, session, project, expert)
    await client.aclose()
    assert await _exports(session) == []
    disabled = [r for r in caplog.records if "google sheets sync disabled" in r.getMessage()]
    assert len(disabled) == 1
    assert "GOOGLE_SHEETS_SPREADSHEET_ID" in disabled[0].getMessage()


async def test_region_rule_keeps_personal_mailboxes_out_of_the_row(
    session: AsyncSession, sheets_settings: Settings, sheets: GoogleSheetsClient
) -> None:
    handlers = SheetSyncHandlers(settings=sheets_settings, sheets=sheets)
    project = await create_project(session)
    gb = await create_reachable_expert(session, email="dana@acme-payments.co.uk", country_iso="GB")
    us = await create_reachable_expert(session, email="fox@acme.com", country_iso="US")
    for expert in (gb, us):
        await create_expert_contact(
            session, expert=expert, value="someone@gmail.com", value_normalized="someone@gmail.com",
            is_professional=None, is_primary=True,
        )  # fmt: skip
        await _sync(handlers, session, project, expert)
    rows = {row[0]: row for row in SHEETS_STATE["sheet-test-1"][tab_title(project)][1:]}
    assert "gmail.com" not in rows[str(gb.id)][4]
    assert rows[str(gb.id)][4] == "dana@acme-payments.co.uk"
    assert "someone@gmail.com" in rows[str(us.id)][4]  # the rule is the region's only


async def test_an_erased_expert_row_is_blanked_and_never_added(
    session: AsyncSession, sheets_settings: Settings, sheets: GoogleSheetsClient
) -> None:
    handlers = SheetSyncHandlers(settings=sheets_settings, sheets=sheets)
    project = await create_project(session)
    dana = await create_reachable_expert(session, full_name="Dana Scully", title="CFO")
    fox = await create_reachable_expert(session, email="fox@example.com", full_name="Fox Mulder")
    await _sync(handlers, session, project, dana)
    tab = tab_title(project)
    await erase_expert(session, dana.id, actor="admin:user-1", now=datetime.now(UTC))
    await erase_expert(session, fox.id, actor="admin:user-1", now=datetime.now(UTC))
    queued = (
        await session.scalars(
            select(OutboxMessage).where(OutboxMessage.topic == "google-sheets-sync")
        )
    ).all()
    assert [row.envelope["payload"]["entityId"] for row in queued] == [str(dana.id)]

    await session.refresh(dana)
    await session.refresh(fox)
    await _sync(handlers, session, project, dana)  # the queued clear
    await _sync(handlers, session, project, fox)  # a late sync of an erased expert

    rows = SHEETS_STATE["sheet-test-1"][tab]
    assert len(rows) == 2
    assert rows[1] == [""] * len(SHEET_HEADER)
    exports = (
        await session.scalars(select(GoogleSheetExport).order_by(GoogleSheetExport.created_at))
    ).all()
    assert [(e.operation, e.status, e.row_values) for e in exports] == [
        ("APPEND", "SUCCEEDED", {}),
        ("UPDATE", "SUCCEEDED", dict.fromkeys(SHEET_HEADER, "")),
    ]
