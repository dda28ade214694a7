"""The provider sandbox on a free loopback port, for ingestion tests (Apollo and OpenAI)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn

from sourcing.sandbox.app import create_sandbox_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def running_sandbox() -> AsyncIterator[str]:
    """``async with running_sandbox() as url:`` the sandbox serves at ``url`` meanwhile."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_sandbox_app(),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
    )
    task = asyncio.create_task(server.serve())
    for _ in range(250):
        if server.started:
            break
        await asyncio.sleep(0.02)
    assert server.started, "sandbox did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
