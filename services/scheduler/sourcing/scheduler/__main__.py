"""``python -m sourcing.scheduler``: the maintenance cycle, dead-letter sink and docs agent."""

from __future__ import annotations

from sourcing.common.config import settings_or_exit
from sourcing.common.kafka.app import run_worker
from sourcing.scheduler.app import build_app
from sourcing.scheduler.settings import SchedulerSettings


def main() -> None:
    run_worker(build_app(settings_or_exit("scheduler", SchedulerSettings)))


if __name__ == "__main__":
    main()
