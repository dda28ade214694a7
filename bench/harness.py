"""What every benchmark shares: the stack, databases and topics, child processes, the load
generator, memory sampling, percentiles, and the result (JSON file + table row) format.

One :class:`Session` per ``python -m bench`` run: the test stack (Apache Kafka when Java is
present, temporary data) is started once; every benchmark gets its own database (a copy of a
migrated template) and topic prefixes, so the platform and its baseline run against the same
broker and the same PostgreSQL server, one after the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from sqlalchemy.engine import make_url

from bench.loadgen import LoadSpec, Report
from sourcing.common.migrate import upgrade
from sourcing.common.topics import LANES, LANES_BY_NAME, Lane
from sourcing.devstack import Stack, create_topics, delete_topics, start_test_stack
from sourcing.sandbox.server import free_port

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
LOOPBACK = "127.0.0.1"
T = TypeVar("T")

# Explicit values so the platform and the baselines share them (no development defaults).
SECRETS = {
    "JWT_SECRET": "bench-jwt-secret-0123456789abcdef0123456789",
    "YAY_WEBHOOK_SECRET": "bench-yay-webhook-secret",
    "SALES_NAV_WEBHOOK_SECRET": "bench-sales-nav-secret",
}
# The agent services of the platform (``python -m sourcing.<name>``), gateway first.
SERVICES = ("api", "ingestion", "enrichment", "outreach", "calls", "allocation", "scheduler")


# --- statistics -----------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile (``fraction`` in 0..1); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def latency_summary(values_ms: Sequence[float]) -> dict[str, float | int | None]:
    return {
        "count": len(values_ms),
        "p50_ms": rounded(percentile(values_ms, 0.50)),
        "p90_ms": rounded(percentile(values_ms, 0.90)),
        "p99_ms": rounded(percentile(values_ms, 0.99)),
        "max_ms": rounded(max(values_ms)) if values_ms else None,
    }


# --- results --------------------------------------------------------------------------------

Check = Literal["ratio_min", "max", "min"]


@dataclass
class Figure:
    """One row of the table: a platform and a baseline value of the same measurement.

    ``check`` makes it a target: ``ratio_min`` (platform/baseline ≥ threshold), ``max``
    (platform ≤ threshold) or ``min`` (platform ≥ threshold).
    """

    label: str
    unit: str
    platform: float | None
    baseline: float | None = None
    check: Check | None = None
    threshold: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.platform is None or not self.baseline:
            return None
        return self.platform / self.baseline

    @property
    def target(self) -> str:
        if self.check is None or self.threshold is None:
            return ""
        if self.check == "ratio_min":
            return f">= {self.threshold:.0%} of baseline"
        return f"{'<=' if self.check == 'max' else '>='} {self.threshold:g} {self.unit}"

    @property
    def passed(self) -> bool | None:
        if self.check is None or self.threshold is None:
            return None
        value = self.ratio if self.check == "ratio_min" else self.platform
        if value is None:
            return False
        return value <= self.threshold if self.check == "max" else value >= self.threshold

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {
            "platform": rounded(self.platform),
            "baseline": rounded(self.baseline),
            "ratio": rounded(self.ratio),
            "target": self.target,
            "passed": self.passed,
        }


@dataclass
class Result:
    name: str
    description: str
    parameters: dict[str, Any]
    figures: list[Figure]
    platform: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(f.passed is not False for f in self.figures)


def machine_info(broker_kind: str) -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        line = Path("/proc/meminfo").read_text().splitlines()[0]
        memory_gib = round(int(line.split()[1]) / 2**20, 1)
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": memory_gib,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "broker": broker_kind,
        "load_average": os.getloadavg(),
    }


def write_result(result: Result, machine: dict[str, Any], directory: Path = RESULTS_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{result.name}.json"
    document = {
        "benchmark": result.name,
        "description": result.description,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine | {"load_average_after": os.getloadavg()},
        "parameters": result.parameters,
        "figures": [figure.as_json() for figure in result.figures],
        "passed": result.passed,
        "platform": result.platform,
        "baseline": result.baseline,
        "notes": result.notes,
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"


def table(results: Iterable[Result]) -> str:
    header = ("benchmark", "figure", "platform", "baseline", "ratio", "target", "result")
    rows: list[tuple[str, ...]] = []
    for result in results:
        for index, figure in enumerate(result.figures):
            verdict = {None: "", True: "PASS", False: "FAIL"}[figure.passed]
            rows.append(
                (
                    result.name if index == 0 else "",
                    f"{figure.label} ({figure.unit})",
                    _number(figure.platform),
                    _number(figure.baseline),
                    f"{figure.ratio:.2f}" if figure.ratio is not None else "-",
                    figure.target,
                    verdict,
                )
            )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    numeric = {2, 3, 4}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


# --- child processes ------------------------------------------------------------------------


def rss_mb(pid: int) -> float | None:
    """Resident set size of a process in MiB (``VmRSS`` of ``/proc/<pid>/status``)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a process used so far (``/proc/<pid>/stat``)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return None


