"""Process-level tuning shared by the gateway and the agent services."""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Exempt everything built at start-up (modules, models, routes, the app) from collection.

    A full collection otherwise walks those hundreds of thousands of long-lived objects every
    time; on the gateway that pause was the tail of the request latency. Call once, after the
    app is built and before serving.
    """
    gc.collect()
    gc.freeze()
