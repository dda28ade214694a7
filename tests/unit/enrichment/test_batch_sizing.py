"""The enrichment lane sizes its batches on its own: ``ENRICHMENT_BATCH_SIZE`` messages split
into ``ENRICHMENT_BATCH_CONCURRENCY`` shards, while the service's other batch lane (ranking)
keeps the kernel's ``AGENT_BATCH_CONCURRENCY``."""

from __future__ import annotations

from pathlib import Path

from sourcing.common.kafka.app import reliable_consumer
from sourcing.enrichment.app import ENRICHMENT_CONSUMER, RANKING_CONSUMER, build_app
from tests.fixtures.settings import load_settings


def test_the_enrichment_lane_has_its_own_shard_count(tmp_path: Path) -> None:
    settings = load_settings(
        APP_ENV="test", ENRICHMENT_BATCH_CONCURRENCY=3, AGENT_BATCH_CONCURRENCY=5
    )
    app = build_app(settings, web_enabled=False, datadir=tmp_path)
    assert reliable_consumer(app, ENRICHMENT_CONSUMER).batch_concurrency == 3
    assert reliable_consumer(app, RANKING_CONSUMER).batch_concurrency == 5
