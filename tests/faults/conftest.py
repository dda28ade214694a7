"""One dedicated stack per fault-test module (it is stopped and restarted by the tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.faults.harness import Platform, running_platform


@pytest.fixture(scope="module")
async def platform(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    async with running_platform(tmp_path_factory.mktemp("faults")) as running:
        yield running
