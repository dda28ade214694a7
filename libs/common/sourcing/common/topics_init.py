"""Topic initialisation: every lane as a topic with the lane's partitions and retention.

    python -m sourcing.common.topics_init [--replication-factor N] [--timeout SECONDS]

Production brokers have auto-create off, so this is the only way lane topics come to exist
(Faust creates its own internal topics). Idempotent: existing topics are left as they are.
Topic names are ``KAFKA_TOPIC_PREFIX`` + lane; the replication factor comes from
``KAFKA_REPLICATION_FACTOR`` unless given on the command line; with 3 or more replicas a
write needs 2 in sync (``min.insync.replicas=2``, acks=all producers). The client
authenticates with the ``KAFKA_SECURITY_PROTOCOL`` / ``KAFKA_SASL_*`` / ``KAFKA_SSL_*``
settings, like every other client. The embedded development
stack (``sourcing.devstack``) uses the same functions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code

from sourcing.common.topics import LANES, Lane

logger = logging.getLogger(__name__)

_TOPIC_ALREADY_EXISTS = 36
_UNKNOWN_TOPIC = 3
# Codes a broker answers when it does not take per-topic configs (Tansu): retried without.
_CONFIG_REJECTED = {35, 40, 42}  # UNSUPPORTED_VERSION, INVALID_CONFIG, INVALID_REQUEST
_MS_PER_DAY = 86_400_000
# With this many replicas or more, a write must reach two of them (one broker may be down).
_DURABLE_REPLICATION = 3


class TopicInitError(RuntimeError):
    """Topics could not be created or deleted as asked."""


class BrokerNotReady(TopicInitError, TimeoutError):
    """The broker did not answer metadata requests (or lead new topics) in time."""


async def broker_is_ready(
    bootstrap_servers: str,
    *,
    timeout: float = 5.0,  # noqa: ASYNC109
    security: Mapping[str, Any] | None = None,
) -> bool:
    """One probe: does the cluster answer metadata with at least one live broker?"""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        request_timeout_ms=int(timeout * 1000),
        **(security or {}),
    )
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
            cluster: dict[str, Any] = await admin.describe_cluster()
            return bool(cluster.get("brokers"))
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


# The timeout parameters below bound retry loops and become broker-side request timeouts;
# a caller's asyncio.timeout could not do either.
async def wait_for_broker(
    bootstrap_servers: str,
    timeout: float = 60.0,  # noqa: ASYNC109
    *,
    security: Mapping[str, Any] | None = None,
) -> None:
    """Block until the broker answers metadata; `BrokerUnavailable` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        probe = max(1.0, min(5.0, remaining))
        if await broker_is_ready(bootstrap_servers, timeout=probe, security=security):
            return
        if time.monotonic() >= deadline:
            raise BrokerNotReady(
                f"no Kafka broker answered at {bootstrap_servers} within {timeout:.0f} s"
            )
        await asyncio.sleep(0.25)


async def create_topics(
    bootstrap_servers: str,
    *,
    prefix: str = "",
    lanes: Iterable[Lane] = LANES,
    replication_factor: int = 1,
    timeout: float = 60.0,  # noqa: ASYNC109
    security: Mapping[str, Any] | None = None,
) -> None:
    """Create `prefix + lane.name` for every lane and wait until each has leaders.

    Configs come from :func:`topic_configs`; a broker that refuses topic configs (Tansu) gets the
    topic without them and a warning. An existing topic with fewer partitions than its lane
    is reported, not altered (growing partitions moves keys between partitions).
    """
    wanted = {f"{prefix}{lane.name}": lane for lane in lanes}
    if not wanted:
        return
    await wait_for_broker(bootstrap_servers, timeout=timeout, security=security)
    deadline = time.monotonic() + timeout
    timeout_ms = int(timeout * 1000)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=timeout_ms, **(security or {})
    )
    await admin.start()
    try:
        rejected = await _create(admin, wanted, replication_factor, timeout_ms, with_configs=True)
        if rejected:
            logger.warning(
                "broker %s refused topic configs (retention.ms) for %d topics; "
                "creating them with broker defaults",
                bootstrap_servers,
                len(rejected),
            )
            retry = {name: wanted[name] for name in rejected}
            still = await _create(admin, retry, replication_factor, timeout_ms, with_configs=False)
            if still:
                raise TopicInitError(f"could not create topics: {still}")
        await _wait_until_led(admin, wanted, deadline)
    finally:
        await admin.close()


