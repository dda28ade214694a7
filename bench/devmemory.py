"""``dev``: the memory of the whole ``make dev``, idle: every process it starts (the supervisor,
the fork server the services are forked from, the provider sandbox, the gateway, the six agent
services, PostgreSQL and the development broker), summed. A forked service keeps the fork
server's command line and carries its own name (``/proc/<pid>/comm``), which names its row.

``python -m sourcing.devstack.dev`` runs in a scratch directory (its own ``var/``: a fresh
PostgreSQL cluster and an in-memory Tansu broker) on free ports for the gateway and the
sandbox, until the gateway is ready; after a settle pause the process tree is read from
``/proc``. The target is on the proportional set size (PSS: a page shared by n processes counts
1/n in each), which sums to the memory the processes take together; the resident set size
(RSS) counts shared pages (PostgreSQL's shared buffers, the interpreter's and libraries' code)
once per process, so its sum is shown beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

from bench.harness import REPO, Figure, Result, Session, rss_mb
from sourcing.sandbox.server import free_port

DEV_TARGET_MB = 600.0
SETTLE_SECONDS = 10.0
READY_TIMEOUT_SECONDS = 240.0


def pss_mb(pid: int) -> float | None:
    """Proportional set size of a process in MiB (``Pss`` of ``/proc/<pid>/smaps_rollup``)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return None


def descendants(root: int) -> list[int]:
    """``root`` and every process below it (from the parent ids in ``/proc/<pid>/stat``)."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children[parent].append(int(entry.name))
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, []))
    return found


def role(pid: int, root: int) -> str:
    """Which part of ``make dev`` a process is, from its command line."""
    with contextlib.suppress(OSError):
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        words = [part.decode(errors="replace") for part in argv if part]
        if pid == root:
            return "supervisor (sourcing.devstack.dev)"
        if "-m" in words:
            module = words[words.index("-m") + 1]
            if module == "sourcing.devstack.forkserver":
                # The services forked from it keep its command line and carry their name.
                return Path(f"/proc/{pid}/comm").read_text().strip()
            return module.removeprefix("sourcing.")
        command = Path(words[0]).name if words else "?"
        if command.startswith(("postgres", "postmaster")) or "postgres" in " ".join(words[:1]):
            return "postgresql"
        if "tansu" in command:
            return "broker (tansu)"
        return command
    return "?"


async def run(session: Session) -> Result:
    workdir = Path(tempfile.mkdtemp(prefix="bench-dev-"))
    port, sandbox_port = free_port(), free_port()
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DATABASE_URL", "KAFKA_BROKER_URL", "BROKER")
    } | {
        "APP_ENV": "development",
        "LOG_LEVEL": "warn",
        "PORT": str(port),
        "SANDBOX_PORT": str(sandbox_port),
        "SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}",
        "PYTHONPATH": str(REPO),
    }
    log = workdir / "dev.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sourcing.devstack.dev",
            cwd=workdir,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=sink,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        started = time.monotonic()
        await _wait_ready(f"http://127.0.0.1:{port}/api/v1/system/ready", process, log)
        ready_s = time.monotonic() - started
        await asyncio.sleep(SETTLE_SECONDS)
        rss: dict[str, float] = defaultdict(float)
        pss: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)
        for pid in descendants(process.pid):
            name = role(pid, process.pid)
            rss[name] += rss_mb(pid) or 0.0
            pss[name] += pss_mb(pid) or 0.0
            counts[name] += 1
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 60)
            except TimeoutError:
                process.kill()
                await process.wait()
        shutil.rmtree(workdir, ignore_errors=True)

    figures = [
        Figure("make dev, all processes idle (PSS)", "MiB", sum(pss.values()), None, "max", 600),
        Figure("make dev, all processes idle (RSS summed)", "MiB", sum(rss.values())),
    ]
    figures += [
        Figure(f"{name} idle (PSS)", "MiB", pss[name])
        for name in sorted(pss, key=lambda n: -pss[n])
    ]

    def table(values: dict[str, float]) -> dict[str, Any]:
        return {name: round(value, 1) for name, value in sorted(values.items())}

    return Result(
        name="dev",
        description="memory of the whole `make dev` (every process it starts), idle",
        parameters={"settle_s": SETTLE_SECONDS, "ready_s": round(ready_s, 1)},
        figures=figures,
        platform={"pss_mb": table(pss), "rss_mb": table(rss), "processes": dict(counts)},
        notes=[
            "PSS divides each shared page among the processes sharing it, so its sum is what "
            "the processes take together; the RSS sum counts shared pages once per process",
            "broker: Tansu (the development default); PostgreSQL: every server process",
        ],
    )


async def _wait_ready(url: str, process: asyncio.subprocess.Process, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                tail = await asyncio.to_thread(log.read_text, errors="replace")
                raise RuntimeError(f"make dev exited:\n{tail[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.5)
    raise TimeoutError(f"make dev not ready in {READY_TIMEOUT_SECONDS:.0f} s")
