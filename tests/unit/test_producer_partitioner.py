"""The producers' partitioner puts every key where aiokafka's default (the Java client's
murmur2) puts it: the gateway, the outbox relay and any other client agree on a key's
partition, so one key's messages stay in order."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner

from sourcing.common.kafka.producer import partition_for_key

KEYS = [
    b"bench-caller-7@example.com",
    b"0c9f5a3e-51f1-4d8e-9a11-5b1e2f7c9d20",
    b"a",
    b"ab",
    b"abc",
    "caller-\u00e9@example.com".encode(),
]


@pytest.mark.parametrize("partitions", [1, 6, 20, 64])
def test_a_key_lands_on_the_default_partitioners_partition(partitions: int) -> None:
    all_partitions = list(range(partitions))
    for key in KEYS:
        expected = DefaultPartitioner()(key, all_partitions, all_partitions)
        assert partition_for_key(key, all_partitions, all_partitions) == expected
        # a second time, from the remembered hash
        assert partition_for_key(key, all_partitions, all_partitions) == expected


def test_keys_spread_over_the_partitions() -> None:
    all_partitions = list(range(20))
    chosen = {
        partition_for_key(f"caller-{n}@example.com".encode(), all_partitions, all_partitions)
        for n in range(200)
    }
    assert len(chosen) > 15


def test_no_key_takes_an_available_partition() -> None:
    assert partition_for_key(None, [0, 1, 2, 3], [2]) == 2