@dataclass
class Child:
    """A process the benchmark started; its output goes to a log file shown on failure."""

    name: str
    process: asyncio.subprocess.Process
    log: Path
    port: int | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def wait_http(self, path: str, *, timeout: float = 90.0) -> None:  # noqa: ASYNC109
        """Poll ``path`` until it answers 200; raise (with the log's tail) if the child dies."""
        url = f"{self.url}{path}"
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.returncode is not None:
                    raise RuntimeError(f"{self.name} exited:\n{self.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url)).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise TimeoutError(f"{self.name}: {url} not ready within {timeout:.0f} s\n{self.tail()}")

    def ensure_running(self) -> None:
        """Raise (with the log's tail) if the process has exited: its figures would be void."""
        if self.process.returncode is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.process.returncode} during the measurement:\n"
                f"{self.tail()}"
            )

    async def stop(self, grace: float = 20.0) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), grace)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


class MemorySampler:
    """Peak RSS of some processes, sampled in the background while the context is open."""

    def __init__(self, children: Sequence[Child], interval: float = 0.25) -> None:
        self.children = children
        self.interval = interval
        self.peak_mb: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> dict[str, float]:
        now = {c.name: rss_mb(c.pid) for c in self.children}
        return {name: value for name, value in now.items() if value is not None}

    async def _run(self) -> None:
        while True:
            for name, value in self.sample().items():
                self.peak_mb[name] = max(value, self.peak_mb.get(name, 0.0))
            await asyncio.sleep(self.interval)

    async def __aenter__(self) -> MemorySampler:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


# --- load -----------------------------------------------------------------------------------


@dataclass
class Load:
    """The report of one load generator run, with the figures computed from it."""

    spec: LoadSpec
    report: Report
    process_cpu: dict[str, float] = field(default_factory=dict)  # share of a core, by name

    def ok(self, label: str, status: int) -> int:
        return self.report.statuses.get(label, {}).get(str(status), 0)

    def rate(self, label: str, status: int) -> float:
        return self.ok(label, status) / self.report.elapsed if self.report.elapsed else 0.0

    def latency(self, label: str, fraction: float) -> float | None:
        return percentile(self.report.latencies_ms.get(label, []), fraction)

    def cpu_per_thousand(self, label: str, status: int) -> float | None:
        """CPU milliseconds the watched processes spent per 1,000 such answers: the cost of
        the work itself, which a machine shared with other load does not skew as it skews
        the throughput."""
        rate = self.rate(label, status)
        return sum(self.process_cpu.values()) / rate * 1e6 if rate else None

    @property
    def generator_cpu(self) -> float:
        """Share of one core the load generator used (near 1.0: it was the bottleneck)."""
        return self.report.cpu_seconds / self.report.elapsed if self.report.elapsed else 0.0

    def summary(self, label: str, status: int) -> dict[str, Any]:
        return {
            "mode": self.spec.mode,
            "connections": self.spec.connections,
            "rate_target": self.spec.rate or None,
            "elapsed_s": round(self.report.elapsed, 2),
            "steps": self.report.steps,
            "ok": self.ok(label, status),
            "per_second": round(self.rate(label, status), 1),
            "statuses": self.report.statuses,
            "latency": {
                name: latency_summary(values) for name, values in self.report.latencies_ms.items()
            },
            "generator_cpu_share": round(self.generator_cpu, 3),
            "process_cpu_share": {name: round(v, 3) for name, v in self.process_cpu.items()},
            "errors": self.report.errors[:5],
        }


