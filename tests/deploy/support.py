"""What the deployment files are checked against: the settings class, the entry points, the
lanes each service consumes (read from the service apps themselves)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.metrics_core import Metric

from sourcing.common.config import DEV_DEFAULT_SECRETS
from sourcing.common.deploy import DeploySettings
from sourcing.common.topics import LANES_BY_NAME
from tests.fixtures.settings import Settings

REPO = Path(__file__).resolve().parents[2]
API = "api"
AGENTS = ("ingestion", "enrichment", "outreach", "calls", "allocation", "scheduler")
SERVICES = (API, *AGENTS)
AGENT_HEALTH_PATHS = {"/health/live", "/health/ready", "/metrics"}
# Environment variables the settings class reads (field names and their aliases).
KNOWN_SETTINGS = {
    *Settings.model_fields,
    *DeploySettings.model_fields,
    "NODE_ENV",
}
REQUIRED_OUTSIDE_DEVELOPMENT = set(DEV_DEFAULT_SECRETS)


def module_has_main(module: str) -> bool:
    """``python -m <module>`` works: a module with ``main``, or a package with ``__main__``."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        return False
    if spec.submodule_search_locations is not None:
        return importlib.util.find_spec(f"{module}.__main__") is not None
    return hasattr(importlib.import_module(module), "main")


def python_module_of(command: list[str]) -> str:
    assert command[:2] == ["python", "-m"], f"not a `python -m` command: {command}"
    return command[2]


def build_settings(env: dict[str, Any]) -> Settings:
    """Settings from exactly ``env`` (no .env file), as a container would build them (an
    empty variable counts as unset, env_ignore_empty)."""
    return Settings(_env_file=None, **{k: v for k, v in env.items() if v != ""})


def per_message_budget_seconds(settings: Settings) -> float:
    """Worst case for one message: every attempt times out, with the longest backoffs."""
    attempts = settings.AGENT_MAX_ATTEMPTS
    return (
        attempts * settings.AGENT_ATTEMPT_TIMEOUT_SECONDS
        + (attempts - 1) * settings.AGENT_RETRY_MAX_SECONDS
    )


@cache
def lanes_of(service: str) -> frozenset[str]:
    """The lanes the service's app consumes (its agents, not a hand-written list)."""
    settings = build_settings({"APP_ENV": "test", "AGENT_WEB_PORT": 0})
    module = importlib.import_module(f"sourcing.{service}.app")
    options: dict[str, Any] = {"run_cycles": False} if service == "scheduler" else {}
    app = module.build_app(settings, **options)
    return frozenset(consumer.lane for consumer in app.runtime.consumers.values())


def max_partitions(service: str) -> int:
    return max(LANES_BY_NAME[lane].partitions for lane in lanes_of(service))


def read_env_file(path: Path) -> dict[str, str]:
    """A .env file as compose reads it (``NAME=value`` lines; comments and blanks skipped)."""
    return dict(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", path.read_text(), re.MULTILINE))


def parse_duration_seconds(value: str | int) -> float:
    """A compose duration (``450s``, ``1m30s``) in seconds."""
    if isinstance(value, int):
        return float(value)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"bad duration {value!r}"
    return sum(float(n) * units[u] for n, u in parts)


def url_port_and_path(command: str) -> tuple[int, str]:
    match = re.search(r"http://127\.0\.0\.1:(\d+)(/[^'\" ]*)", command)
    assert match, f"no local URL in {command!r}"
    return int(match.group(1)), match.group(2)


def promql_metric_names(expressions: Iterable[str]) -> set[str]:
    """The platform's metric names a set of PromQL expressions reads."""
    return set(re.findall(r"\b(sourcing_[a-z0-9_]+)", " ".join(expressions)))


def alert_expressions() -> list[str]:
    rules = yaml.safe_load((REPO / "deploy/prometheus/alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((REPO / "deploy/grafana/dashboards/expert-sourcing.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def exported_names(families: Iterable[Metric]) -> set[str]:
    """Every series name the families produce: counters as ``x_total``, histograms as
    ``x_bucket``/``x_sum``/``x_count`` even before their first observation."""
    names: set[str] = set()
    for family in families:
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "histogram":
            names.update(f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count"))
    return names