def topic_configs(lane: Lane, replication_factor: int) -> dict[str, str]:
    """The per-topic configs topic-init sets on a lane's topic."""
    configs = {"retention.ms": str(lane.retention_days * _MS_PER_DAY)}
    if replication_factor >= _DURABLE_REPLICATION:
        configs["min.insync.replicas"] = "2"
    return configs


async def _create(
    admin: AIOKafkaAdminClient,
    topics: dict[str, Lane],
    replication_factor: int,
    timeout_ms: int,
    *,
    with_configs: bool,
) -> dict[str, str]:
    """Send one CreateTopics request; return the topics whose configs were refused."""
    requests = [
        NewTopic(
            name,
            lane.partitions,
            replication_factor,
            topic_configs=topic_configs(lane, replication_factor) if with_configs else None,
        )
        for name, lane in topics.items()
    ]
    response = await admin.create_topics(requests, timeout_ms=timeout_ms)
    rejected: dict[str, str] = {}
    failures: list[str] = []
    for entry in response.topic_errors:
        name, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 and entry[2] else for_code(code).__name__
        if code in (0, _TOPIC_ALREADY_EXISTS):
            continue
        if with_configs and code in _CONFIG_REJECTED:
            rejected[name] = message
        else:
            failures.append(f"{name}: {message} (code {code})")
    if failures:
        raise TopicInitError("could not create topics: " + "; ".join(failures))
    return rejected


async def _wait_until_led(
    admin: AIOKafkaAdminClient, wanted: dict[str, Lane], deadline: float
) -> None:
    """Wait until metadata shows every topic with all partitions led (creation is async)."""
    while True:
        described: list[dict[str, Any]] = await admin.describe_topics(list(wanted))
        counts: dict[str, int] = {}
        for topic in described:
            partitions: list[dict[str, Any]] = topic.get("partitions") or []
            led = all(p.get("leader", -1) >= 0 for p in partitions)
            if topic.get("error_code", 0) == 0 and partitions and led:
                counts[topic["topic"]] = len(partitions)
        missing = sorted(set(wanted) - set(counts))
        if not missing:
            break
        if time.monotonic() >= deadline:
            raise BrokerNotReady(f"topics without leaders after creation: {missing}")
        await asyncio.sleep(0.1)
    for name, count in counts.items():
        if count < wanted[name].partitions:
            logger.warning(
                "topic %s exists with %d partitions; its lane wants %d",
                name,
                count,
                wanted[name].partitions,
            )


async def delete_topics(
    bootstrap_servers: str,
    *,
    prefix: str = "",
    lanes: Iterable[Lane] = LANES,
    timeout: float = 30.0,  # noqa: ASYNC109
    security: Mapping[str, Any] | None = None,
) -> None:
    """Delete `prefix + lane.name` for every lane; topics already gone are fine.

    Tests create fresh topics per test; deleting them afterwards keeps one long session's
    broker from collecting thousands of partitions.
    """
    names = [f"{prefix}{lane.name}" for lane in lanes]
    if not names:
        return
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        request_timeout_ms=int(timeout * 1000),
        **(security or {}),
    )
    await admin.start()
    try:
        response = await admin.delete_topics(names, timeout_ms=int(timeout * 1000))
        failures = [
            f"{name}: {for_code(code).__name__}"
            for name, code in response.topic_error_codes
            if code not in (0, _UNKNOWN_TOPIC)
        ]
        if failures:
            raise TopicInitError("could not delete topics: " + "; ".join(failures))
    finally:
        await admin.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sourcing.common.topics_init",
        description="Create every lane topic (partitions, retention); existing ones are kept.",
    )
    parser.add_argument(
        "--replication-factor",
        type=int,
        default=None,
        help="replicas per topic (default: KAFKA_REPLICATION_FACTOR)",
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for the broker (120)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="topics: %(message)s", stream=sys.stderr)

    from sourcing.common.config import ConfigurationError, Settings, load_settings
    from sourcing.common.kafka.security import client_security

    try:
        settings = load_settings(Settings)
        replication = args.replication_factor or settings.KAFKA_REPLICATION_FACTOR
    except (ConfigurationError, ValueError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    try:
        asyncio.run(
            create_topics(
                settings.KAFKA_BROKER_URL,
                prefix=settings.KAFKA_TOPIC_PREFIX,
                replication_factor=replication,
                timeout=args.timeout,
                security=client_security(settings),
            )
        )
    except TopicInitError as exc:
        logger.error("%s", exc)
        return 1
    logger.info(
        "%d lane topics ready (prefix %r, replication factor %d)",
        len(LANES),
        settings.KAFKA_TOPIC_PREFIX,
        replication,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
