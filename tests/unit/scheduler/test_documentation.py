"""The documentation generator renders from the code: deterministic, complete, no drift."""

from __future__ import annotations

import inspect
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sourcing.common.events import MESSAGE_TYPES
from sourcing.common.statemachines import MACHINES
from sourcing.common.topics import EVERY_AGENT, LANES
from sourcing.scheduler.app import build_app
from sourcing.scheduler.cycle import slot_start
from sourcing.scheduler.documentation import (
    ARCHITECTURE,
    ENVIRONMENT,
    STATE_MACHINES,
    parse_env_example,
    render_documents,
    write_documents,
)
from sourcing.scheduler.handlers import STEPS
from sourcing.scheduler.topology import SERVICES
from tests.fixtures.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[3]
ENV_EXAMPLE = (REPO / ".env.example").read_text(encoding="utf-8")
_EDGE = re.compile(r"^\s+([A-Z_]+) --> ([A-Z_]+)(?::.*)?$")


@pytest.fixture
def settings() -> Settings:
    return load_settings(APP_ENV="test")


def mermaid_blocks(markdown: str) -> dict[str, str]:
    """``## name`` section → its mermaid block."""
    blocks: dict[str, str] = {}
    for section in markdown.split("\n## ")[1:]:
        name = section.split("\n", 1)[0].strip()
        match = re.search(r"```mermaid\n(.*?)```", section, re.S)
        if match:
            blocks[name] = match.group(1)
    return blocks


def test_state_machine_docs_match_the_transition_tables(settings: Settings) -> None:
    document = render_documents(settings, env_example=ENV_EXAMPLE)[STATE_MACHINES]
    blocks = mermaid_blocks(document)
    assert set(blocks) == set(MACHINES)
    for name, machine in MACHINES.items():
        edges = {m.groups() for line in blocks[name].splitlines() if (m := _EDGE.match(line))}
        assert edges == set(machine.transitions), name
        assert f"[*] --> {machine.initial}" in blocks[name]
        terminal = {
            line.split(" --> ")[0].strip()
            for line in blocks[name].splitlines()
            if line.endswith("--> [*]")
        }
        assert terminal == set(machine.terminal), name
        # Additions to the manual are labelled as such, manual moves are not.
        for a, b in machine.transitions:
            labelled = f"    {a} --> {b}: not in manual" in blocks[name]
            assert labelled == ((a, b) in machine.additions), (name, a, b)


def test_regeneration_gives_identical_files(settings: Settings, tmp_path: Path) -> None:
    first = write_documents(tmp_path / "a", render_documents(settings, env_example=ENV_EXAMPLE))
    second = write_documents(tmp_path / "b", render_documents(settings, env_example=ENV_EXAMPLE))
    assert first == second
    for entry in first:
        assert (tmp_path / "a" / entry["path"]).read_bytes() == (
            tmp_path / "b" / entry["path"]
        ).read_bytes()
    assert {entry["path"] for entry in first} == {
        "README.md",
        "architecture.md",
        "environment.md",
        "runbooks.md",
        "state-machines.md",
    }
    text = "".join((tmp_path / "a" / e["path"]).read_text() for e in first)
    assert not re.search(r"20\d\d-\d\d-\d\dT", text), "no timestamps in generated content"
    assert str(tmp_path) not in text


def test_environment_checklist_lists_every_setting_with_its_description(
    settings: Settings,
) -> None:
    document = render_documents(settings, env_example=ENV_EXAMPLE)[ENVIRONMENT]
    rows = {
        line.split(" | ")[0].strip("| `"): line.split(" | ")
        for line in document.splitlines()
        if line.startswith("| `")
    }
    assert set(rows) == set(Settings.model_fields)
    assert rows["PORT"][1] == "`3000`"
    assert rows["JWT_SECRET"][2] == "outside development"
    assert rows["DATABASE_POOL_SIZE"][2] == "no"
    assert "once per interval" in rows["SCHEDULER_INTERVAL_SECONDS"][3]
    assert rows["DEAD_LETTER_RETENTION_DAYS"][1] == "`30`"
    assert "## Scheduler, dead letters, documentation" in document


def test_env_example_parsing_takes_the_comment_block_above_each_variable() -> None:
    parsed = parse_env_example(
        "# --- Core ---\n# first line\n# second line\nPORT=3000\nBARE=1\n\n# gap\n\nAFTER=2\n"
    )
    assert parsed["PORT"].section == "Core"
    assert parsed["PORT"].description == "first line second line"
    assert parsed["BARE"].description == ""
    assert parsed["AFTER"].description == ""


def test_architecture_has_every_lane_with_partitions_key_producers_consumers(
    settings: Settings,
) -> None:
    document = render_documents(settings, env_example=ENV_EXAMPLE)[ARCHITECTURE]
    topics = document.split("## Topics", 1)[1]
    for lane in LANES:
        row = next(line for line in topics.splitlines() if line.startswith(f"| `{lane.name}`"))
        cells = [cell.strip() for cell in row.strip("|").split(" | ")]
        assert cells[1:5] == [
            str(lane.partitions),
            lane.key,
            str(lane.retention_days),
            ", ".join(lane.producers),
        ]
        assert cells[5] == ", ".join(lane.consumers)


def test_every_lane_is_produced_and_consumed_by_listed_services() -> None:
    services = set(SERVICES)
    for lane in LANES:
        assert lane.consumers and set(lane.consumers) <= services, lane
        assert lane.producers and set(lane.producers) <= services | {EVERY_AGENT}, lane


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC), datetime(2025, 1, 1, 12, 0, tzinfo=UTC)),
        (datetime(2025, 1, 1, 12, 0, 59, 999, tzinfo=UTC), datetime(2025, 1, 1, 12, 0, tzinfo=UTC)),
        (datetime(2025, 1, 1, 12, 1, 0, tzinfo=UTC), datetime(2025, 1, 1, 12, 1, tzinfo=UTC)),
    ],
)
def test_interval_slots_are_aligned(now: datetime, expected: datetime) -> None:
    assert slot_start(now, 60) == expected


def test_topology_matches_what_the_scheduler_really_consumes_and_produces(
    settings: Settings, tmp_path: Path
) -> None:
    app = build_app(settings, web_enabled=False, datadir=tmp_path / "faust")
    consumed = {consumer.lane for consumer in app.runtime.consumers.values()}
    assert consumed == {lane.name for lane in LANES if "scheduler" in lane.consumers}
    # The lanes the cycle's steps write to: those of the messages their source builds.
    produced = {
        model.lane
        for _, step in STEPS
        for model in MESSAGE_TYPES.values()
        if re.search(rf"\b{model.__name__}\(", inspect.getsource(step))
    }
    assert produced == {lane.name for lane in LANES if "scheduler" in lane.producers}
