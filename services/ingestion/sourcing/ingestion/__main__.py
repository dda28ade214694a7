"""``python -m sourcing.ingestion``: the sales-nav-ingestion, lead-ingestion and
job-title-discovery agents in one worker."""

from __future__ import annotations

from sourcing.common.config import settings_or_exit
from sourcing.common.kafka.app import run_worker
from sourcing.ingestion.app import build_app
from sourcing.ingestion.settings import IngestionSettings


def main() -> None:
    run_worker(build_app(settings_or_exit("ingestion", IngestionSettings)))


if __name__ == "__main__":
    main()
