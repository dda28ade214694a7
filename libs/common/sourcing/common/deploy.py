"""Settings of the production shape (kernel): topic creation, broker security, proxies in front.

A mixin of :class:`sourcing.common.config.Settings`; document every field in .env.example.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class DeploySettings(BaseSettings):
    """Fields of this area (same environment-variable conventions as Settings)."""

    # Read on its own by the topic-init step too, so the same .env applies.
    model_config = SettingsConfigDict(
        env_file=".env", env_ignore_empty=True, extra="ignore", case_sensitive=True
    )

    # Replicas of each lane topic the topic-init step creates (3 on a production cluster).
    KAFKA_REPLICATION_FACTOR: int = Field(default=1, ge=1, le=16)

    # How every Kafka client (producers, Faust apps, topic-init) talks to the brokers.
    KAFKA_SECURITY_PROTOCOL: KafkaSecurityProtocol = "PLAINTEXT"
    KAFKA_SASL_MECHANISM: KafkaSaslMechanism = "SCRAM-SHA-512"
    KAFKA_SASL_USERNAME: str | None = None
    KAFKA_SASL_PASSWORD: SecretStr | None = None
    # PEM files: the CA that signed the brokers' certificates (empty: the system's CAs), and a
    # client certificate + key for brokers that require mutual TLS.
    KAFKA_SSL_CAFILE: str | None = None
    KAFKA_SSL_CERTFILE: str | None = None
    KAFKA_SSL_KEYFILE: str | None = None

    # Peers (IPs or CIDRs, comma-separated) whose X-Forwarded-For / Forwarded headers are
    # believed. Empty: none, the TCP peer is the client.
    FORWARDED_ALLOW_IPS: str = ""

    @field_validator("FORWARDED_ALLOW_IPS")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in _split(value):
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError as exc:
                raise ValueError(f"FORWARDED_ALLOW_IPS: {part!r} is not an IP or CIDR") from exc
        return value

    @property
    def trusted_proxies(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """FORWARDED_ALLOW_IPS as networks."""
        return [
            ipaddress.ip_network(part, strict=False) for part in _split(self.FORWARDED_ALLOW_IPS)
        ]

    @model_validator(mode="after")
    def _kafka_security(self) -> DeploySettings:
        sasl = self.KAFKA_SECURITY_PROTOCOL.startswith("SASL_")
        if sasl and (not self.KAFKA_SASL_USERNAME or self.KAFKA_SASL_PASSWORD is None):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.KAFKA_SECURITY_PROTOCOL} needs "
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        if bool(self.KAFKA_SSL_CERTFILE) != bool(self.KAFKA_SSL_KEYFILE):
            raise ValueError("KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together")
        return self


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]
