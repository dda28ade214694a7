"""One interface over PostgreSQL and a broker, for development and for the test suite.

Development (`start_dev_stack`): `BROKER=tansu` (default) or `BROKER=kafka`; data under `var/`.
Tests (`start_test_stack`): Apache Kafka whenever `java` and `mvn` exist, else Tansu with a loud
warning; `REQUIRE_APACHE_KAFKA=1` (CI) turns that fallback into an error. Temporary data.

A URL in the environment replaces the embedded server: `DATABASE_URL` / `KAFKA_BROKER_URL`
for development, `TEST_DATABASE_URL` / `TEST_KAFKA_BROKER_URL` for tests. Only the process
environment counts (not `.env`, which may hold a URL printed by an earlier run).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from sourcing.common.topics import LANES, Lane
from sourcing.devstack._process import DevstackError, EmbeddedServer, logger
from sourcing.devstack.kafka import ApacheKafka, java_and_maven_available
from sourcing.devstack.postgres import DEV_SETTINGS, FAST_UNSAFE_SETTINGS, EmbeddedPostgres
from sourcing.devstack.tansu import TansuBroker
from sourcing.devstack.topics import create_topics

BrokerChoice = Literal["kafka", "tansu"]
BrokerKind = Literal["kafka", "tansu", "external"]
EmbeddedBroker = ApacheKafka | TansuBroker


@dataclass
class Stack:
    """A running PostgreSQL and broker, embedded or external.

    `postgres` / `broker` are None when the URL came from the environment (nothing to stop).
    A Tansu broker loses every topic on `stop()`; Apache Kafka and PostgreSQL keep their data.
    """

    database_url: str
    bootstrap_servers: str
    broker_kind: BrokerKind
    postgres: EmbeddedPostgres | None = None
    broker: EmbeddedBroker | None = None
    _closed: bool = field(default=False, repr=False)

    @property
    def env(self) -> dict[str, str]:
        """The variables a service process needs to reach this stack."""
        return {"DATABASE_URL": self.database_url, "KAFKA_BROKER_URL": self.bootstrap_servers}

    @property
    def servers(self) -> list[EmbeddedServer]:
        return [s for s in (self.broker, self.postgres) if s is not None]

    async def create_topics(
        self, *, prefix: str = "", lanes: Iterable[Lane] = LANES, replication_factor: int = 1
    ) -> None:
        await create_topics(
            self.bootstrap_servers,
            prefix=prefix,
            lanes=lanes,
            replication_factor=replication_factor,
        )

    def close(self) -> None:
        """Stop the embedded servers (broker first) and remove temporary data."""
        if self._closed:
            return
        self._closed = True
        errors: list[BaseException] = []
        for server in self.servers:
            try:
                server.close()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    async def aclose(self) -> None:
        import asyncio

        await asyncio.to_thread(self.close)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def start_stack(
    *,
    broker: BrokerChoice,
    data_dir: str | os.PathLike[str] | None = None,
    database_url: str | None = None,
    bootstrap_servers: str | None = None,
    postgres_settings: Mapping[str, str] | None = None,
    persist_broker: bool = True,
) -> Stack:
    """Start what is not given as a URL, in parallel; stop everything if any part fails.

    `data_dir=None` puts every server's data in its own temporary directory; a path keeps
    `postgres/` (and `kafka/` when `persist_broker`) under it between runs.
    """
    root = Path(data_dir).resolve() if data_dir is not None else None
    postgres: EmbeddedPostgres | None = None
    embedded_broker: EmbeddedBroker | None = None
    if database_url is None:
        postgres = EmbeddedPostgres(
            root / "postgres" if root else None, server_settings=postgres_settings
        )
    if bootstrap_servers is None:
        broker_dir = root / broker if root and persist_broker and broker == "kafka" else None
        embedded_broker = ApacheKafka(broker_dir) if broker == "kafka" else TansuBroker()
    servers: list[EmbeddedServer] = [s for s in (postgres, embedded_broker) if s is not None]
    try:
        _start_all(servers)
    except BaseException:
        for server in servers:
            with contextlib.suppress(Exception):
                server.close()
        raise
    return Stack(
        database_url=postgres.url if postgres else _required(database_url),
        bootstrap_servers=(
            embedded_broker.bootstrap_servers if embedded_broker else _required(bootstrap_servers)
        ),
        broker_kind=embedded_broker.kind if embedded_broker else "external",
        postgres=postgres,
        broker=embedded_broker,
    )


def start_dev_stack(
    data_dir: str | os.PathLike[str] = "var", *, broker: BrokerChoice | None = None
) -> Stack:
    """The development stack: `BROKER` (tansu|kafka) unless `broker` is given, data in `var/`."""
    return start_stack(
        broker=broker or broker_from_env(),
        data_dir=data_dir,
        database_url=_env("DATABASE_URL"),
        bootstrap_servers=_env("KAFKA_BROKER_URL"),
        postgres_settings=DEV_SETTINGS,
    )


def start_test_stack() -> Stack:
    """The test stack: Apache Kafka preferred (see `choose_test_broker`), temporary data."""
    bootstrap = _env("TEST_KAFKA_BROKER_URL")
    return start_stack(
        broker="kafka" if bootstrap else choose_test_broker(),
        data_dir=None,
        database_url=_env("TEST_DATABASE_URL"),
        bootstrap_servers=bootstrap,
        postgres_settings=FAST_UNSAFE_SETTINGS,
    )


def broker_from_env() -> BrokerChoice:
    value = (os.environ.get("BROKER") or "tansu").strip().lower()
    if value not in ("tansu", "kafka"):
        raise DevstackError(f"BROKER must be 'tansu' or 'kafka', not {value!r}")
    return "kafka" if value == "kafka" else "tansu"


def choose_test_broker() -> BrokerChoice:
    """`TEST_BROKER` when set (`tansu` runs the suite on Tansu on purpose); otherwise Apache
    Kafka when `java` and `mvn` exist, else Tansu, loudly, unless CI forbids it."""
    requested = (os.environ.get("TEST_BROKER") or "").strip().lower()
    if requested not in ("", "tansu", "kafka"):
        raise DevstackError(f"TEST_BROKER must be 'tansu' or 'kafka', not {requested!r}")
    if requested == "tansu":
        if os.environ.get("REQUIRE_APACHE_KAFKA", "").strip().lower() in ("1", "true", "yes"):
            raise DevstackError("TEST_BROKER=tansu contradicts REQUIRE_APACHE_KAFKA=1")
        return "tansu"
    if java_and_maven_available():
        return "kafka"
    if os.environ.get("REQUIRE_APACHE_KAFKA", "").strip().lower() in ("1", "true", "yes"):
        raise DevstackError(
            "REQUIRE_APACHE_KAFKA=1 but `java` (17+) and `mvn` are not both on PATH: "
            "install them or unset REQUIRE_APACHE_KAFKA"
        )
    message = (
        "Apache Kafka unavailable (`java`/`mvn` not on PATH): tests run against TANSU, which "
        "lacks idempotent producers, CreatePartitions and AlterConfigs. Results are not "
        "production-representative; CI sets REQUIRE_APACHE_KAFKA=1."
    )
    logger.warning(message)
    bar = "!" * 78
    sys.stderr.write(f"\n{bar}\n!! {message}\n{bar}\n\n")
    sys.stderr.flush()
    return "tansu"


def _start_all(servers: list[EmbeddedServer]) -> None:
    # PostgreSQL is up in about a second, the JVM takes several: start them side by side.
    if len(servers) <= 1:
        for server in servers:
            server.start()
        return
    starts: list[Callable[[], str]] = [server.start for server in servers]
    with ThreadPoolExecutor(max_workers=len(starts), thread_name_prefix="devstack") as pool:
        futures = [pool.submit(start) for start in starts]
        errors = [f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _required(value: str | None) -> str:
    if value is None:
        raise DevstackError("internal: neither an embedded server nor a URL")
    return value
