"""Prometheus helpers shared by the gateway and the agent services."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest, start_http_server

from sourcing.common.config import Settings


def render_metrics() -> tuple[bytes, str]:
    """The process's metrics in Prometheus text format, with the content type to serve."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def serve_metrics(settings: Settings) -> None:
    """Expose /metrics of an agent service on its own port (0 disables it)."""
    if settings.METRICS_PORT:
        start_http_server(settings.METRICS_PORT, addr="0.0.0.0")  # scraped from other hosts
