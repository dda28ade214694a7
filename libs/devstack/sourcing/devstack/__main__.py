"""`python -m sourcing.devstack up`: PostgreSQL + broker in the foreground until Ctrl-C.

Prints `DATABASE_URL=...` and `KAFKA_BROKER_URL=...` on stdout once both answer and the lane
topics exist (logs go to stderr), then waits for SIGINT/SIGTERM and stops both.
`python -m sourcing.devstack fetch-kafka` only downloads the Apache Kafka class path (CI cache).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import threading
from types import FrameType

from sourcing.common.config import ConfigurationError, get_settings
from sourcing.devstack._process import DevstackError
from sourcing.devstack.kafka import ensure_kafka_libs
from sourcing.devstack.stack import BrokerChoice, Stack, start_dev_stack

logger = logging.getLogger("sourcing.devstack")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sourcing.devstack")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="run PostgreSQL and the broker until interrupted")
    up.add_argument(
        "--broker", choices=["tansu", "kafka"], default=None, help="default: $BROKER or tansu"
    )
    up.add_argument("--data-dir", default="var", help="persistent data (default: ./var)")
    commands.add_parser("fetch-kafka", help="download the Apache Kafka class path and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="devstack: %(message)s", stream=sys.stderr)
    try:
        if args.command == "fetch-kafka":
            print(ensure_kafka_libs())
            return 0
        return run_up(data_dir=args.data_dir, broker=args.broker)
    except (DevstackError, ConfigurationError) as exc:
        logger.error("%s", exc)
        return 1


def run_up(*, data_dir: str, broker: BrokerChoice | None) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    stack = start_dev_stack(data_dir, broker=broker)
    try:
        if stop.is_set():
            return 0
        asyncio.run(stack.create_topics(prefix=_topic_prefix()))
        print(f"DATABASE_URL={stack.database_url}")
        print(f"KAFKA_BROKER_URL={stack.bootstrap_servers}")
        sys.stdout.flush()
        logger.info("running (broker: %s); Ctrl-C stops", stack.broker_kind)
        return _watch(stack, stop)
    finally:
        logger.info("stopping")
        stack.close()


def _watch(stack: Stack, stop: threading.Event) -> int:
    """Wait for a signal; a server dying on its own ends the run with an error."""
    while not stop.wait(1.0):
        for server in stack.servers:
            if not server.running:
                logger.error(
                    "%s stopped unexpectedly; see %s", type(server).__name__, server.log_path
                )
                return 1
    return 0


def _topic_prefix() -> str:
    return get_settings().KAFKA_TOPIC_PREFIX


if __name__ == "__main__":
    sys.exit(main())
