"""Helpers for provider tests: settings with every provider configured, fast HTTP, recordings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from sourcing.common.http import ExternalHttp, RetryPolicy
from sourcing.common.outbound import ProviderSettings
from tests.fixtures.settings import Settings

RECORDINGS = Path(__file__).parent / "recordings"
# Three attempts like production, without the waiting.
FAST_RETRY = RetryPolicy(
    attempts=3, base_seconds=0.0, cap_seconds=0.0, max_retry_after_seconds=0.01
)

API_KEYS: dict[str, str] = {
    "LEADMAGIC_API_KEY": "lm-test-key",
    "PROSPEO_API_KEY": "pr-test-key",
    "EXA_API_KEY": "exa-test-key",
    "ROCKETREACH_API_KEY": "rr-test-key",
    "WIZA_API_KEY": "wiza-test-key",
    "FORAGER_API_KEY": "fg-test-key",
    "ZELIQ_API_KEY": "sk-zeliq-test-key",
    "CONTACTOUT_API_KEY": "co-test-key",
    "DATAGM_API_KEY": "dgm-test-key",
    "PEOPLEDATALABS_API_KEY": "pdl-test-key",
    "APOLLO_API_KEY": "apollo-test-key",
    "OPENAI_API_KEY": "sk-openai-test-key",
}


class ProviderTestSettings(Settings, ProviderSettings):
    """`Settings` with the provider mixin (harmless once `Settings` inherits it itself)."""


def make_settings(*, with_keys: bool = True, **overrides: Any) -> ProviderSettings:
    values: dict[str, Any] = {
        "APP_ENV": "test",
        "SANDBOX_PROVIDERS": False,
        "FORAGER_ACCOUNT_ID": "acc-42",
        "ZELIQ_CALLBACK_URL": "https://hooks.example.test/zeliq",
        "ENRICHMENT_POLL_INTERVAL_SECONDS": 0.0,
        "ENRICHMENT_POLL_MAX_ATTEMPTS": 3,
        "ENRICHMENT_TIME_BUDGET_SECONDS": 5.0,
    }
    if with_keys:
        values.update(API_KEYS)
    values.update(overrides)
    return ProviderTestSettings(_env_file=None, **values)


def make_http(
    *, timeout_seconds: float = 1.0, transport: httpx.AsyncBaseTransport | None = None
) -> ExternalHttp:
    return ExternalHttp(timeout_seconds=timeout_seconds, retry=FAST_RETRY, transport=transport)


def recording(name: str) -> Any:
    """A recorded vendor answer (JSON) from `recordings/<name>.json`."""
    return json.loads((RECORDINGS / f"{name}.json").read_text())


def sent_json(request: httpx.Request) -> Any:
    return json.loads(request.content)