# --- session --------------------------------------------------------------------------------


@dataclass
class Options:
    duration: float = 15.0
    quick: bool = False
    keep_logs: bool = False
    results_dir: Path = RESULTS_DIR


class Session:
    """The stack and everything the benchmarks create on it (removed by :meth:`close`)."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.stack: Stack | None = None
        self.run = uuid.uuid4().hex[:6]
        self.workdir = Path(tempfile.mkdtemp(prefix="bench-"))
        self._template: str | None = None
        self._databases: list[str] = []
        self._prefixes: list[tuple[str, list[Lane]]] = []
        self.machine: dict[str, Any] = {}
        self.cache: dict[str, Any] = {}  # measurements benchmarks share (pipeline, memory)

    async def start(self) -> None:
        self.stack = await asyncio.to_thread(start_test_stack)
        self.machine = machine_info(self.stack.broker_kind)
        self._template = f"bench_{self.run}_template"
        await self._admin(f'CREATE DATABASE "{self._template}"')
        self._databases.append(self._template)
        await asyncio.to_thread(upgrade, self._url(self._template))

    @property
    def bootstrap(self) -> str:
        assert self.stack is not None  # noqa: S101 - narrows the type: the stack is started first
        return self.stack.bootstrap_servers

    @property
    def idempotent_producer(self) -> bool:
        return self.stack is not None and self.stack.broker_kind != "tansu"

    def _url(self, database: str) -> str:
        assert self.stack is not None  # noqa: S101 - narrows the type: the stack is started first
        url = make_url(self.stack.database_url).set(database=database)
        return url.render_as_string(hide_password=False)

    async def _admin(self, statement: str) -> None:
        assert self.stack is not None  # noqa: S101 - narrows the type: the stack is started first
        connection = await asyncpg.connect(self._url("postgres"))
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    async def database(self, name: str) -> str:
        """A fresh migrated database (a copy of the template); returns its URL."""
        database = f"bench_{self.run}_{name}"
        await self._admin(f'CREATE DATABASE "{database}" TEMPLATE "{self._template}"')
        self._databases.append(database)
        return self._url(database)

    async def topics(self, name: str, lanes: Iterable[str] | None = None) -> str:
        """Create the lane topics (all, or the named ones) under a fresh prefix; return it."""
        prefix = f"bench-{self.run}-{name}."
        chosen = list(LANES) if lanes is None else [LANES_BY_NAME[lane] for lane in lanes]
        await create_topics(self.bootstrap, prefix=prefix, lanes=chosen)
        self._prefixes.append((prefix, chosen))
        return prefix

    def env(self, database_url: str, prefix: str, **extra: str) -> dict[str, str]:
        """The environment of a platform or baseline process of one benchmark."""
        return {
            **os.environ,
            **SECRETS,
            "APP_ENV": "development",
            "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "warn"),
            "DATABASE_URL": database_url,
            "KAFKA_BROKER_URL": self.bootstrap,
            "KAFKA_TOPIC_PREFIX": prefix,
            "KAFKA_IDEMPOTENT_PRODUCER": "1" if self.idempotent_producer else "0",
            # One load generator is one client: the per-client limit would throttle it.
            "RATE_LIMIT_MAX_REQUESTS": "1000000000",
            "PYTHONPATH": str(REPO),
            **extra,
        }

    async def spawn(
        self, name: str, args: Sequence[str], env: dict[str, str], *, port: int | None = None
    ) -> Child:
        log = self.workdir / f"{name}-{uuid.uuid4().hex[:4]}.log"
        with log.open("wb") as sink:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                *args,
                env=env,
                cwd=REPO,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=sink,
                stderr=asyncio.subprocess.STDOUT,
            )
        return Child(name, process, log, port)

    async def start_services(
        self, names: Sequence[str], env: dict[str, str], *, sandbox_url: str | None = None
    ) -> list[Child]:
        """Start platform services (``python -m sourcing.<name>``) and wait until each is ready:
        the gateway's ``/api/v1/system/ready``, an agent's ``/health/ready``."""
        children: list[Child] = []
        try:
            for name in names:
                port = free_port()
                extra = {"PORT": str(port), "METRICS_PORT": str(port)}
                if name != "api":
                    extra["AGENT_WEB_PORT"] = str(free_port())
                if sandbox_url is not None:
                    extra |= {"SANDBOX_PROVIDERS": "1", "SANDBOX_URL": sandbox_url}
                child = await self.spawn(name, ["-m", f"sourcing.{name}"], env | extra, port=port)
                children.append(child)
            for child in children:
                ready = "/api/v1/system/ready" if child.name == "api" else "/health/ready"
                await child.wait_http(ready)
        except BaseException:
            await stop_all(children)
            raise
        return children

    async def start_baseline(self, role: str, env: dict[str, str]) -> Child:
        """A bare baseline process (:mod:`bench.baseline`); HTTP roles wait for ``/health``."""
        port = free_port()
        child = await self.spawn(
            f"baseline-{role}", ["-m", "bench.baseline", role], env | {"PORT": str(port)}, port=port
        )
        if role == "http":
            try:
                await child.wait_http("/health")
            except BaseException:
                await child.stop()
                raise
        return child

    async def load(
        self,
        spec: LoadSpec,
        *,
        watch: Sequence[Child] = (),
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Load:
        """Run the load generator in its own process and return its report, with the share of
        a core each ``watch`` process used meanwhile (near 100 %: that process is CPU-bound)."""
        cpu_before = {child.name: cpu_seconds(child.pid) for child in watch}
        began = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.loadgen",
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(timeout or spec.duration + 120):
                out, _ = await process.communicate(json.dumps(asdict(spec)).encode())
        except BaseException:  # timed out or cancelled: the generator must not outlive us
            if process.returncode is None:
                process.kill()
                await process.wait()
            raise
        if process.returncode != 0:
            raise RuntimeError(f"load generator exited with {process.returncode}")
        wall = time.monotonic() - began
        shares: dict[str, float] = {}
        for child in watch:
            child.ensure_running()
            before, after = cpu_before[child.name], cpu_seconds(child.pid)
            if before is not None and after is not None:
                shares[child.name] = (after - before) / wall
        return Load(spec, Report(**json.loads(out)), shares)

    async def close(self) -> None:
        for prefix, lanes in self._prefixes:
            with contextlib.suppress(Exception):
                await delete_topics(self.bootstrap, prefix=prefix, lanes=lanes)
        for database in reversed(self._databases):
            with contextlib.suppress(Exception):
                await self._admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await asyncio.to_thread(self._remove_files)
        if self.stack is not None:
            await self.stack.aclose()

    def _remove_files(self) -> None:
        # Faust keeps a data directory per app id (which carries the topic prefix).
        for path in Path(tempfile.gettempdir()).glob(f"bench-{self.run}-*-data"):
            shutil.rmtree(path, ignore_errors=True)
        if self.options.keep_logs:
            print(f"logs kept in {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


async def messages_on(bootstrap: str, topic: str) -> int:
    """How many messages a topic holds (end minus beginning offsets over its partitions)."""
    # Subscribed, so the consumer's own metadata holds the topic (``topics()`` fetches the
    # cluster's metadata without keeping it: the count was always 0).
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        return sum(ends[tp] - starts[tp] for tp in tps)
    finally:
        await consumer.stop()


async def stop_all(children: Sequence[Child]) -> None:
    await asyncio.gather(*(child.stop() for child in children), return_exceptions=True)


async def wait_until(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    within: float,
    interval: float = 0.1,
) -> T:
    """Call ``await probe()`` until ``done(value)`` and return that value; TimeoutError (with
    the last value) after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done within {within:.0f} s (last value {value!r})")
        await asyncio.sleep(interval)
