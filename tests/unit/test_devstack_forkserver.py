"""`make dev`'s fork server: each service forked from the warm parent is its own process, with
the environment, output, name and exit status it was given, stopped by its signals, and
started again on request; closing the fork server stops what still runs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from sourcing.devstack.forkserver import ForkServer

PROBE = """
import os, signal, sys, time
print("probe", os.environ["PROBE"], sys.argv[0].endswith("probe_service.py"), flush=True)
print("name", open("/proc/self/comm").read().strip(), flush=True)
if os.environ.get("WAIT"):
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))
    time.sleep(60)
sys.exit(int(os.environ["CODE"]))
"""


@pytest.fixture(scope="module")
async def forkserver(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ForkServer]:
    tmp_path = tmp_path_factory.mktemp("forkserver")
    (tmp_path / "probe_service.py").write_text(PROBE)
    env = dict(os.environ) | {"PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    server = await ForkServer.start(env)
    yield server
    await server.close()


async def _lines(stream: asyncio.StreamReader) -> list[str]:
    return [line.decode().strip() async for line in stream]


async def test_a_forked_service_has_its_own_environment_output_name_and_exit_code(
    forkserver: ForkServer,
) -> None:
    first = await forkserver.spawn("first", "probe_service", {"PROBE": "one", "CODE": "3"})
    second = await forkserver.spawn("second", "probe_service", {"PROBE": "two", "CODE": "0"})
    assert first.pid != second.pid != os.getpid()
    assert await asyncio.wait_for(first.wait(), 30) == 3
    assert await asyncio.wait_for(second.wait(), 30) == 0
    assert await _lines(first.stdout) == ["probe one True", "name first"]
    assert await _lines(second.stdout) == ["probe two True", "name second"]
    again = await forkserver.spawn("first", "probe_service", {"PROBE": "again", "CODE": "0"})
    assert await asyncio.wait_for(again.wait(), 30) == 0


async def test_a_service_stops_on_its_signal_and_closing_stops_the_rest(  # runs last
    forkserver: ForkServer,
) -> None:
    env = {"PROBE": "p", "CODE": "0", "WAIT": "1"}
    stopped = await forkserver.spawn("stopped", "probe_service", env)
    left = await forkserver.spawn("left", "probe_service", env)
    for service in (stopped, left):  # both have installed their SIGTERM handler
        assert (await asyncio.wait_for(service.stdout.readline(), 30)).startswith(b"probe")
    stopped.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(stopped.wait(), 30) == 7
    await asyncio.wait_for(forkserver.close(), 30)
    assert left.returncode == 7


def test_preloading_registers_no_metric_a_service_would_not_expose_itself() -> None:
    """Every service imports the kernel's Kafka metrics; nothing else preloaded may register a
    metric family, or a forked service's /metrics would show another service's."""
    probe = (
        "import importlib, json, prometheus_client\n"
        "from sourcing.devstack.forkserver import PRELOAD\n"
        "names = lambda: set(prometheus_client.REGISTRY._names_to_collectors)\n"
        "importlib.import_module('sourcing.common.kafka.metrics')\n"
        "own = names()\n"
        "for module in PRELOAD: importlib.import_module(module)\n"
        "print(json.dumps(sorted(names() - own)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(result.stdout) == []
