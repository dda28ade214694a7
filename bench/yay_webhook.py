"""Benchmark: accepted Yay webhook events per second and latency of ``POST /webhooks/yay``.

The gateway runs under uvicorn in a subprocess on loopback against the test stack (embedded
PostgreSQL and broker, or ``TEST_DATABASE_URL`` / ``TEST_KAFKA_BROKER_URL``); the database is
migrated and the lane topics are created under a fresh prefix. A fixed number of async httpx
workers post signed events (unique event ids) for a fixed duration; every 202 is one event the
broker confirmed (acks=all) before the answer. At the end the topic's offsets are summed to
check that exactly the accepted events are on the lane.

    .venv/bin/python bench/yay_webhook.py [--concurrency 64] [--duration 15]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import platform
import signal
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field

import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from sourcing.common.config import DEV_YAY_WEBHOOK_SECRET
from sourcing.common.migrate import upgrade
from sourcing.common.topics import LANES_BY_NAME
from sourcing.devstack import create_topics, delete_topics, start_test_stack
from sourcing.devstack._process import free_port

LOOPBACK = "127.0.0.1"
SERVER_CODE = """
import uvicorn
from sourcing.api.app import create_app
from sourcing.common.config import load_settings
uvicorn.run(create_app(load_settings()), host="{host}", port={port}, log_level="warning",
            access_log=False, log_config=None)
"""


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)
    accepted: int = 0
    other: dict[int, int] = field(default_factory=dict)
    errors: int = 0


def signed_request(secret: bytes, index: int) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "event": ("call.started", "call.answered", "call.ended")[index % 3],
            "callId": f"bench-call-{index // 3}",
            "occurredAt": "2026-11-28T10:15:02Z",
            "agentEmail": f"caller{index % 100}@example.com",
            "from": "+442071234567",
            "to": "+14155550100",
            "direction": "outbound",
            "durationSeconds": 42,
            "talkSeconds": 38,
            "recordingUrl": None,
            "metadata": {"taskId": str(uuid.uuid4())},
        }
    ).encode()
    headers = {
        "content-type": "application/json",
        "x-yay-signature": hmac.new(secret, body, hashlib.sha256).hexdigest(),
        "x-yay-timestamp": str(int(time.time())),
        "x-yay-event-id": f"bench-{uuid.uuid4()}",
    }
    return body, headers


async def load(base_url: str, *, concurrency: int, duration: float) -> tuple[Results, float]:
    secret = DEV_YAY_WEBHOOK_SECRET.encode()
    results = Results()
    counter = iter(range(10**12))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(30.0)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as client:
        for _ in range(20):  # warm-up: connections, producer metadata
            body, headers = signed_request(secret, next(counter))
            await client.post("/webhooks/yay", content=body, headers=headers)
        started = time.perf_counter()
        deadline = started + duration

        async def worker() -> None:
            while time.perf_counter() < deadline:
                body, headers = signed_request(secret, next(counter))
                sent = time.perf_counter()
                try:
                    response = await client.post("/webhooks/yay", content=body, headers=headers)
                except httpx.HTTPError:
                    results.errors += 1
                    continue
                results.latencies.append(time.perf_counter() - sent)
                if response.status_code == 202:
                    results.accepted += 1
                else:
                    results.other[response.status_code] = (
                        results.other.get(response.status_code, 0) + 1
                    )

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return results, elapsed


async def messages_on_lane(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        return sum(ends[tp] - starts[tp] for tp in tps)
    finally:
        await consumer.stop()


async def wait_for_server(base_url: str, process: asyncio.subprocess.Process) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=2.0) as client:
        for _ in range(300):
            if process.returncode is not None:
                raise RuntimeError(f"gateway exited with {process.returncode}")
            try:
                if (await client.get("/api/v1/system/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("gateway did not start within 30 s")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=15.0)
    args = parser.parse_args()
    concurrency = max(1, min(args.concurrency, 512))
    duration = max(1.0, min(args.duration, 120.0))  # bounded

    stack = await asyncio.to_thread(start_test_stack)
    prefix = f"bench-yay-{uuid.uuid4().hex[:8]}."
    process: asyncio.subprocess.Process | None = None
    try:
        await asyncio.to_thread(upgrade, stack.database_url)
        await create_topics(stack.bootstrap_servers, prefix=prefix)
        port = free_port(LOOPBACK)
        env = {
            **os.environ,
            "APP_ENV": "development",
            "DATABASE_URL": stack.database_url,
            "KAFKA_BROKER_URL": stack.bootstrap_servers,
            "KAFKA_TOPIC_PREFIX": prefix,
            "LOG_LEVEL": "warn",
            # One load generator is one client: lift the per-client limit for the measurement.
            "RATE_LIMIT_MAX_REQUESTS": "100000000",
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            SERVER_CODE.format(host=LOOPBACK, port=port),
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
        )
        base_url = f"http://{LOOPBACK}:{port}"
        await wait_for_server(base_url, process)
        results, elapsed = await load(base_url, concurrency=concurrency, duration=duration)
        on_lane = await messages_on_lane(
            stack.bootstrap_servers, prefix + LANES_BY_NAME["yay-call-events"].name
        )
    finally:
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=20)
            except TimeoutError:
                process.kill()
                await process.wait()
        try:
            await delete_topics(stack.bootstrap_servers, prefix=prefix)
        finally:
            await stack.aclose()

    latencies_ms = [value * 1000 for value in results.latencies]
    print("bench/yay_webhook.py: POST /webhooks/yay (signed, verified, published acks=all)")
    print(
        f"machine: {platform.platform()}, python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; broker {stack.broker_kind}; gateway: 1 uvicorn worker "
        f"(subprocess), load: {concurrency} concurrent httpx clients for {elapsed:.1f} s"
    )
    print(f"accepted events: {results.accepted} ({results.accepted / elapsed:.0f} events/s)")
    if latencies_ms:
        print(
            f"latency ms: p50 {percentile(latencies_ms, 0.50):.1f}  "
            f"p90 {percentile(latencies_ms, 0.90):.1f}  "
            f"p99 {percentile(latencies_ms, 0.99):.1f}  "
            f"max {max(latencies_ms):.1f}  mean {statistics.fmean(latencies_ms):.1f}"
        )
    print(f"other statuses: {results.other or 'none'}; transport errors: {results.errors}")
    print(f"messages on the yay-call-events topic: {on_lane} (20 warm-up + accepted)")
    ok = not results.other and not results.errors and on_lane == results.accepted + 20
    print("check: every accepted event is on the lane" if ok else "check: MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
