"""Serving the sandbox (or any ASGI app) inside a running event loop (tests and benchmarks)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from sourcing.sandbox.app import create_sandbox_app

STARTUP_TIMEOUT_SECONDS = 5.0


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serve_sandbox(
    *,
    latency_seconds: float = 0.0,
    slow_seconds: float = 30.0,
    webhook_url: str | None = None,
    inbound_delay_seconds: float = 1.0,
) -> AsyncIterator[str]:
    """``async with serve_sandbox() as url:`` the sandbox answers at ``url`` meanwhile (and
    posts provider events to the gateway at ``webhook_url``, when given)."""
    app = create_sandbox_app(
        latency_seconds,
        slow_seconds=slow_seconds,
        webhook_url=webhook_url,
        inbound_delay_seconds=inbound_delay_seconds,
    )
    async with serve_on_free_port(app, name="the sandbox") as url:
        yield url


@asynccontextmanager
async def serve_on_free_port(app: FastAPI, *, name: str) -> AsyncIterator[str]:
    """``async with serve_on_free_port(app, name=...) as url:`` any ASGI app (its lifespan
    run by uvicorn) answers at ``url`` meanwhile."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
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
            raise RuntimeError(f"{name} did not start on port {port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
