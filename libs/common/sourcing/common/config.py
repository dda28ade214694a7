"""Settings: the operations manual's environment variables (§11) plus this system's own.

This is the kernel's class: the fields every process shares (runtime, data stores, auth, the
manual's credentials, the agents' reliability numbers, the outbound plumbing, deployment). Each
context adds its own fields in its ``settings.py`` on top of it, and each process loads and
validates its own class. Outside development a missing or placeholder secret, a short own
secret, a default database password or the sandbox stops start-up with one message naming
every offending variable.
"""

from __future__ import annotations

import logging
import sys
from functools import lru_cache
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sourcing.common.deploy import DeploySettings
from sourcing.common.outbound import ProviderSettings

AppEnv = Literal["development", "test", "staging", "production"]

# pino's level names (the manual's LOG_LEVEL) mapped onto Python's logging levels.
PINO_LEVELS: dict[str, int] = {
    "trace": 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
    "critical": logging.CRITICAL,
    "silent": logging.CRITICAL + 10,
}

# Development-only defaults; any of them outside development stops start-up.
DEV_JWT_SECRET = "dev-only-jwt-secret-change-me-0123456789abcdef"  # noqa: S105 - refused outside development
DEV_YAY_WEBHOOK_SECRET = "dev-only-yay-webhook-secret"  # noqa: S105 - refused outside development
DEV_SALES_NAV_WEBHOOK_SECRET = "dev-only-sales-nav-webhook-secret"  # noqa: S105 - refused outside development
DEV_SIGNUP_WEBHOOK_SECRET = "dev-only-signup-webhook-secret"  # noqa: S105 - refused outside development
DEV_ZELIQ_CALLBACK_SECRET = "dev-only-zeliq-callback-secret"  # noqa: S105 - refused outside development
# Inbound channel events (one webhook per provider family). The email key is the public half
# of a development-only P-256 pair whose private half signs the sandbox's SendGrid events.
DEV_EMAIL_WEBHOOK_PUBLIC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEpu1nsVMCwR0KLJCakv/SxfPQqBtMIMW9vX+Acta3gjdsoF/vDHKLDwV3"
    "zDZuNW8bBDJa2xXrsAYqGNFk019QmA=="
)
DEV_TWILIO_WEBHOOK_SECRET = "dev-only-twilio-webhook-secret"  # noqa: S105 - refused outside development
DEV_WHATSAPP_WEBHOOK_SECRET = "dev-only-whatsapp-webhook-secret"  # noqa: S105 - refused outside development
DEV_LINKEDIN_WEBHOOK_SECRET = "dev-only-linkedin-webhook-secret"  # noqa: S105 - refused outside development
DEV_TELEGRAM_WEBHOOK_SECRET = "dev-only-telegram-webhook-secret"  # noqa: S105 - refused outside development
DEV_MESSENGER_WEBHOOK_SECRET = "dev-only-messenger-webhook-secret"  # noqa: S105 - refused outside development
# Secrets required outside development, with the defaults development fills in.
DEV_DEFAULT_SECRETS = {
    "JWT_SECRET": DEV_JWT_SECRET,
    "YAY_WEBHOOK_SECRET": DEV_YAY_WEBHOOK_SECRET,
    "SALES_NAV_WEBHOOK_SECRET": DEV_SALES_NAV_WEBHOOK_SECRET,
    "SIGNUP_WEBHOOK_SECRET": DEV_SIGNUP_WEBHOOK_SECRET,
    "EMAIL_WEBHOOK_PUBLIC_KEY": DEV_EMAIL_WEBHOOK_PUBLIC_KEY,
    "TWILIO_WEBHOOK_SECRET": DEV_TWILIO_WEBHOOK_SECRET,
    "WHATSAPP_WEBHOOK_SECRET": DEV_WHATSAPP_WEBHOOK_SECRET,
    "LINKEDIN_WEBHOOK_SECRET": DEV_LINKEDIN_WEBHOOK_SECRET,
    "TELEGRAM_WEBHOOK_SECRET": DEV_TELEGRAM_WEBHOOK_SECRET,
    "MESSENGER_WEBHOOK_SECRET": DEV_MESSENGER_WEBHOOK_SECRET,
}
# Development fills these too, but they stay optional outside it (the feature is off unset).
DEV_OPTIONAL_SECRETS = {"ZELIQ_CALLBACK_SECRET": DEV_ZELIQ_CALLBACK_SECRET}
DEV_SECRET_VALUES = frozenset({*DEV_DEFAULT_SECRETS.values(), *DEV_OPTIONAL_SECRETS.values()})
MIN_JWT_SECRET_LENGTH = 32
# Secrets this platform issues itself (not a vendor's): held to MIN_JWT_SECRET_LENGTH outside
# development, like JWT_SECRET (AUTH_BOOTSTRAP_SECRET mints admin tokens).
OWN_SECRET_PREFIXES = ("JWT_", "AUTH_")
# Webhook secrets (every `*_WEBHOOK_SECRET` field) are required outside development: without
# one a webhook would accept anybody.
WEBHOOK_SECRET_SUFFIX = "_WEBHOOK_SECRET"  # noqa: S105 - a field-name suffix, not a secret
# A value containing one of these (case-insensitive) was copied from a template, not generated;
# every example file of the repository marks its secrets this way (a test keeps them so).
PLACEHOLDER_MARKERS = ("replace_me", "replace-me", "changeme", "change_me", "change-me")
# Passwords of PostgreSQL images, tutorials and `.env.example`: refused in a connection URL.
DEFAULT_PASSWORDS = frozenset({"postgres", "password", "admin", "root", "secret", "pass"})
# Longest access-token lifetime accepted: a leaked token stays useful at most this long.
MAX_JWT_ACCESS_TOKEN_TTL_SECONDS = 86_400
# Secrets that may be rotated: <NAME>_SECRET signs and verifies, <NAME>_PREVIOUS_SECRET (while
# set) still verifies what was signed before the rotation.
ROTATABLE_SECRETS = (
    "JWT",
    "YAY_WEBHOOK",
    "SALES_NAV_WEBHOOK",
    "SIGNUP_WEBHOOK",
    "ZELIQ_CALLBACK",
    "TWILIO_WEBHOOK",
    "WHATSAPP_WEBHOOK",
    "LINKEDIN_WEBHOOK",
    "TELEGRAM_WEBHOOK",
    "MESSENGER_WEBHOOK",
)


