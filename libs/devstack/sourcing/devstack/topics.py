"""Topic initialisation for the embedded stack: the shared implementation lives in
:mod:`sourcing.common.topics_init` (also the production topic-init step); these wrappers
raise the devstack's errors so development tools report them like every other failure.
"""

from __future__ import annotations

from collections.abc import Iterable

from sourcing.common import topics_init
from sourcing.common.topics import LANES, Lane
from sourcing.devstack._process import DevstackError

broker_is_ready = topics_init.broker_is_ready


class BrokerUnavailable(DevstackError, TimeoutError):
    """The broker did not answer metadata requests in time."""


def _translated(exc: topics_init.TopicInitError) -> DevstackError:
    if isinstance(exc, topics_init.BrokerNotReady):
        return BrokerUnavailable(str(exc))
    return DevstackError(str(exc))


async def wait_for_broker(bootstrap_servers: str, timeout: float = 60.0) -> None:  # noqa: ASYNC109
    """Block until the broker answers metadata; `BrokerUnavailable` after `timeout` seconds."""
    try:
        await topics_init.wait_for_broker(bootstrap_servers, timeout=timeout)
    except topics_init.TopicInitError as exc:
        raise _translated(exc) from exc


async def create_topics(
    bootstrap_servers: str,
    *,
    prefix: str = "",
    lanes: Iterable[Lane] = LANES,
    replication_factor: int = 1,
    timeout: float = 60.0,  # noqa: ASYNC109
) -> None:
    """See :func:`sourcing.common.topics_init.create_topics`."""
    try:
        await topics_init.create_topics(
            bootstrap_servers,
            prefix=prefix,
            lanes=lanes,
            replication_factor=replication_factor,
            timeout=timeout,
        )
    except topics_init.TopicInitError as exc:
        raise _translated(exc) from exc


async def delete_topics(
    bootstrap_servers: str,
    *,
    prefix: str = "",
    lanes: Iterable[Lane] = LANES,
    timeout: float = 30.0,  # noqa: ASYNC109
) -> None:
    """See :func:`sourcing.common.topics_init.delete_topics`."""
    try:
        await topics_init.delete_topics(
            bootstrap_servers, prefix=prefix, lanes=lanes, timeout=timeout
        )
    except topics_init.TopicInitError as exc:
        raise _translated(exc) from exc
