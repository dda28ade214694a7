"""Every service compares the database's schema revision with the code's head before it
serves anything, and refuses to start (non-zero exit, both revisions named) when they differ."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from sourcing.common.config import to_asyncpg_url
from sourcing.common.migrate import SchemaMismatch, check_schema, head_revision, upgrade
from sourcing.devstack._process import free_port, port_accepts

pytestmark = pytest.mark.integration

UNKNOWN = "9999_from_a_newer_release"


async def _stamp(database_url: str, revision: str) -> None:
    engine = create_async_engine(to_asyncpg_url(database_url))
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text("UPDATE alembic_version SET version_num = :revision"), {"revision": revision}
            )
    finally:
        await engine.dispose()


@pytest.fixture
async def newer_database_url(empty_database_url: str) -> str:
    """A database migrated by a newer release (a revision this code does not know)."""
    await asyncio.to_thread(upgrade, empty_database_url)
    await _stamp(empty_database_url, UNKNOWN)
    return empty_database_url


async def test_database_at_head_passes(migrated_database_url: str) -> None:
    await check_schema(migrated_database_url, timeout=10)


async def test_never_migrated_database_is_refused_naming_both_revisions(
    empty_database_url: str,
) -> None:
    with pytest.raises(SchemaMismatch) as refused:
        await check_schema(empty_database_url, timeout=10)
    message = str(refused.value)
    assert "none (never migrated)" in message and head_revision() in message
    assert "migrate upgrade head" in message


async def test_unknown_newer_revision_is_refused(newer_database_url: str) -> None:
    with pytest.raises(SchemaMismatch) as refused:
        await check_schema(newer_database_url, timeout=10)
    message = str(refused.value)
    assert UNKNOWN in message and head_revision() in message and "newer release" in message


async def _run_service(module: str, database_url: str, *args: str, **env: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        env={
            **os.environ,
            "APP_ENV": "test",
            "DATABASE_URL": database_url,
            "METRICS_PORT": "0",
            "AGENT_WEB_PORT": "0",
            **env,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(60):
            output, _ = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


async def test_gateway_with_an_older_schema_exits_without_serving(empty_database_url: str) -> None:
    port = free_port()
    code, output = await _run_service("sourcing.api", empty_database_url, PORT=str(port))
    assert code != 0, output
    assert "api: refusing to start" in output and head_revision() in output, output
    assert not port_accepts(port)


async def test_agent_service_with_a_newer_schema_exits(newer_database_url: str) -> None:
    code, output = await _run_service("sourcing.allocation", newer_database_url)
    assert code != 0, output
    assert "allocation: refusing to start" in output and UNKNOWN in output, output


async def test_downgrade_needs_an_explicit_revision(migrated_database_url: str) -> None:
    code, output = await _run_service("sourcing.common.migrate", migrated_database_url, "downgrade")
    assert code == 2, output
    assert "required: revision" in output, output
    await check_schema(migrated_database_url, timeout=10)  # nothing was dropped
