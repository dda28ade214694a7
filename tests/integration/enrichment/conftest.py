"""The provider sandbox on a free port (uvicorn, in this event loop) for enrichment tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sourcing.sandbox.server import serve_sandbox

SANDBOX_SLOW_SECONDS = 1.0  # the sandbox's slow answers; the adapters time out before


@pytest.fixture(scope="session")
async def sandbox_url() -> AsyncIterator[str]:
    """The sandbox's base URL (zero latency, slow answers after 1 s)."""
    async with serve_sandbox(slow_seconds=SANDBOX_SLOW_SECONDS) as url:
        yield url
