from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.e2e.stack import Agents


@pytest.fixture
def agents(kafka_sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path) -> Agents:
    """Builds and runs the agent services the way every journey does (tests/e2e/stack.py)."""
    return Agents(kafka_sessionmaker, tmp_path)
