"""Per-client sliding-window rate limit (the manual's 300 requests per 60 seconds)."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class SlidingWindowRateLimiter:
    """Remembers the request times of each client inside the window.

    In-process state: each gateway replica enforces the limit on what it receives, which
    behind a load balancer bounds a client at (replicas x limit).
    """

    def __init__(
        self,
        *,
        max_requests: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_requests = max_requests
        self.window_seconds = window_seconds
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._next_sweep = clock() + window_seconds

    def check(self, client: str) -> int | None:
        """Record a request; None when allowed, else the seconds to wait before retrying."""
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        hits = self._hits.setdefault(client, deque())
        horizon = now - self.window_seconds
        while hits and hits[0] <= horizon:
            hits.popleft()
        if len(hits) >= self.max_requests:
            return max(1, math.ceil(hits[0] + self.window_seconds - now))
        hits.append(now)
        return None

    @property
    def tracked_clients(self) -> int:
        return len(self._hits)

    def _sweep(self, now: float) -> None:
        """Forget clients that have been quiet for a whole window, so memory stays bounded."""
        horizon = now - self.window_seconds
        for client in [c for c, hits in self._hits.items() if not hits or hits[-1] <= horizon]:
            del self._hits[client]
        self._next_sweep = now + self.window_seconds
