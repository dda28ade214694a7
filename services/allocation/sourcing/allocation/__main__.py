"""``python -m sourcing.allocation``: the call-allocation agent."""

from __future__ import annotations

from sourcing.allocation.app import build_app
from sourcing.allocation.settings import AllocationSettings
from sourcing.common.config import settings_or_exit
from sourcing.common.kafka.app import run_worker


def main() -> None:
    run_worker(build_app(settings_or_exit("allocation", AllocationSettings)))


if __name__ == "__main__":
    main()
