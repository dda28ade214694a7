"""The producers and consumers each lane declares (the one table, in the lane registry) hold
against the code: what each service's agents consume, and what its agent-only modules and the
gateway's routes publish."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from sourcing.common.events import MESSAGE_TYPES
from sourcing.common.topics import LANES
from tests.fixtures.settings import load_settings

SERVICES_DIR = Path(__file__).resolve().parents[2] / "services"
AGENT_SERVICES = ("ingestion", "enrichment", "outreach", "calls", "allocation", "scheduler")
# Modules that run only in their service's worker process (``service.py`` also runs in the
# gateway, behind the context's endpoints, so it proves neither).
AGENT_ONLY = ("app.py", "handlers.py", "cycle.py")


def _published_lanes(paths: list[Path]) -> set[str]:
    """Lanes of the registered messages these modules build (``Model(`` or ``Model.for_``)."""
    source = "\n".join(path.read_text(encoding="utf-8") for path in paths)
    return {
        model.lane
        for model in MESSAGE_TYPES.values()
        if re.search(rf"\b{model.__name__}(\(|\.for_)", source)
    }


@pytest.mark.parametrize("service", AGENT_SERVICES)
def test_a_lanes_consumers_are_the_services_with_an_agent_on_it(
    service: str, tmp_path: Path
) -> None:
    build_app = importlib.import_module(f"sourcing.{service}.app").build_app
    app = build_app(load_settings(APP_ENV="test"), web_enabled=False, datadir=tmp_path)
    consumed = {consumer.lane for consumer in app.runtime.consumers.values()}
    assert consumed == {lane.name for lane in LANES if service in lane.consumers}


@pytest.mark.parametrize("service", AGENT_SERVICES)
def test_a_service_is_declared_on_every_lane_its_agents_publish_to(service: str) -> None:
    package = SERVICES_DIR / service / "sourcing" / service
    modules = [path for path in package.rglob("*.py") if path.name in AGENT_ONLY]
    declared = {lane.name for lane in LANES if service in lane.producers}
    assert _published_lanes(modules) - declared == set()


def test_the_gateway_is_declared_on_every_lane_its_routes_publish_to() -> None:
    modules = [*SERVICES_DIR.glob("api/sourcing/api/**/*.py")]
    modules += [*SERVICES_DIR.glob("*/sourcing/*/endpoints.py")]
    declared = {lane.name for lane in LANES if "api" in lane.producers}
    assert _published_lanes(modules) - declared == set()
