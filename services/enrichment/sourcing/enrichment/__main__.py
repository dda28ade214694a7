"""`python -m sourcing.enrichment` starts the enrichment service (enrichment, ranking)."""

from __future__ import annotations

from sourcing.common.config import settings_or_exit
from sourcing.common.kafka.app import run_worker
from sourcing.enrichment.app import build_app
from sourcing.enrichment.settings import EnrichmentSettings


def main() -> None:
    run_worker(build_app(settings_or_exit("enrichment", EnrichmentSettings)))


if __name__ == "__main__":
    main()
