"""The load generator: ``python -m bench.loadgen`` reads a :class:`LoadSpec` (JSON) on stdin,
drives the server over its own keep-alive HTTP/1.1 connections and prints a JSON report.

It runs in its own process so that its CPU is not the server's, and reports its own CPU time
(``cpu_seconds``): a generator using most of a core would be the bottleneck, not the server.
The client is a few lines of asyncio streams on purpose (no pooling, no header objects): on
two cores an HTTP library's per-request overhead shows up in the server's figures.

Modes
-----
``closed``  every connection sends its next step as soon as the previous one is answered
            (saturation: throughput and the latency it costs).
``open``    ``rate`` steps per second in total, spread evenly over the connections, each on
            a fixed schedule with a random phase; latency counts from the *scheduled* start,
            so a server falling behind shows as latency instead of a slower schedule.
Either stops at ``duration`` seconds or after ``max_steps`` steps.

A *step* is one scenario action (:data:`SCENARIOS`): a signed Yay call (three events), a
Sales Nav delivery, or a caller asking for their current task and releasing it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit


class HttpError(Exception):
    """The server closed the connection or answered something that is not HTTP/1.1."""


class Connection:
    """One keep-alive HTTP/1.1 connection; requests on it are sequential."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self._reader, self._writer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, bytes]:
        """Send one request, return (status, body); reconnects once if the peer hung up."""
        try:
            return await self._exchange(method, path, headers, body)
        except (HttpError, ConnectionError, asyncio.IncompleteReadError):
            self.close()
            return await self._exchange(method, path, headers, body)

    async def _exchange(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes]:
        reader, writer = await self._open()
        head = [f"{method} {path} HTTP/1.1", f"host: {self.host}:{self.port}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        if body or method != "GET":
            head.append(f"content-length: {len(body)}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        status_line, *lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise HttpError(status_line)
        length, chunked, close = 0, False, False
        for line in lines:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif name == "connection":
                close = value.strip().lower() == "close"
        if chunked:
            payload = bytearray()
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                payload += (await reader.readexactly(size + 2))[:-2]
            await reader.readuntil(b"\r\n")
            content = bytes(payload)
        else:
            content = await reader.readexactly(length)
        if close:
            self.close()
        return int(parts[1]), content


@dataclass
class LoadSpec:
    url: str
    scenario: str
    params: dict[str, Any] = field(default_factory=dict)
    mode: str = "closed"
    connections: int = 64
    duration: float = 10.0
    rate: float = 0.0
    max_steps: int = 0
    warmup_steps: int = 0


@dataclass
class Report:
    started_at: float = 0.0  # wall clock of the first measured step
    elapsed: float = 0.0
    cpu_seconds: float = 0.0
    steps: int = 0
    statuses: dict[str, dict[str, int]] = field(default_factory=dict)
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    # (tag, wall-clock time the accepting response arrived) for end-to-end measurements
    tags: list[tuple[str, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Recorder:
    """Collects what the steps observe (nothing during warm-up)."""

    def __init__(self) -> None:
        self.report = Report()
        self.enabled = False

    def add(self, label: str, started: float, status: int) -> None:
        if not self.enabled:
            return
        latency = (time.perf_counter() - started) * 1000
        self.report.latencies_ms.setdefault(label, []).append(latency)
        counts = self.report.statuses.setdefault(label, {})
        counts[str(status)] = counts.get(str(status), 0) + 1

    def tag(self, tag: str) -> None:
        if self.enabled:
            self.report.tags.append((tag, time.time()))

    def error(self, message: str) -> None:
        if self.enabled and len(self.report.errors) < 20:
            self.report.errors.append(message)


# A step: (connection, connection index, step number, scheduled start, recorder).
Step = Callable[[Connection, int, int, float, Recorder], Awaitable[None]]


def yay_scenario(params: dict[str, Any]) -> Step:
    """One Yay call per step: ``call.started``, ``call.answered``, ``call.ended``, each signed.

    ``call.ended`` carries ``x-correlation-id: <run>-<call>`` and is tagged with it, so the
    end-to-end benchmark can find the metric row that event produced.
    """
    secret = str(params["secret"]).encode()
    run = str(params.get("run", uuid.uuid4().hex[:8]))
    callers = int(params.get("callers", 100))
    email = str(params.get("email", "bench-caller-{}@example.com"))

    async def step(
        conn: Connection, worker: int, number: int, started: float, rec: Recorder
    ) -> None:
        # warm-up calls get their own prefix: only measured calls match "<run>-%"
        call = f"{run}{'' if rec.enabled else 'w'}-{worker}-{number}"
        for event in ("call.started", "call.answered", "call.ended"):
            body = json.dumps(
                {
                    "event": event,
                    "callId": f"bench-{call}",
                    "occurredAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "agentEmail": email.format((worker * 7919 + number) % callers),
                    "from": "+442071234567",
                    "to": "+14155550100",
                    "direction": "outbound",
                    "durationSeconds": 42,
                    "talkSeconds": 38,
                    "recordingUrl": None,
                    "metadata": {},
                }
            ).encode()
            headers = {
                "content-type": "application/json",
                "x-yay-signature": hmac.new(secret, body, hashlib.sha256).hexdigest(),
                "x-yay-timestamp": str(int(time.time())),
                "x-yay-event-id": f"{call}-{event}",
                "x-correlation-id": call,
            }
            status, content = await conn.request("POST", "/webhooks/yay", headers, body)
            rec.add("webhook", started, status)
            if status != 202:
                rec.error(f"{status} {content[:200]!r}")
            elif event == "call.ended":
                rec.tag(call)
            started = time.perf_counter()

    return step


def sales_nav_scenario(params: dict[str, Any]) -> Step:
    """One Sales Nav delivery of ``per_webhook`` leads per step, all on the sandbox's fast,
    high-confidence persona (``standard`` in the name and in the profile slug)."""
    secret = str(params["secret"])
    project = str(params["project_id"])
    run = str(params["run"])
    size = int(params.get("per_webhook", 100))

    async def step(
        conn: Connection, worker: int, number: int, started: float, rec: Recorder
    ) -> None:
        first = number * size
        leads = [
            {
                "name": f"Bench Standard{'x' * (i % 3)}",
                "company": f"Acme {i}",
                "title": "VP Payments",
                # lookups by profile use the slug's digit-free segments as the sandbox
                # person: "standard" keeps them on the fast persona too
                "linkedinUrl": f"https://www.linkedin.com/in/bench-standard-{run}-{i}",
                "companyDomain": f"acme{i}.com",
                "countryIso": "US",
            }
            for i in range(first, first + size)
        ]
        body = json.dumps(
            {
                "projectId": project,
                "searchUrl": f"https://linkedin.com/sales/search/bench-{run}",
                "leads": leads,
            }
        ).encode()
        headers = {"content-type": "application/json", "x-sales-nav-secret": secret}
        status, content = await conn.request("POST", "/webhooks/sales-nav", headers, body)
        rec.add("webhook", started, status)
        if status != 202:
            rec.error(f"{status} {content[:200]!r}")

    return step


def allocation_scenario(params: dict[str, Any]) -> Step:
    """A caller asks for their current task, then an operator puts it back in the pool.

    Connection ``i`` is caller ``i`` (its token in ``tokens``); only ``GET /current`` is the
    measured figure, the requeue keeps every next request an allocation from the pool. With
    ``honour_retry_after`` (the closed loop) a caller answered 503 waits the ``Retry-After`` it
    was given before asking again, as the API asks; in the open loop the schedule decides.
    """
    tokens = [str(token) for token in params["tokens"]]
    honour_retry_after = bool(params.get("honour_retry_after"))
    operator = {"authorization": f"Bearer {params['operator_token']}"}
    requeue = {**operator, "content-type": "application/json"}
    reason = json.dumps({"reason": "bench: next task"}).encode()

    async def step(
        conn: Connection, worker: int, number: int, started: float, rec: Recorder
    ) -> None:
        headers = {"authorization": f"Bearer {tokens[worker % len(tokens)]}"}
        status, content = await conn.request("GET", "/api/v1/call-tasks/current", headers)
        rec.add("current", started, status)
        if status == 503 and honour_retry_after:
            retry_after = json.loads(content)["error"]["details"].get("retryAfterSeconds", 1)
            await asyncio.sleep(float(retry_after))
            return
        if status != 200:
            rec.error(f"current {status} {content[:200]!r}")
            return
        task = json.loads(content).get("task")
        if task is None:
            return
        begun = time.perf_counter()
        path = f"/api/v1/call-tasks/operator/tasks/{task['id']}/requeue"
        status, content = await conn.request("POST", path, requeue, reason)
        rec.add("requeue", begun, status)
        if status != 200:
            rec.error(f"requeue {status} {content[:200]!r}")

    return step


SCENARIOS: dict[str, Callable[[dict[str, Any]], Step]] = {
    "yay": yay_scenario,
    "sales-nav": sales_nav_scenario,
    "allocation": allocation_scenario,
}


async def run(spec: LoadSpec) -> Report:
    target = urlsplit(spec.url)
    host, port = target.hostname or "127.0.0.1", target.port or 80
    step = SCENARIOS[spec.scenario](spec.params)
    recorder = Recorder()
    connections = [Connection(host, port) for _ in range(max(1, spec.connections))]
    counter = 0

    def next_number() -> int:
        nonlocal counter
        counter += 1
        return counter

    async def safe_step(conn: Connection, index: int, started: float) -> None:
        try:
            await step(conn, index, next_number(), started, recorder)
        except (OSError, HttpError, asyncio.IncompleteReadError, ValueError) as exc:
            recorder.error(f"{type(exc).__name__}: {exc}")
            conn.close()

    # Warm-up: open the connections and keep the first requests out of the measurement.
    await asyncio.gather(
        *(
            safe_step(conn, index, time.perf_counter())
            for index, conn in enumerate(connections[: spec.warmup_steps])
        )
    )
    recorder.enabled = True
    steps_done = 0
    cpu_before = time.process_time()
    began = time.perf_counter()
    recorder.report.started_at = time.time()
    deadline = began + spec.duration

    def more() -> bool:
        return time.perf_counter() < deadline and (
            not spec.max_steps or steps_done < spec.max_steps
        )

    async def closed(index: int, conn: Connection) -> None:
        nonlocal steps_done
        while more():
            steps_done += 1
            await safe_step(conn, index, time.perf_counter())

    async def open_loop(index: int, conn: Connection) -> None:
        nonlocal steps_done
        period = len(connections) / spec.rate
        scheduled = began + random.Random(index).random() * period  # noqa: S311 - spreads load, not cryptography
        while True:
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if not more():
                return
            steps_done += 1
            await safe_step(conn, index, scheduled)
            scheduled += period

    loop = open_loop if spec.mode == "open" else closed
    await asyncio.gather(*(loop(i, conn) for i, conn in enumerate(connections)))
    report = recorder.report
    report.elapsed = time.perf_counter() - began
    report.cpu_seconds = time.process_time() - cpu_before
    report.steps = steps_done
    for conn in connections:
        conn.close()
    return report


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return None
    return uvloop.new_event_loop


def main() -> int:
    spec = LoadSpec(**json.loads(sys.stdin.read()))
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        report = runner.run(run(spec))
    # The event loop may leave the pipe non-blocking, and a buffered write past the pipe's
    # 64 KiB would then be cut short at exit without an error: write the report through the
    # descriptor itself, blocking, to the last byte.
    descriptor = sys.stdout.fileno()
    os.set_blocking(descriptor, True)
    pending = memoryview(json.dumps(asdict(report)).encode())
    while pending:
        pending = pending[os.write(descriptor, pending) :]
    return 0


if __name__ == "__main__":
    sys.exit(main())
