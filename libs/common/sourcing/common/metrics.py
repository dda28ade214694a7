"""Prometheus helpers shared by the gateway and the agent services."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest


def render_metrics() -> tuple[bytes, str]:
    """The process's metrics in Prometheus text format, with the content type to serve."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
