"""The operator CLI (`sourcing`) against the real gateway on a real port, the real database and
the broker: the Typer app runs in a worker thread (its HTTP calls are blocking) while uvicorn
serves the gateway in the test's event loop. The CLI imports nothing of the platform
(lint-imports), so everything here crosses HTTP."""

from __future__ import annotations

import asyncio
import json
import stat
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from click.testing import Result
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from sourcing.cli.main import app
from sourcing.common.auth import Principal, Role, mint_token
from sourcing.common.kafka.app import app_id_for
from tests.factories import (
    create_call_task,
    create_caller,
    create_dead_letter_job,
    create_enrichment_attempt,
    create_lead,
    create_project,
)
from tests.fixtures.api import serve_gateway_http
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

Cli = Callable[..., Awaitable[Result]]


def _runner(url: str, config: Path) -> Cli:
    runner = CliRunner()

    async def run(*args: str, token: str | None = None) -> Result:
        env = {
            "SOURCING_API_URL": url,
            "SOURCING_CONFIG": str(config),
            "SOURCING_TOKEN": token,
            "COLUMNS": "200",
        }
        return await asyncio.to_thread(runner.invoke, app, list(args), env=env)

    return run


@pytest.fixture
async def cli(
    api_settings: Settings,
    sessionmaker_rolled_back: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> AsyncIterator[Cli]:
    """`await cli("projects", "list")`: the CLI on the gateway (this test's transaction),
    logged in as an admin through `sourcing login`."""
    async with serve_gateway_http(api_settings, sessionmaker_rolled_back) as url:
        run = _runner(url, tmp_path / "sourcing" / "config.toml")
        logged_in = await run("login", "--user", "ops-lead", "--role", "admin")
        assert logged_in.exit_code == 0, logged_in.output
        yield run


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


async def test_login_stores_the_token_and_the_environment_wins(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "sourcing" / "config.toml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert 'token = "' in config.read_text()
    me = _json(await cli("whoami", "--json"))
    assert me == {"userId": "ops-lead", "role": "admin"}

    rejected = await cli("whoami", token="not-a-token")
    assert rejected.exit_code == 1
    assert "unauthorized (HTTP 401)" in rejected.stderr

    minted = await cli("token", "mint", "--user", "caller@example.com", "--role", "caller")
    assert minted.exit_code == 0, minted.output
    caller = _json(await cli("whoami", "--json", token=minted.stdout.strip()))
    assert caller == {"userId": "caller@example.com", "role": "caller"}
    assert _json(await cli("whoami", "--json"))["userId"] == "ops-lead"  # file unchanged


async def test_projects_create_list_pause_resume(cli: Cli) -> None:
    name = f"CLI project {uuid.uuid4().hex[:6]}"
    created = _json(
        await cli(
            "projects",
            "create",
            "--name",
            name,
            "--target",
            "5",
            "--geo",
            "SG",
            "--geo",
            "JP",
            "--json",
        )
    )
    assert created["geographyIsoCodes"] == ["SG", "JP"]
    assert created["status"] == "ACTIVE"
    project_id = created["id"]
    second = await cli("projects", "create", "--name", f"{name} b", "--target", "1", "--geo", "US")
    assert second.exit_code == 0, second.output
    assert f"{name} b" in second.stdout

    listed = await cli("projects", "list")
    assert listed.exit_code == 0, listed.output
    assert name in listed.stdout

    first_page = _json(await cli("projects", "list", "--limit", "1", "--json"))
    assert len(first_page["items"]) == 1 and first_page["nextCursor"]
    every = _json(await cli("projects", "list", "--limit", "1", "--all", "--json"))
    names = {item["name"] for item in every["items"]}
    assert {name, f"{name} b"} <= names
    assert every["nextCursor"] is None

    assert _json(await cli("projects", "pause", project_id, "--json"))["status"] == "PAUSED"
    paused = _json(await cli("projects", "list", "--status", "PAUSED", "--json"))
    assert [item["id"] for item in paused["items"]] == [project_id]
    assert _json(await cli("projects", "resume", project_id, "--json"))["status"] == "ACTIVE"
    assert _json(await cli("projects", "show", project_id, "--json"))["status"] == "ACTIVE"


async def test_an_api_error_prints_the_envelope_and_exits_non_zero(cli: Cli) -> None:
    created = _json(
        await cli(
            "projects", "create", "--name", "Errors", "--target", "1", "--geo", "US", "--json"
        )
    )
    archived = await cli("projects", "archive", created["id"])
    assert archived.exit_code == 0, archived.output
    again = await cli("projects", "pause", created["id"])  # ARCHIVED is final
    assert again.exit_code == 1
    assert "error: invalid_transition (HTTP 409)" in again.stderr
    assert '"from": "ARCHIVED"' in again.stderr
    assert again.stdout == ""

    missing = await cli("projects", "show", str(uuid.uuid4()), "--json")
    assert missing.exit_code == 1
    assert "not_found (HTTP 404)" in missing.stderr

    bad = await cli("projects", "show", "not-a-uuid")
    assert bad.exit_code == 1
    assert "invalid_payload (HTTP 400)" in bad.stderr


async def test_suppressions_add_list_remove(cli: Cli) -> None:
    added = _json(
        await cli(
            "suppressions",
            "add",
            "--kind",
            "EMAIL",
            "--value",
            "Dana@ACME.example",
            "--note",
            "asked by phone",
            "--json",
        )
    )
    assert added["kind"] == "EMAIL" and added["value"] == "dana@acme.example"
    again = _json(
        await cli(
            "suppressions", "add", "--kind", "EMAIL", "--value", "dana@acme.example", "--json"
        )
    )
    assert again["id"] == added["id"]  # idempotent

    table = await cli("suppressions", "list", "--kind", "EMAIL")
    assert table.exit_code == 0, table.output
    assert "dana@acme.example" in table.stdout
    found = _json(
        await cli(
            "suppressions", "list", "--kind", "EMAIL", "--value", "DANA@acme.example", "--json"
        )
    )
    assert [item["id"] for item in found["items"]] == [added["id"]]

    removed = await cli("suppressions", "remove", added["id"])
    assert removed.exit_code == 0, removed.output
    left = _json(await cli("suppressions", "list", "--kind", "EMAIL", "--json"))
    assert added["id"] not in {item["id"] for item in left["items"]}

    unknown_kind = await cli("suppressions", "add", "--kind", "FAX", "--value", "1")
    assert unknown_kind.exit_code == 2  # refused by the CLI before any request


async def test_callers_and_call_tasks(cli: Cli, session: AsyncSession) -> None:
    caller = await create_caller(session)
    task = await create_call_task(session, caller=caller, status="ASSIGNED")

    listed = await cli("callers", "list")
    assert listed.exit_code == 0, listed.output
    assert caller.email in listed.stdout
    shown = _json(await cli("callers", "show", str(caller.id), "--json"))
    assert shown["email"] == caller.email

    tasks = _json(await cli("call-tasks", "list", "--status", "ASSIGNED", "--json"))
    assert str(task.id) in {item["id"] for item in tasks["items"]}
    requeued = _json(
        await cli("call-tasks", "requeue", str(task.id), "--reason", "caller left", "--json")
    )
    assert requeued["status"] == "PENDING" and requeued["callerId"] is None

    paused = await cli(
        "callers", "status", str(caller.id), "--action", "pause", "--reason", "too few dials"
    )
    assert paused.exit_code == 0, paused.output
    assert "PAUSED_LOW_DIAL_RATE" in paused.stdout
    refused = await cli(
        "callers", "status", str(caller.id), "--action", "pause", "--reason", "again"
    )
    assert refused.exit_code == 1
    assert "invalid_transition" in refused.stderr


async def test_dead_letters_list_show_replay(cli: Cli, session: AsyncSession) -> None:
    row = await create_dead_letter_job(session, error="RuntimeError: provider exploded")
    listed = await cli("dead-letters", "list")
    assert listed.exit_code == 0, listed.output
    assert "provider exploded" in listed.stdout
    page = _json(await cli("dead-letters", "list", "--json"))
    assert str(row.id) in {item["id"] for item in page["items"]}
    shown = _json(await cli("dead-letters", "show", str(row.id), "--json"))
    assert shown["payload"] == row.payload
    replay = await cli("dead-letters", "replay", str(uuid.uuid4()))
    assert replay.exit_code == 1
    assert "not found" in replay.stderr


async def test_costs_and_providers(cli: Cli, session: AsyncSession) -> None:
    project = await create_project(session, enrichment_budget_credits=10.0)
    lead = await create_lead(session, project=project)
    for provider, credits in (("leadmagic", 1.0), ("leadmagic", 0.0), ("prospeo", 2.5)):
        await create_enrichment_attempt(
            session, expert_id=lead.expert_id, lead_id=lead.id, provider=provider, credits=credits
        )
    report = _json(await cli("costs", str(project.id), "--json"))
    assert report["totalCredits"] == 3.5 and report["remainingCredits"] == 6.5
    assert [(row["provider"], row["credits"]) for row in report["providers"]] == [
        ("leadmagic", 1.0),
        ("prospeo", 2.5),
    ]
    shown = await cli("costs", str(project.id))
    assert shown.exit_code == 0, shown.output
    assert "prospeo" in shown.stdout and "remainingCredits" in shown.stdout

    unknown = await cli("costs", str(uuid.uuid4()))
    assert unknown.exit_code == 1
    assert "not found" in unknown.stderr

    listed = _json(await cli("providers", "--json"))
    assert [item["key"] for item in listed["items"]][:2] == ["leadmagic", "prospeo"]
    table = await cli("providers")
    assert table.exit_code == 0, table.output
    assert "breakerState" in table.stdout and "CLOSED" in table.stdout


async def test_an_unreachable_api_exits_3(tmp_path: Path) -> None:
    run = _runner("http://127.0.0.1:9", tmp_path / "config.toml")
    result = await run("projects", "list", token="anything")
    assert result.exit_code == 3
    assert "cannot reach the API at http://127.0.0.1:9" in result.stderr


async def test_the_installed_script(
    api_settings: Settings,
    sessionmaker_rolled_back: async_sessionmaker[AsyncSession],
    token_for: Callable[..., str],
    tmp_path: Path,
) -> None:
    """`sourcing` as the workspace installs it, in its own process."""
    script = Path(sys.executable).parent / "sourcing"
    async with serve_gateway_http(api_settings, sessionmaker_rolled_back) as url:
        process = await asyncio.create_subprocess_exec(
            str(script),
            "projects",
            "list",
            "--json",
            env={
                "SOURCING_API_URL": url,
                "SOURCING_TOKEN": token_for("ops"),
                "SOURCING_CONFIG": str(tmp_path / "none.toml"),
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()
    assert set(json.loads(stdout)) >= {"items", "nextCursor"}


async def test_lag_per_consumer_group(kafka_settings: Settings, tmp_path: Path) -> None:
    """Offsets committed by a group of this environment on a lane, against the end offset;
    another environment's group on the same topic is not reported."""
    topic = kafka_settings.topic("call-allocation")
    bootstrap = kafka_settings.KAFKA_BROKER_URL
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for n in range(5):
            await producer.send_and_wait(topic, f"m{n}".encode(), partition=0)
    finally:
        await producer.stop()
    ours = app_id_for("cli-test", kafka_settings)
    for group, offset in ((ours, 2), (f"elsewhere-{uuid.uuid4().hex[:6]}", 1)):
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, 0)])
            await consumer.commit({TopicPartition(topic, 0): offset})
        finally:
            await consumer.stop()

    async with serve_gateway_http(kafka_settings) as url:
        run = _runner(url, tmp_path / "config.toml")
        admin = mint_token(kafka_settings, Principal(user_id="ops-lead", role=Role.ADMIN))
        report = _json(await run("lag", "--json", token=admin))
        table = await run("lag", token=admin)
        only_ours = _json(await run("lag", "--group", ours, "--json", token=admin))
        nobody = _json(await run("lag", "--group", "no-such-group", "--json", token=admin))
        ops = mint_token(kafka_settings, Principal(user_id="ops-1", role=Role.OPS))
        as_ops = await run("lag", token=ops)

    expected = {
        "group": ours,
        "topic": topic,
        "partition": 0,
        "committedOffset": 2,
        "endOffset": 5,
        "lag": 3,
    }
    assert report == {"partitions": [expected], "totalLag": 3}
    assert only_ours == report
    assert nobody == {"partitions": [], "totalLag": 0}
    assert table.exit_code == 0 and ours in table.stdout and "total lag: 3" in table.stderr
    assert as_ops.exit_code == 1 and "forbidden (HTTP 403)" in as_ops.stderr
