"""Messages of the scheduler's lanes: dead-letter replays and documentation jobs."""

from __future__ import annotations
