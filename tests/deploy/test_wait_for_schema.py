"""The Deployments' wait-for-schema init container, run as written in the manifest against the
real PostgreSQL: it waits while the database is unmigrated and finishes once the migrate Job
has brought the schema to head."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sourcing.common.migrate import upgrade
from tests.deploy.support import REPO
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.timeout(180)


def _init_command() -> list[str]:
    deployment = next(yaml.safe_load_all((REPO / "deploy/k8s/api.yaml").read_text()))
    (init,) = deployment["spec"]["template"]["spec"]["initContainers"]
    command: list[str] = init["command"]
    return command


def _environment(database_url: str) -> dict[str, str]:
    """The container's: this interpreter's `python` first on PATH, as the image's venv is."""
    env = {k: v for k, v in os.environ.items() if k not in Settings.model_fields}
    path = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env | {"PATH": path, "APP_ENV": "test", "DATABASE_URL": database_url}


def _start(database_url: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        _init_command(),
        env=_environment(database_url),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


async def test_init_container_waits_until_the_schema_is_migrated(
    empty_database_url: str, tmp_path: Path
) -> None:
    process = _start(empty_database_url, tmp_path)
    try:
        assert process.stdout is not None
        output = []  # read until the first probe has failed (or the command ended)
        while line := process.stdout.readline():
            output.append(line)
            if "waiting for the migrate Job" in line:
                break
        assert "waiting for the migrate Job" in output[-1], "".join(output)
        assert process.poll() is None
        upgrade(empty_database_url)  # what the migrate Job does
        assert process.wait(timeout=120) == 0
    finally:
        process.kill()
        process.wait()


def test_init_container_passes_at_once_on_a_migrated_database(
    migrated_database_url: str, tmp_path: Path
) -> None:
    completed = subprocess.run(
        _init_command(),
        env=_environment(migrated_database_url),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "waiting" not in completed.stdout
