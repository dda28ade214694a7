"""``python -m sourcing.calls``: the yay-call-events, call-validation and performance agents."""

from __future__ import annotations

from sourcing.calls.app import build_app
from sourcing.calls.settings import CallSettings
from sourcing.common.config import settings_or_exit
from sourcing.common.kafka.app import run_worker


def main() -> None:
    run_worker(build_app(settings_or_exit("calls", CallSettings)))


if __name__ == "__main__":
    main()
