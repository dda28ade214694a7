"""Serve the provider sandbox with uvicorn on a free loopback port, in the running event loop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn

from sourcing.sandbox.app import create_sandbox_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def serve_sandbox(
    *, latency_seconds: float = 0.0, slow_seconds: float = 1.0
) -> AsyncIterator[str]:
    """``async with serve_sandbox() as url:`` the sandbox answers at ``url``."""
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
        for _ in range(250):
            if server.started or task.done():
                break
            await asyncio.sleep(0.02)
        if not server.started:
            raise RuntimeError("sandbox did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
