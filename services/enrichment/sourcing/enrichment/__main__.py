"""`python -m sourcing.enrichment` starts the enrichment service (enrichment, ranking)."""

from __future__ import annotations

from sourcing.common.config import settings_or_exit
from sourcing.common.kafka.app import run_worker
from sourcing.enrichment.app import build_app


def main() -> None:
    run_worker(build_app(settings_or_exit("enrichment")))


if __name__ == "__main__":
    main()
