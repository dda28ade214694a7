"""Fixtures of the channel adapter tests: a clean environment, a mocked network, a client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import respx

from sourcing.common.http import ExternalHttp
from tests.unit.outreach.support import FAST_RETRY, ChannelTestSettings


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Neither the developer's environment nor a .env file may leak into these tests."""
    for name in ChannelTestSettings.model_fields:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("NODE_ENV", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def network() -> Iterator[respx.MockRouter]:
    """Every outbound request must hit a declared route (anything else fails the test)."""
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def http() -> AsyncIterator[ExternalHttp]:
    client = ExternalHttp(retry=FAST_RETRY)
    try:
        yield client
    finally:
        await client.aclose()
