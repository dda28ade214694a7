"""Apache Kafka 4.x in KRaft mode, assembled from Maven Central and run as one local process.

No distribution tarball is needed: a throw-away pom naming `org.apache.kafka:kafka_2.13` and
`mvn dependency:copy-dependencies` give the broker's full class path, cached once per version
(`~/.cache/expert-sourcing/kafka-<version>/lib`, or under `DEVSTACK_CACHE_DIR`). The node is a
combined broker + controller, formatted with a dynamic single-voter quorum (`--standalone`).

Layout of `data_dir`: `server.properties`, `log4j2.properties`, `kafka.log` (the process
output), `ports` (broker and controller ports, reused by the next start), `logs/` (log.dirs).
Auto-create is off, as in production: topics come from `create_topics()`; Faust creates its
own internal topics through the admin API.

With `sasl_ssl=SaslSslListener(...)` the broker also listens for SASL_SSL clients on a second
port (`sasl_ssl_bootstrap_servers`, host name `localhost`): TLS from a PEM keystore, one SCRAM
user created when the storage is formatted. The PLAINTEXT listener stays for the broker's own
traffic and readiness checks.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from sourcing.devstack._process import (
    LOOPBACK,
    ChildProcess,
    DevstackError,
    EmbeddedBroker,
    free_port,
    logger,
    megabytes,
    port_accepts,
    port_is_free,
    progress,
    run_sync,
    wait_until,
)

# 4.1.x: the newest line with several patch releases behind it (4.0 removed the old protocol
# versions; aiokafka 0.14 and faust-streaming 0.15 work against it).
DEFAULT_KAFKA_VERSION = "4.1.2"
SCALA_BINARY = "2.13"
# Pinned so a Maven upgrade cannot change what copy-dependencies does.
_DEPENDENCY_PLUGIN_VERSION = "3.8.1"
# The artifact brings slf4j and log4j-core but no binding between them (the distribution
# tarball adds one); without it the broker logs nothing and start-up errors are blind.
_LOG4J_SLF4J_VERSION = "2.25.3"
DEFAULT_HEAP = "512m"
# The first download pulls ~100 artifacts; slow mirrors need minutes, not seconds.
DEFAULT_DOWNLOAD_TIMEOUT = 1800.0

_POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0
                             http://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.devstack</groupId>
  <artifactId>kafka-classpath</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_{scala}</artifactId>
      <version>{version}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>{plugin}</version>
      </plugin>
    </plugins>
  </build>
</project>
"""

_LOG4J2 = """status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = INFO
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
"""


def kafka_version() -> str:
    return os.environ.get("DEVSTACK_KAFKA_VERSION") or DEFAULT_KAFKA_VERSION


