"""deploy/Dockerfile, checked statically (no Docker here): locked dependencies in a layer
before the code, a non-root runtime, and a HEALTHCHECK that probes the right endpoint (run
against a local server)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from tests.deploy.support import AGENTS, API, REPO, build_settings

Instruction = tuple[str, str]


def instructions() -> list[Instruction]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = (REPO / "deploy/Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return [
        (parts[0].upper(), parts[1] if len(parts) > 1 else "")
        for line in joined.splitlines()
        if (parts := line.strip().split(None, 1))
    ]


def stages() -> dict[str, list[Instruction]]:
    result: dict[str, list[Instruction]] = {}
    current: list[Instruction] = []
    for instruction, args in instructions():
        if instruction == "FROM":
            current = []
            result[args.split(" AS ")[-1].strip()] = current
        else:
            current.append((instruction, args))
    return result


def test_locked_dependencies_are_installed_before_the_code_is_copied() -> None:
    build = stages()["build"]
    syncs = [i for i, (ins, args) in enumerate(build) if ins == "RUN" and "uv sync" in args]
    code = [
        i
        for i, (ins, args) in enumerate(build)
        if ins == "COPY" and "--from" not in args and re.search(r"\b(libs|services)\b", args)
    ]
    assert len(syncs) == 2 and code, (syncs, code)
    dependencies, workspace = (build[i][1] for i in syncs)
    # First only third-party dependencies, from the lock, before any source file is there.
    assert syncs[0] < min(code) < syncs[1]
    for args in (dependencies, workspace):
        assert "--frozen" in args and "--no-dev" in args
        assert '--package "sourcing-${SERVICE}"' in args
    assert "--no-install-workspace" in dependencies
    assert "--no-editable" in workspace
    copied_before = [args for ins, args in build[: syncs[0]] if ins == "COPY"]
    assert copied_before == ["pyproject.toml uv.lock ./", "--from=manifests /src ./"]
    # The manifests stage keeps nothing but the pyproject files.
    manifests = stages()["manifests"]
    assert ("RUN", "find libs services -type f ! -name pyproject.toml -delete") in manifests


def test_runtime_is_slim_and_runs_as_a_non_root_user() -> None:
    assert all("-slim" in args for ins, args in instructions() if ins == "FROM")
    runtime = stages()["runtime"]
    users = [args for ins, args in runtime if ins == "USER"]
    assert users == ["10001:10001"]
    assert [ins for ins, _ in runtime].index("USER") < [ins for ins, _ in runtime].index("CMD")
    assert ("COPY", "--from=build /opt/venv /opt/venv") in runtime  # no sources, no uv


class _Probe(BaseHTTPRequestHandler):
    paths: list[str] = []  # noqa: RUF012  (shared by design: the test reads it)

    def do_GET(self) -> None:
        self.paths.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def probe_server() -> Iterator[tuple[int, list[str]]]:
    server = HTTPServer(("127.0.0.1", 0), _Probe)
    _Probe.paths = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], _Probe.paths
    finally:
        server.shutdown()
        server.server_close()


def _healthcheck_command() -> list[str]:
    (args,) = [args for ins, args in stages()["runtime"] if ins == "HEALTHCHECK"]
    command: list[str] = json.loads(args.split(" CMD ", 1)[1])
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


def _run_healthcheck(env: dict[str, str], tmp_path: Path) -> int:
    base = {k: v for k, v in os.environ.items() if k not in ("PORT", "METRICS_PORT")}
    return subprocess.run(
        _healthcheck_command(), env=base | env, cwd=tmp_path, timeout=30, check=False
    ).returncode


@pytest.mark.parametrize("service", [API, *AGENTS])
def test_healthcheck_probes_the_services_readiness_endpoint(
    service: str, probe_server: tuple[int, list[str]], tmp_path: Path
) -> None:
    port, paths = probe_server
    variable = "PORT" if service == API else "METRICS_PORT"
    env = {"SOURCING_SERVICE": service, variable: str(port)}
    assert _run_healthcheck(env, tmp_path) == 0
    settings = build_settings({"APP_ENV": "test"})
    assert paths == ["/api/v1/system/ready" if service == API else "/health/ready"]
    # Without the variable it probes the settings' default port.
    default = settings.PORT if service == API else settings.METRICS_PORT
    assert str(default) in _healthcheck_command()[2]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens here any more


def test_healthcheck_fails_when_nothing_answers(tmp_path: Path) -> None:
    assert _run_healthcheck({"SOURCING_SERVICE": API, "PORT": str(_closed_port())}, tmp_path) != 0
