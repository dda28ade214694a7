from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sourcing.common.http import ExternalHttp
from sourcing.common.outbound import ProviderSettings
from tests.unit.enrichment.support import make_http, make_settings


@pytest.fixture
def settings() -> ProviderSettings:
    return make_settings()


@pytest.fixture
async def http() -> AsyncIterator[ExternalHttp]:
    client = make_http()
    yield client
    await client.aclose()