class ConfigurationError(RuntimeError):
    """Raised at start-up when the environment cannot run the platform safely."""


class Settings(ProviderSettings, DeploySettings, BaseSettings):
    """The fields every process shares; a context's class adds its own on top."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        case_sensitive=True,
        populate_by_name=True,
    )

    # Core runtime. APP_ENV replaces the manual's NODE_ENV, which is still read as a fallback.
    APP_ENV: AppEnv = Field(
        default="development", validation_alias=AliasChoices("APP_ENV", "NODE_ENV")
    )
    PORT: int = Field(default=3000, ge=1, le=65535)
    LOG_LEVEL: str = "info"

    # Data stores. KAFKA_BROKER_URL replaces REDIS_URL, KAFKA_TOPIC_PREFIX replaces REDIS_NAMESPACE.
    DATABASE_URL: str = "postgresql://postgres:postgres@localhost:5432/expert_sourcing"
    KAFKA_BROKER_URL: str = "localhost:9092"
    KAFKA_TOPIC_PREFIX: str = ""
    DATABASE_POOL_SIZE: int = Field(default=10, ge=1)
    DATABASE_COMMAND_TIMEOUT_SECONDS: float = Field(default=30.0, gt=0)

    # Authentication.
    JWT_ISSUER: str = "expert-sourcing-platform"
    JWT_AUDIENCE: str = "expert-sourcing-api"
    JWT_SECRET: SecretStr | None = None
    JWT_PREVIOUS_SECRET: SecretStr | None = None
    JWT_ACCESS_TOKEN_TTL_SECONDS: int = Field(
        default=3600, gt=0, le=MAX_JWT_ACCESS_TOKEN_TTL_SECONDS
    )
    AUTH_BOOTSTRAP_SECRET: SecretStr | None = None

    # HTTP gateway limits.
    RATE_LIMIT_MAX_REQUESTS: int = Field(default=300, gt=0)
    RATE_LIMIT_WINDOW_SECONDS: int = Field(default=60, gt=0)
    REQUEST_BODY_LIMIT_BYTES: int = Field(default=1_048_576, gt=0)
    BROKER_SEND_TIMEOUT_SECONDS: float = Field(default=10.0, gt=0)
    READINESS_TIMEOUT_SECONDS: float = Field(default=3.0, gt=0)
    # Where the scheduler writes the generated documentation (manual §4.9) and the gateway
    # reads it from, relative to the working directory.
    DOCS_OUTPUT_DIR: str = "docs/generated"

    # AI.
    OPENAI_API_KEY: SecretStr | None = None
    OPENAI_MODEL: str = "gpt-4o-mini"
    OPENAI_CLASSIFICATION_TEMPERATURE: float = Field(default=0.2, ge=0.0)

    # Sourcing.
    APOLLO_API_KEY: SecretStr | None = None
    SALES_NAV_WEBHOOK_SECRET: SecretStr | None = None
    SALES_NAV_WEBHOOK_PREVIOUS_SECRET: SecretStr | None = None

    # Enrichment providers.
    LEADMAGIC_API_KEY: SecretStr | None = None
    PROSPEO_API_KEY: SecretStr | None = None
    EXA_API_KEY: SecretStr | None = None
    ROCKETREACH_API_KEY: SecretStr | None = None
    WIZA_API_KEY: SecretStr | None = None
    FORAGER_API_KEY: SecretStr | None = None
    ZELIQ_API_KEY: SecretStr | None = None
    CONTACTOUT_API_KEY: SecretStr | None = None
    DATAGM_API_KEY: SecretStr | None = None
    PEOPLEDATALABS_API_KEY: SecretStr | None = None

    # Messaging channels.
    LINKEDIN_API_KEY: SecretStr | None = None
    EMAIL_PROVIDER_API_KEY: SecretStr | None = None
    TWILIO_API_KEY: SecretStr | None = None
    TWILIO_ACCOUNT_SID: str | None = None
    TWILIO_AUTH_TOKEN: SecretStr | None = None
    WHATSAPP_2CHAT_API_KEY: SecretStr | None = None
    RESPONDIO_API_KEY: SecretStr | None = None
    LINE_API_KEY: SecretStr | None = None
    WECHAT_API_KEY: SecretStr | None = None
    VIBER_API_KEY: SecretStr | None = None
    TELEGRAM_BOT_TOKEN: SecretStr | None = None
    KAKAOTALK_API_KEY: SecretStr | None = None
    VOICEMAIL_DROP_API_KEY: SecretStr | None = None

    # Integrations.
    YAY_WEBHOOK_SECRET: SecretStr | None = None
    YAY_WEBHOOK_PREVIOUS_SECRET: SecretStr | None = None
    YAY_API_KEY: SecretStr | None = None
    YAY_TIMESTAMP_TOLERANCE_SECONDS: int = Field(default=300, gt=0)
    YAY_FUTURE_SKEW_SECONDS: int = Field(default=30, ge=0)
    # HMAC key of the sign-up site's webhook (same timestamp window as Yay's).
    SIGNUP_WEBHOOK_SECRET: SecretStr | None = None
    SIGNUP_WEBHOOK_PREVIOUS_SECRET: SecretStr | None = None
    # HMAC key of the signatures in the callback URLs we give Zeliq (enrichment signs, the
    # gateway verifies); Zeliq is unavailable without it (and without ZELIQ_CALLBACK_URL).
    ZELIQ_CALLBACK_SECRET: SecretStr | None = None
    ZELIQ_CALLBACK_PREVIOUS_SECRET: SecretStr | None = None
    # Inbound channel events (replies, delivery, bounces, opt-outs), one webhook per provider
    # family; each verifies with its provider's own scheme (README "Inbound events").
    # SendGrid Event Webhook verification key (base64 DER public key, ECDSA P-256): public,
    # but required and checked outside development like the webhook secrets.
    EMAIL_WEBHOOK_PUBLIC_KEY: SecretStr | None = None
    # The Twilio auth token the account signs callbacks with (X-Twilio-Signature).
    TWILIO_WEBHOOK_SECRET: SecretStr | None = None
    TWILIO_WEBHOOK_PREVIOUS_SECRET: SecretStr | None = None
    # The WhatsApp (Meta) app secret of X-Hub-Signature-256.
    WHATSAPP_WEBHOOK_SECRET: SecretStr | None = None
    WHATSAPP_WEBHOOK_PREVIOUS_SECRET: SecretStr | None = None
    # The value of the Unipile-Auth header set when the Unipile webhook was created.
    LINKEDIN_WEBHOOK_SECRET: SecretStr | None = None
    LINKEDIN_WEBHOOK_PREVIOUS_SECRET: SecretStr | None = None
    # The secret_token given to Telegram's setWebhook (X-Telegram-Bot-Api-Secret-Token).
    TELEGRAM_WEBHOOK_SECRET: SecretStr | None = None
    TELEGRAM_WEBHOOK_PREVIOUS_SECRET: SecretStr | None = None
    # HMAC key of our own contract for the other messengers (LINE, Viber, WeChat, KakaoTalk,
    # Respond.io, iMessage, voicemail), signed like the Yay webhook.
    MESSENGER_WEBHOOK_SECRET: SecretStr | None = None
    MESSENGER_WEBHOOK_PREVIOUS_SECRET: SecretStr | None = None
    GOOGLE_SHEETS_SERVICE_ACCOUNT_JSON: SecretStr | None = None
    GOOGLE_SHEETS_SPREADSHEET_ID: str | None = None

    # Providers: development routes every adapter to the local sandbox.
    SANDBOX_PROVIDERS: bool = False

    # Agents: the reliability contract's numbers.
    AGENT_MAX_ATTEMPTS: int = Field(default=5, ge=1, le=10)
    AGENT_RETRY_BASE_SECONDS: float = Field(default=1.0, ge=0)
    AGENT_RETRY_MAX_SECONDS: float = Field(default=30.0, gt=0)
    AGENT_ATTEMPT_TIMEOUT_SECONDS: float = Field(default=60.0, gt=0)
    AGENT_BATCH_SIZE: int = Field(default=200, ge=1)
    # A batch is handed over when full or this long after its first message.
    AGENT_BATCH_LINGER_MS: float = Field(default=5.0, gt=0, le=1000)
    AGENT_BATCH_CONCURRENCY: int = Field(default=4, ge=1, le=64)
    OUTBOX_RELAY_INTERVAL_SECONDS: float = Field(default=0.2, gt=0)
    # A woken relay finding another process's relay at work tries again this soon (not at the
    # next poll): rows committed after that relay read its round wait for no poll.
    OUTBOX_RELAY_LOCK_RETRY_MS: float = Field(default=10.0, gt=0, le=1000)
    OUTBOX_RELAY_BATCH_SIZE: int = Field(default=500, ge=1)
    METRICS_PORT: int = Field(default=9100, ge=0, le=65535)
    # --- Tracing (sourcing.common.tracing): off unless the collector's endpoint is set ---
    # OTLP/HTTP collector base URL (spans go to `<endpoint>/v1/traces`); unset: no tracing at all.
    OTEL_EXPORTER_OTLP_ENDPOINT: str | None = None
    # Service name on this process's spans; unset: the process's own name (api, ingestion, ...).
    OTEL_SERVICE_NAME: str | None = None
    # Share of new traces kept (a trace started upstream keeps its upstream decision).
    OTEL_TRACES_SAMPLER_RATIO: float = Field(default=1.0, ge=0, le=1)
    # --- Kafka reliability layer (sourcing.common.kafka) ---
    # Idempotent producer needs InitProducerId, which Tansu lacks: enable it on Apache Kafka.
    KAFKA_IDEMPOTENT_PRODUCER: bool = False
    # Short group timeouts: Tansu holds JoinGroup for half the rebalance timeout.
    KAFKA_SESSION_TIMEOUT_SECONDS: float = Field(default=10.0, gt=0)
    KAFKA_REBALANCE_TIMEOUT_SECONDS: float = Field(default=20.0, gt=0)
    KAFKA_HEARTBEAT_INTERVAL_SECONDS: float = Field(default=3.0, gt=0)
    # Offsets of processed messages are committed this often (they are acked after DB commit).
    KAFKA_COMMIT_INTERVAL_SECONDS: float = Field(default=2.8, gt=0)
    # The longest the broker holds an agent's fetch while no message arrives (Faust fixes it at
    # 1.5 s): a partition whose messages were being handled is fetched again only when the
    # fetch in flight returns, so this bounds each hop's wait for a new message.
    KAFKA_FETCH_MAX_WAIT_MS: int = Field(default=50, ge=1, le=1500)
    # The Faust web server of an agent service (0 disables it); one port per service.
    AGENT_WEB_PORT: int = Field(default=6066, ge=0, le=65535)
    # Published outbox rows are kept this long for troubleshooting, then pruned.
    OUTBOX_RETENTION_SECONDS: float = Field(default=86_400.0, ge=0)
    # Liveness fails when nothing was processed for this long while messages wait.
    AGENT_STALL_SECONDS: float = Field(default=600.0, gt=0)
    # --- end Kafka reliability layer ---

    @field_validator("LOG_LEVEL")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        if value.lower() not in PINO_LEVELS:
            raise ValueError(f"LOG_LEVEL must be one of {', '.join(sorted(PINO_LEVELS))}")
        return value.lower()

    @field_validator("OPENAI_CLASSIFICATION_TEMPERATURE")
    @classmethod
    def _deterministic_temperature(cls, value: float) -> float:
        if value > 0.2:
            raise ValueError("OPENAI_CLASSIFICATION_TEMPERATURE must be <= 0.2 for determinism")
        return value

    @model_validator(mode="after")
    def _secrets(self) -> Settings:
        if self.is_development:
            for name, value in (DEV_DEFAULT_SECRETS | DEV_OPTIONAL_SECRETS).items():
                if getattr(self, name) is None:
                    setattr(self, name, SecretStr(value))
            for name in ("JWT_SECRET", "JWT_PREVIOUS_SECRET"):
                secret: SecretStr | None = getattr(self, name)
                if secret is not None and len(secret.get_secret_value()) < MIN_JWT_SECRET_LENGTH:
                    raise ValueError(f"{name} must be at least {MIN_JWT_SECRET_LENGTH} characters")
            return self
        problems = unsafe_settings(self)
        if problems:
            raise ValueError(
                f"refusing to start with APP_ENV={self.APP_ENV}: " + "; ".join(problems)
            )
        return self

    @property
    def is_development(self) -> bool:
        return self.APP_ENV in ("development", "test")

    def accepted_secrets(self, name: str) -> tuple[str, ...]:
        """``<name>_SECRET`` then, during a rotation, ``<name>_PREVIOUS_SECRET``: the values a
        signature or token may be checked against (sign with the first only)."""
        if name not in ROTATABLE_SECRETS:
            raise KeyError(name)
        current: SecretStr | None = getattr(self, f"{name}_SECRET")
        previous: SecretStr | None = getattr(self, f"{name}_PREVIOUS_SECRET")
        if current is None:  # validation fills or refuses it; only a bypassed model gets here
            raise ConfigurationError(f"{name}_SECRET is not set")
        values = [current.get_secret_value()]
        if previous is not None and previous.get_secret_value() not in values:
            values.append(previous.get_secret_value())
        return tuple(values)

    @property
    def log_level_number(self) -> int:
        return PINO_LEVELS[self.LOG_LEVEL]

    @property
    def async_database_url(self) -> str:
        """DATABASE_URL as SQLAlchemy's asyncpg dialect URL."""
        return to_asyncpg_url(self.DATABASE_URL)

    def topic(self, lane: str) -> str:
        """The Kafka topic name of a lane in this environment (prefixed)."""
        return f"{self.KAFKA_TOPIC_PREFIX}{lane}"


