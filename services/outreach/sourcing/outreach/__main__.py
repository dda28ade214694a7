"""``python -m sourcing.outreach``: the outreach, screening and google-sheets-sync agents."""

from __future__ import annotations

from sourcing.common.config import get_settings
from sourcing.common.kafka.app import run_worker
from sourcing.outreach.app import build_app


def main() -> None:
    run_worker(build_app(get_settings()))


if __name__ == "__main__":
    main()
