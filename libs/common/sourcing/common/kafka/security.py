"""How every Kafka client authenticates: one place turns the ``KAFKA_SECURITY_PROTOCOL`` /
``KAFKA_SASL_*`` / ``KAFKA_SSL_*`` settings into aiokafka keyword arguments (producers, the
admin client of topic-init) and Faust broker credentials (agents)."""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING, Any

from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    IllegalSaslStateError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.helpers import create_ssl_context

from sourcing.common.deploy import DeploySettings

# Faust is the agents' (imported when an agent builds its app), not the gateway's.
if TYPE_CHECKING:
    import faust

# What a broker answers to credentials or a certificate it does not accept: retrying cannot help.
_REJECTED = (
    SaslAuthenticationFailed,
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    UnsupportedSaslMechanismError,
    IllegalSaslStateError,
    ssl.SSLError,
)


class KafkaAuthenticationError(RuntimeError):
    """The broker refused this process's credentials or TLS settings (start-up stops)."""


def ssl_context(settings: DeploySettings) -> ssl.SSLContext | None:
    """The TLS context of SSL / SASL_SSL (None for plaintext protocols): verifies the broker
    against ``KAFKA_SSL_CAFILE`` (or the system's CAs) and its host name."""
    if not settings.KAFKA_SECURITY_PROTOCOL.endswith("SSL"):
        return None
    context: ssl.SSLContext = create_ssl_context(
        cafile=settings.KAFKA_SSL_CAFILE,
        certfile=settings.KAFKA_SSL_CERTFILE,
        keyfile=settings.KAFKA_SSL_KEYFILE,
    )
    return context


def client_security(settings: DeploySettings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
    protocol = settings.KAFKA_SECURITY_PROTOCOL
    kwargs: dict[str, Any] = {"security_protocol": protocol, "ssl_context": ssl_context(settings)}
    if protocol.startswith("SASL_"):
        password = settings.KAFKA_SASL_PASSWORD  # required with SASL_* by settings validation
        kwargs["sasl_mechanism"] = settings.KAFKA_SASL_MECHANISM
        kwargs["sasl_plain_username"] = settings.KAFKA_SASL_USERNAME
        kwargs["sasl_plain_password"] = password.get_secret_value() if password else None
    return kwargs


def faust_credentials(settings: DeploySettings) -> faust.auth.Credentials | None:
    """The same security as Faust ``broker_credentials`` (None: plaintext)."""
    import faust

    kwargs = client_security(settings)
    if "sasl_mechanism" in kwargs:
        return faust.SASLCredentials(
            username=kwargs["sasl_plain_username"],
            password=kwargs["sasl_plain_password"],
            mechanism=kwargs["sasl_mechanism"],
            ssl_context=kwargs["ssl_context"],
        )
    if kwargs["ssl_context"] is not None:
        return faust.SSLCredentials(kwargs["ssl_context"])
    return None


async def check_broker_credentials(
    settings: DeploySettings,
    servers: list[str],
    *,
    timeout: float,  # noqa: ASYNC109 - becomes the connection's request timeout too
) -> None:
    """Connect and authenticate once; raise :class:`KafkaAuthenticationError` when the broker
    rejects the credentials or TLS handshake. An unreachable broker is not an error here: the
    clients keep retrying until it is back (readiness reports it meanwhile)."""
    security = client_security(settings)
    for server in servers:
        host, _, port = server.rpartition(":")
        try:
            async with asyncio.timeout(timeout):
                conn = await create_conn(
                    host, int(port), request_timeout_ms=int(timeout * 1000), **security
                )
        except _REJECTED as exc:
            who = (
                f"user {settings.KAFKA_SASL_USERNAME!r} ({settings.KAFKA_SASL_MECHANISM}) over "
                if "sasl_mechanism" in security
                else ""
            )
            raise KafkaAuthenticationError(
                f"Kafka broker {server} refused {who}{settings.KAFKA_SECURITY_PROTOCOL}: "
                f"{type(exc).__name__}: {exc}; check KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_* "
                "and KAFKA_SSL_*"
            ) from exc
        except (KafkaError, OSError, TimeoutError):
            continue
        conn.close()
        return
