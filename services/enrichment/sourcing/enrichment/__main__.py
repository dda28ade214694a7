"""`python -m sourcing.enrichment` starts the enrichment service (enrichment, ranking)."""

from __future__ import annotations

import sys

from sourcing.common.config import ConfigurationError, load_settings
from sourcing.common.kafka.app import run_worker
from sourcing.enrichment.app import build_app


def main() -> int:
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        print(f"enrichment: {exc}", file=sys.stderr)
        return 2
    run_worker(build_app(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
