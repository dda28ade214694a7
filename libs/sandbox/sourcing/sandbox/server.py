"""Serving the sandbox inside a running event loop (tests and benchmarks)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn

from sourcing.sandbox.app import create_sandbox_app

STARTUP_TIMEOUT_SECONDS = 5.0


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serve_sandbox(
    *, latency_seconds: float = 0.0, slow_seconds: float = 30.0
) -> AsyncIterator[str]:
    """``async with serve_sandbox() as url:`` the sandbox answers at ``url`` meanwhile."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_sandbox_app(latency_seconds, slow_seconds=slow_seconds),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        # uvicorn signals start-up only through a flag: poll it, bounded.
        for _ in range(int(STARTUP_TIMEOUT_SECONDS / 0.02)):
            if server.started or task.done():
                break
            await asyncio.sleep(0.02)
        if not server.started:
            raise RuntimeError(f"the sandbox did not start on port {port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
