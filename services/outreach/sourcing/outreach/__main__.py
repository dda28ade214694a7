"""``python -m sourcing.outreach``: the outreach, screening and google-sheets-sync agents."""

from __future__ import annotations

from sourcing.common.config import settings_or_exit
from sourcing.common.kafka.app import run_worker
from sourcing.outreach.app import build_app
from sourcing.outreach.settings import OutreachSettings


def main() -> None:
    run_worker(build_app(settings_or_exit("outreach", OutreachSettings)))


if __name__ == "__main__":
    main()