SettingsT = TypeVar("SettingsT", bound=Settings)


def unsafe_settings(settings: Settings) -> list[str]:
    """Every reason these settings may not run outside development, one entry per variable.

    Generic over the fields (every secret, every text value, every URL's password), so a
    setting added later is covered without touching this function.
    """
    problems = [
        problem
        for name in type(settings).model_fields
        if (problem := _unsafe_value(name, getattr(settings, name))) is not None
    ]
    if settings.SANDBOX_PROVIDERS:
        problems.append("SANDBOX_PROVIDERS must be off outside development")
    if settings.ZELIQ_CALLBACK_URL and settings.ZELIQ_CALLBACK_SECRET is None:
        problems.append("ZELIQ_CALLBACK_SECRET is required when ZELIQ_CALLBACK_URL is set")
    return problems


def _unsafe_value(name: str, value: object) -> str | None:
    secret = value.get_secret_value() if isinstance(value, SecretStr) else None
    if (value is None or secret == "") and (
        name in DEV_DEFAULT_SECRETS or name.endswith(WEBHOOK_SECRET_SUFFIX)
    ):
        return f"{name} is required"
    text = secret if secret is not None else value
    if not isinstance(text, str):
        return None
    if text in DEV_SECRET_VALUES:
        return f"{name} is a development default"
    if _is_placeholder(text):
        return f"{name} is a placeholder value"
    own = secret is not None and name.startswith(OWN_SECRET_PREFIXES)
    if own and text and len(text) < MIN_JWT_SECRET_LENGTH:
        return f"{name} must be at least {MIN_JWT_SECRET_LENGTH} characters"
    password = urlsplit(text).password if "://" in text else None
    if password is not None and password.lower() in DEFAULT_PASSWORDS:
        return f"{name} has a default password"
    return None


def _is_placeholder(value: str) -> bool:
    lowered = value.lower()
    return any(marker in lowered for marker in PLACEHOLDER_MARKERS)


def to_asyncpg_url(url: str) -> str:
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ConfigurationError("DATABASE_URL must be a postgresql:// URL")


def load_settings(cls: type[SettingsT], /, **overrides: object) -> SettingsT:
    """Build a process's settings (``cls``) from the environment, turning validation errors
    into one clear message."""
    from pydantic import ValidationError

    try:
        return cls(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from exc


def settings_or_exit(process: str, cls: type[SettingsT]) -> SettingsT:
    """Every entry point's settings load: unsafe or invalid settings exit with status 2 before
    anything is served, the message naming each offending variable."""
    try:
        return load_settings(cls)
    except ConfigurationError as exc:
        print(f"{process}: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The kernel's fields, for the tools that need only those (migrations, the dev stack)."""
    return load_settings(Settings)
