"""Settings follow ownership: each process loads its own class, the gateway the contexts it
mounts, and a context's endpoints read their own class from the app."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from sourcing.allocation.settings import AllocationSettings
from sourcing.api.settings import GatewaySettings
from sourcing.calls.settings import CallSettings
from sourcing.common.config import ConfigurationError, Settings, load_settings
from sourcing.common.web import settings_of
from sourcing.enrichment.settings import EnrichmentSettings
from sourcing.ingestion.settings import IngestionSettings
from sourcing.outreach.settings import OutreachSettings
from sourcing.scheduler.settings import SchedulerSettings
from tests.fixtures.settings import Settings as EveryProcess

CONTEXT_CLASSES = (
    AllocationSettings,
    CallSettings,
    EnrichmentSettings,
    IngestionSettings,
    OutreachSettings,
    SchedulerSettings,
)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in EveryProcess.model_fields:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_the_kernel_holds_no_context_field() -> None:
    kernel = set(Settings.model_fields)
    for cls in CONTEXT_CLASSES:
        own = set(cls.model_fields) - kernel
        assert own, f"{cls.__name__} adds no field of its own"
    assert "CALL_TASK_DIAL_DEADLINE_SECONDS" not in kernel
    assert "ENRICHMENT_BATCH_SIZE" not in kernel
    assert "OUTREACH_COOLDOWN_DAYS" not in kernel


def test_a_process_validates_only_the_variables_it_reads() -> None:
    empty_window = {"CALLING_WINDOW_START_HOUR": 9, "CALLING_WINDOW_END_HOUR": 9}
    with pytest.raises(ConfigurationError, match="CALLING_WINDOW_START_HOUR"):
        load_settings(CallSettings, **empty_window)
    with pytest.raises(ConfigurationError, match="CALLING_WINDOW_START_HOUR"):
        load_settings(AllocationSettings, **empty_window)
    enrichment = load_settings(EnrichmentSettings, **empty_window)
    assert not hasattr(enrichment, "CALLING_WINDOW_START_HOUR")


def test_the_gateway_loads_every_context_it_mounts() -> None:
    gateway = load_settings(GatewaySettings, OUTREACH_COOLDOWN_DAYS=7, JOB_TITLE_MAX_COMPANIES=3)
    mounted = (AllocationSettings, EnrichmentSettings, IngestionSettings, OutreachSettings)
    assert all(isinstance(gateway, cls) for cls in mounted)
    assert (gateway.OUTREACH_COOLDOWN_DAYS, gateway.JOB_TITLE_MAX_COMPANIES) == (7, 3)
    assert not isinstance(gateway, CallSettings | SchedulerSettings)


async def test_endpoints_read_their_own_class_from_the_app() -> None:
    def request(settings: Settings) -> SimpleNamespace:
        return SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(settings=settings)))

    outreach = settings_of(OutreachSettings)
    gateway = load_settings(GatewaySettings)
    assert await outreach(request(gateway)) is gateway  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="OutreachSettings"):
        await outreach(request(load_settings(EnrichmentSettings)))  # type: ignore[arg-type]