def cache_root() -> Path:
    """Where downloaded broker class paths live (`DEVSTACK_CACHE_DIR` overrides)."""
    explicit = os.environ.get("DEVSTACK_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "expert-sourcing"


def kafka_lib_dir(version: str | None = None) -> Path:
    version = version or kafka_version()
    return cache_root() / f"kafka-{version}" / "lib"


def java_and_maven_available() -> bool:
    return shutil.which("java") is not None and shutil.which("mvn") is not None


def _pom(version: str) -> str:
    return _POM.format(
        scala=SCALA_BINARY,
        version=version,
        log4j=_LOG4J_SLF4J_VERSION,
        plugin=_DEPENDENCY_PLUGIN_VERSION,
    )


def _is_complete(lib_dir: Path, version: str) -> bool:
    # The pom is stored beside lib/: a cache made from an older pom is fetched again.
    try:
        same_pom = (lib_dir.parent / "pom.xml").read_text() == _pom(version)
    except OSError:
        return False
    return same_pom and (lib_dir / f"kafka_{SCALA_BINARY}-{version}.jar").is_file()


def ensure_kafka_libs(
    version: str | None = None, *, timeout: float = DEFAULT_DOWNLOAD_TIMEOUT
) -> Path:
    """The broker's class path directory, downloaded with Maven unless already cached.

    Downloads into a temporary sibling and renames it into place, so an interrupted or
    concurrent download never leaves a half-filled cache behind.
    """
    version = version or kafka_version()
    lib_dir = kafka_lib_dir(version)
    if _is_complete(lib_dir, version):
        return lib_dir
    mvn = shutil.which("mvn")
    if mvn is None or shutil.which("java") is None:
        raise DevstackError("Apache Kafka needs `java` (17+) and `mvn` on PATH")
    dist_dir = lib_dir.parent
    dist_dir.parent.mkdir(parents=True, exist_ok=True)
    with (
        progress(
            f"downloading Apache Kafka {version} with Maven into {dist_dir} (first run only)",
            lambda: f"Apache Kafka {version} downloaded ({megabytes(lib_dir)})",
        ),
        tempfile.TemporaryDirectory(dir=dist_dir.parent, prefix=f".kafka-{version}-") as tmp,
    ):
        work = Path(tmp)
        staged = work / "dist"
        (work / "pom.xml").write_text(_pom(version))
        try:
            result = subprocess.run(  # noqa: S603 - an argv list of our own binaries and paths, no shell
                [
                    mvn,
                    "-q",
                    "-B",
                    "-f",
                    str(work / "pom.xml"),
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={staged / 'lib'}",
                    "-DincludeScope=runtime",
                ],
                capture_output=True,
                text=True,
                cwd=work,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise DevstackError(
                f"Maven did not fetch Apache Kafka {version} within {timeout:.0f} s"
            ) from exc
        if result.returncode == 0:
            shutil.copyfile(work / "pom.xml", staged / "pom.xml")
        if result.returncode != 0 or not _is_complete(staged / "lib", version):
            output = (result.stdout + result.stderr).strip()[-4000:]
            raise DevstackError(
                f"Maven could not fetch org.apache.kafka:kafka_{SCALA_BINARY}:{version} "
                f"(exit {result.returncode}):\n{output}"
            )
        if dist_dir.exists() and not _is_complete(lib_dir, version):
            shutil.rmtree(dist_dir)  # stale (older pom) or emptied by hand
        try:
            staged.rename(dist_dir)
        except OSError:
            if not _is_complete(lib_dir, version):
                raise
            # Another process finished the same download first; theirs is as good as ours.
    return lib_dir


def random_cluster_id() -> str:
    """A cluster id as `StorageTool random-uuid` prints it (URL-safe base64 of 16 random bytes).

    Generated here rather than by the tool to spare one JVM start per fresh broker.
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # Kafka rejects ids that look like command-line flags
            return text


@dataclass(frozen=True)
class SaslSslListener:
    """A SASL_SSL listener: ``keystore`` is a PEM file holding the broker's private key
    (unencrypted PKCS#8) and certificate chain, valid for ``localhost``; ``username`` /
    ``password`` become a SCRAM credential of ``mechanism``."""

    keystore: Path
    username: str
    password: str
    mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    port: int | None = None


class ApacheKafka(EmbeddedBroker):
    """A single-node Apache Kafka (broker + KRaft controller) on loopback ports.

    `data_dir=None` keeps logs in a temporary directory removed by `close()`. `stop()` and
    `start()` keep ports and data, so a test can take the broker away and bring it back.
    """

    kind: ClassVar[Literal["kafka"]] = "kafka"

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        port: int | None = None,
        controller_port: int | None = None,
        version: str | None = None,
        heap: str = DEFAULT_HEAP,
        startup_timeout: float = 120.0,
        stop_timeout: float = 30.0,
        download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT,
        sasl_ssl: SaslSslListener | None = None,
    ) -> None:
        super().__init__(data_dir, temp_prefix="expert-sourcing-kafka-")
        self.version = version or kafka_version()
        self.log_path = self.data_dir / "kafka.log"
        self._config_path = self.data_dir / "server.properties"
        self._log4j_path = self.data_dir / "log4j2.properties"
        self._log_dirs = self.data_dir / "logs"
        self._ports_file = self.data_dir / "ports"
        self._port = port
        self._controller_port = controller_port
        self._heap = heap
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._download_timeout = download_timeout
        self._process: ChildProcess | None = None
        self._sasl_ssl = sasl_ssl
        self._sasl_ssl_port = sasl_ssl.port if sasl_ssl is not None else None

    @property
    def sasl_ssl_bootstrap_servers(self) -> str:
        """``localhost:<port>`` of the SASL_SSL listener (the certificate's host name)."""
        if self._sasl_ssl_port is None:
            raise DevstackError("this broker has no SASL_SSL listener (or was not started)")
        return f"localhost:{self._sasl_ssl_port}"

    def start(self) -> str:
        if self._closed:
            raise DevstackError("this ApacheKafka was closed")
        if self.running:
            return self.url
        lib_dir = ensure_kafka_libs(self.version, timeout=self._download_timeout)
        started = time.monotonic()
        java = shutil.which("java")
        if java is None:
            raise DevstackError("Apache Kafka needs `java` (17+) on PATH")
        self._choose_ports()
        self._write_config()
        classpath = str(lib_dir / "*")
        if not (self._log_dirs / "meta.properties").exists():
            self._format(java, classpath)
        process = ChildProcess(
            f"kafka {self.version}",
            [*self._jvm(java, classpath, self._heap), "kafka.Kafka", str(self._config_path)],
            log_path=self.log_path,
            cwd=self.data_dir,
        )
        process.spawn()
        self._process = process
        bootstrap = self.bootstrap_servers
        wait_until(
            lambda: _broker_ready(bootstrap),
            process=process,
            timeout=self._startup_timeout,
            what=f"Apache Kafka on {bootstrap}",
            interval=0.25,
        )
        logger.info(
            "Apache Kafka %s ready on %s in %.1f s",
            self.version,
            bootstrap,
            time.monotonic() - started,
        )
        return self.url

    def stop(self) -> None:
        """Controlled shutdown (SIGTERM), SIGKILL after the timeout."""
        if self._process is not None:
            self._process.stop(timeout=self._stop_timeout)
            self._process = None

    def kill(self) -> None:
        """Crash the broker (SIGKILL); `start()` then recovers its logs."""
        if self._process is not None:
            self._process.kill()
            self._process = None

    def close(self) -> None:
        if self._owns_data:
            self.kill()  # the logs are about to be deleted: no point in a controlled shutdown
        super().close()

    # -- steps of start() ------------------------------------------------------------------

    def _choose_ports(self) -> None:
        if self._port is None or self._controller_port is None:
            with contextlib.suppress(OSError, ValueError):
                saved = [int(p) for p in self._ports_file.read_text().split()]
                if len(saved) == 2:
                    self._port = self._port or saved[0]
                    self._controller_port = self._controller_port or saved[1]
        if self._port is None:
            self._port = free_port()
        if self._controller_port is None:
            self._controller_port = free_port()
            while self._controller_port == self._port:
                self._controller_port = free_port()
        if self._sasl_ssl is not None and self._sasl_ssl_port is None:
            taken = {self._port, self._controller_port}
            self._sasl_ssl_port = free_port()
            while self._sasl_ssl_port in taken:
                self._sasl_ssl_port = free_port()
        ports = [("broker", self._port), ("controller", self._controller_port)]
        if self._sasl_ssl_port is not None:
            ports.append(("SASL_SSL", self._sasl_ssl_port))
        for name, port in ports:
            if not port_is_free(port):
                raise DevstackError(f"Kafka {name} port {port} is taken")
        self._ports_file.write_text(f"{self._port} {self._controller_port}\n")

    def _write_config(self) -> None:
        broker = f"{LOOPBACK}:{self._port}"
        controller = f"{LOOPBACK}:{self._controller_port}"
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": controller,
            "listeners": f"PLAINTEXT://{broker},CONTROLLER://{controller}",
            "advertised.listeners": f"PLAINTEXT://{broker},CONTROLLER://{controller}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self._log_dirs),
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            # 50 partitions by default; fewer makes the first consumer group join faster.
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "10",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
        }
        if self._sasl_ssl is not None:
            properties.update(self._sasl_ssl_properties(self._sasl_ssl))
        self._config_path.write_text("".join(f"{k}={v}\n" for k, v in properties.items()))
        self._log4j_path.write_text(_LOG4J2)

    def _sasl_ssl_properties(self, listener: SaslSslListener) -> dict[str, str]:
        secure = f"SASL_SSL://{LOOPBACK}:{self._sasl_ssl_port}"
        mechanism = listener.mechanism.lower()
        return {
            "listeners": f"PLAINTEXT://{LOOPBACK}:{self._port},{secure},"
            f"CONTROLLER://{LOOPBACK}:{self._controller_port}",
            "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{self._port},"
            f"SASL_SSL://localhost:{self._sasl_ssl_port},"
            f"CONTROLLER://{LOOPBACK}:{self._controller_port}",
            "listener.security.protocol.map": (
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL"
            ),
            "listener.name.sasl_ssl.sasl.enabled.mechanisms": listener.mechanism,
            f"listener.name.sasl_ssl.{mechanism}.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            "listener.name.sasl_ssl.ssl.keystore.type": "PEM",
            "listener.name.sasl_ssl.ssl.keystore.location": str(listener.keystore),
        }

    def _jvm(self, java: str, classpath: str, heap: str) -> list[str]:
        return [
            java,
            f"-Xmx{heap}",
            f"-Xms{heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self._log4j_path}",
            f"-Dkafka.logs.dir={self.data_dir}",
            "-cp",
            classpath,
        ]

    def _format(self, java: str, classpath: str) -> None:
        argv = [
            *self._jvm(java, classpath, "256m"),
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            "-t",
            random_cluster_id(),
            "-c",
            str(self._config_path),
        ]
        if self._sasl_ssl is not None:
            user = self._sasl_ssl
            argv += [
                "--add-scram",
                f"{user.mechanism}=[name={user.username},password={user.password}]",
            ]
        result = subprocess.run(  # noqa: S603 - an argv list of our own binaries and paths, no shell
            argv, capture_output=True, text=True, cwd=self.data_dir, timeout=120, check=False
        )
        if result.returncode != 0:
            raise DevstackError(
                f"kafka-storage format failed (exit {result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )


def _broker_ready(bootstrap: str) -> bool:
    from sourcing.devstack.topics import broker_is_ready

    host, _, port = bootstrap.rpartition(":")
    # A plain TCP check first keeps aiokafka from logging a connection error per poll.
    if not port_accepts(int(port), host):
        return False
    return run_sync(lambda: broker_is_ready(bootstrap, timeout=5.0))
