"""The Prometheus alert rules: the failure modes they must cover, their shape, a Grafana panel
for each, and Prometheus loading them in compose. (That a running service exports every
metric they name: tests/integration/test_metrics_scrape.py.)"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.deploy.support import (
    REPO,
    alert_expressions,
    dashboard_expressions,
    promql_metric_names,
)

PROMETHEUS = REPO / "deploy/prometheus"
# The outage each alert reports, by the metric it watches.
EXPECTED = {
    "ConsumerLagGrowing": "sourcing_consumer_lag_messages",
    "DeadLettersArriving": "sourcing_messages_dead_lettered_total",
    "WebhookErrors": "sourcing_http_requests_total",
    "OutboxRelayBehind": "sourcing_outbox_relay_lag_seconds",
    "NoSchedulerLeader": "sourcing_scheduler_cycles_total",
    "CallersIdleWhileTasksPending": "sourcing_call_tasks_pending",
}


@pytest.fixture(scope="module")
def rules() -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def test_every_failure_mode_has_an_alert_on_its_metric(rules: dict[str, dict[str, Any]]) -> None:
    assert set(rules) == set(EXPECTED)
    for name, metric in EXPECTED.items():
        assert metric in promql_metric_names([rules[name]["expr"]]), name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_alert_has_severity_summary_and_a_balanced_expression(
    rules: dict[str, dict[str, Any]], name: str
) -> None:
    rule = rules[name]
    assert rule["labels"]["severity"] in ("warning", "critical")
    assert rule["annotations"]["summary"]
    expr = rule["expr"]
    for opening, closing in ("()", "[]", "{}"):
        assert expr.count(opening) == expr.count(closing), (name, opening)
    assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}


def test_the_dashboard_shows_every_metric_an_alert_watches() -> None:
    missing = promql_metric_names(alert_expressions()) - promql_metric_names(
        dashboard_expressions()
    )
    assert not missing, f"alerts without a Grafana panel: {missing}"


def test_compose_prometheus_loads_the_rules() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    prometheus = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["prometheus"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in prometheus["volumes"] if v.startswith(".")}
    for path in config["rule_files"]:
        assert (REPO / mounts[path]).resolve() == (PROMETHEUS / "alerts.yml").resolve()
