"""Kafka reliability layer shared by every service.

* :mod:`.producer` - ``EnvelopeProducer`` (acks=all, awaited sends, ``BrokerUnavailable``)
* :mod:`.outbox` - ``publish`` (in the caller's transaction) and ``OutboxRelay``
* :mod:`.app` - ``create_app`` (Faust app factory) and ``reliable_agent``
* :mod:`.consumer` - decode/validate/dedup/retry/dead-letter, independent of Faust
* :mod:`.retry` - ``TransientError``, ``PermanentError``, ``is_transient``
* :mod:`.metrics` - Prometheus metrics

The Faust modules are not imported here, so the gateway can use the producer without Faust.
"""

from sourcing.common.kafka.producer import BrokerUnavailable, EnvelopeProducer, SendResult
from sourcing.common.kafka.retry import PermanentError, TransientError, is_transient

__all__ = [
    "BrokerUnavailable",
    "EnvelopeProducer",
    "PermanentError",
    "SendResult",
    "TransientError",
    "is_transient",
]
