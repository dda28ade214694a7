"""Settings: the manual's variables and defaults, refusal of unsafe configurations."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from sourcing.common.config import (
    DEV_DEFAULT_SECRETS,
    DEV_JWT_SECRET,
    DEV_ZELIQ_CALLBACK_SECRET,
    ConfigurationError,
)
from tests.fixtures.settings import Settings, load_settings

PRODUCTION_SECRETS = {
    "JWT_SECRET": "p" * 32,
    "YAY_WEBHOOK_SECRET": "yay-production",
    "SALES_NAV_WEBHOOK_SECRET": "sales-nav-production",
    "SIGNUP_WEBHOOK_SECRET": "signup-production",
    "EMAIL_WEBHOOK_PUBLIC_KEY": "sendgrid-verification-key-production",
}
# Everything a production deployment needs to start (webhook secrets of any later field too).
SAFE_PRODUCTION: dict[str, object] = {
    **PRODUCTION_SECRETS,
    **{
        name: f"{name.lower()}-production"
        for name in Settings.model_fields
        if name.endswith("_WEBHOOK_SECRET")
    },
    "AUTH_BOOTSTRAP_SECRET": "a" * 32,
    "DATABASE_URL": "postgresql://sourcing:s3cr3t-generated@db:5432/expert_sourcing",
}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Neither the developer's environment nor a .env file may leak into these tests."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("NODE_ENV", raising=False)
    monkeypatch.chdir(tmp_path)


def test_manual_defaults() -> None:
    settings = load_settings()
    assert settings.APP_ENV == "development"
    assert settings.PORT == 3000
    assert settings.LOG_LEVEL == "info"
    assert settings.DATABASE_URL == "postgresql://postgres:postgres@localhost:5432/expert_sourcing"
    assert settings.JWT_ISSUER == "expert-sourcing-platform"
    assert settings.JWT_AUDIENCE == "expert-sourcing-api"
    assert settings.JWT_ACCESS_TOKEN_TTL_SECONDS == 3600
    assert settings.OPENAI_MODEL == "gpt-4o-mini"
    assert settings.OPENAI_CLASSIFICATION_TEMPERATURE == 0.2
    assert settings.RATE_LIMIT_MAX_REQUESTS == 300
    assert settings.RATE_LIMIT_WINDOW_SECONDS == 60
    assert settings.REQUEST_BODY_LIMIT_BYTES == 1024 * 1024
    assert settings.AGENT_MAX_ATTEMPTS == 5
    assert settings.AGENT_RETRY_BASE_SECONDS == 1.0


def test_development_has_working_secret_defaults() -> None:
    settings = load_settings()
    assert settings.JWT_SECRET is not None
    assert settings.JWT_SECRET.get_secret_value() == DEV_JWT_SECRET
    assert settings.YAY_WEBHOOK_SECRET is not None
    assert settings.SALES_NAV_WEBHOOK_SECRET is not None
    assert settings.SIGNUP_WEBHOOK_SECRET is not None


def test_node_env_is_read_when_app_env_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODE_ENV", "production")
    for name, value in SAFE_PRODUCTION.items():
        monkeypatch.setenv(name, str(value))
    assert load_settings().APP_ENV == "production"
    monkeypatch.setenv("APP_ENV", "staging")
    assert load_settings().APP_ENV == "staging"


def test_dotenv_file_is_read_and_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("PORT=4100\nLOG_LEVEL=debug\nJWT_SECRET=\n")
    settings = load_settings()
    assert settings.PORT == 4100
    assert settings.log_level_number == logging.DEBUG
    assert settings.JWT_SECRET is not None  # an empty value means "unset": dev default applies
    monkeypatch.setenv("PORT", "4200")
    assert load_settings().PORT == 4200


@pytest.mark.parametrize("missing", sorted(PRODUCTION_SECRETS))
def test_missing_required_secret_stops_startup_naming_it(missing: str) -> None:
    values = {k: v for k, v in SAFE_PRODUCTION.items() if k != missing}
    with pytest.raises(ConfigurationError, match=f"{missing} is required"):
        load_settings(APP_ENV="production", **values)


def test_short_jwt_secret_is_refused_in_development_too() -> None:
    with pytest.raises(ConfigurationError, match="JWT_SECRET must be at least 32"):
        load_settings(JWT_SECRET="short")


# (variable, value, what the message says): each alone makes production settings unsafe.
UNSAFE = [
    ("JWT_SECRET", "x" * 31, "JWT_SECRET must be at least 32 characters"),
    ("JWT_SECRET", DEV_JWT_SECRET, "JWT_SECRET is a development default"),
    ("JWT_SECRET", "REPLACE_ME_with_at_least_32_random_characters", "JWT_SECRET is a placeholder"),
    ("AUTH_BOOTSTRAP_SECRET", "b" * 31, "AUTH_BOOTSTRAP_SECRET must be at least 32 characters"),
    ("AUTH_BOOTSTRAP_SECRET", "REPLACE_ME", "AUTH_BOOTSTRAP_SECRET is a placeholder"),
    ("YAY_WEBHOOK_SECRET", "changeme", "YAY_WEBHOOK_SECRET is a placeholder"),
    ("YAY_WEBHOOK_SECRET", DEV_DEFAULT_SECRETS["SALES_NAV_WEBHOOK_SECRET"], "development default"),
    ("SALES_NAV_WEBHOOK_SECRET", "Change-Me-Please", "SALES_NAV_WEBHOOK_SECRET is a placeholder"),
    ("OPENAI_API_KEY", "sk-REPLACE_ME", "OPENAI_API_KEY is a placeholder"),
    ("TWILIO_ACCOUNT_SID", "replace-me", "TWILIO_ACCOUNT_SID is a placeholder"),
    ("SANDBOX_PROVIDERS", True, "SANDBOX_PROVIDERS must be off"),
    ("ZELIQ_CALLBACK_URL", "https://api.example.com/webhooks/zeliq", "ZELIQ_CALLBACK_SECRET is"),
    ("ZELIQ_CALLBACK_SECRET", DEV_ZELIQ_CALLBACK_SECRET, "ZELIQ_CALLBACK_SECRET is a development"),
    ("DATABASE_URL", "postgresql://postgres:postgres@db:5432/x", "DATABASE_URL has a default"),
    ("DATABASE_URL", "postgresql://sourcing:Password@db/x", "DATABASE_URL has a default"),
    ("DATABASE_URL", "postgresql://sourcing:REPLACE_ME@db/x", "DATABASE_URL is a placeholder"),
]


@pytest.mark.parametrize("app_env", ["staging", "production"])
@pytest.mark.parametrize(("name", "value", "message"), UNSAFE)
def test_each_unsafe_setting_is_refused_outside_development(
    app_env: str, name: str, value: object, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings(APP_ENV=app_env, **(SAFE_PRODUCTION | {name: value}))
    # Development keeps working with the same value (the checks are for real deployments),
    # except a short JWT secret, which no environment accepts.
    if (name, value) != UNSAFE[0][:2]:
        load_settings(APP_ENV="development", **(SAFE_PRODUCTION | {name: value}))


def test_safe_production_settings_start_and_a_passwordless_url_is_fine() -> None:
    settings = load_settings(APP_ENV="production", **SAFE_PRODUCTION)
    assert settings.APP_ENV == "production"
    load_settings(
        APP_ENV="production", **(SAFE_PRODUCTION | {"DATABASE_URL": "postgresql://app@db/x"})
    )


def test_one_message_names_every_unsafe_variable() -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(
            APP_ENV="production",
            JWT_SECRET="REPLACE_ME",
            AUTH_BOOTSTRAP_SECRET="short",
            SANDBOX_PROVIDERS=True,
            DATABASE_URL="postgresql://postgres:postgres@db/x",
        )
    message = str(raised.value)
    for name in (
        "JWT_SECRET",
        "AUTH_BOOTSTRAP_SECRET",
        "YAY_WEBHOOK_SECRET",
        "SALES_NAV_WEBHOOK_SECRET",
        "SANDBOX_PROVIDERS",
        "DATABASE_URL",
    ):
        assert name in message, name


def test_every_webhook_secret_field_is_required_outside_development() -> None:
    """Generic over the settings class: a `*_WEBHOOK_SECRET` added later is required too."""
    webhook_secrets = {name for name in Settings.model_fields if name.endswith("_WEBHOOK_SECRET")}
    assert {"YAY_WEBHOOK_SECRET", "SALES_NAV_WEBHOOK_SECRET"} <= webhook_secrets
    with pytest.raises(ConfigurationError) as raised:
        load_settings(APP_ENV="production", JWT_SECRET="p" * 32)
    for name in webhook_secrets:
        assert f"{name} is required" in str(raised.value)


def _example_files() -> list[Path]:
    return sorted(
        path
        for path in REPO.rglob("*.example")
        if ".venv" not in path.parts and path.name.endswith("env.example")
    )


def test_every_secret_value_of_the_example_files_is_refused_outside_development() -> None:
    """Copying an example file and starting in production never works: each of its non-empty
    secret values (and URL passwords) is refused, naming the variable."""
    secret_fields = {
        name
        for name, field in Settings.model_fields.items()
        if "SecretStr" in str(field.annotation)
    }
    checked = 0
    for path in _example_files():
        values = dict(re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", path.read_text(), re.MULTILINE))
        for name, value in values.items():
            if name not in Settings.model_fields or not value:
                continue
            if name in secret_fields or re.search(r"://[^/@]*:[^/@]*@", value):
                checked += 1
                with pytest.raises(ConfigurationError, match=name):
                    load_settings(APP_ENV="production", **(SAFE_PRODUCTION | {name: value}))
    assert checked >= 1


@pytest.mark.parametrize(
    ("name", "level"),
    [("trace", 5), ("debug", 10), ("info", 20), ("warn", 30), ("error", 40), ("fatal", 50)],
)
def test_pino_log_levels_map_to_python(name: str, level: int) -> None:
    assert load_settings(LOG_LEVEL=name.upper()).log_level_number == level


def test_unknown_log_level_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="LOG_LEVEL"):
        load_settings(LOG_LEVEL="loud")


def test_topic_prefix_and_asyncpg_url() -> None:
    settings = load_settings(KAFKA_TOPIC_PREFIX="staging.", DATABASE_URL="postgres://u:p@db/x")
    assert settings.topic("lead-ingestion") == "staging.lead-ingestion"
    assert settings.async_database_url == "postgresql+asyncpg://u:p@db/x"


def test_env_example_documents_every_setting() -> None:
    documented = set(
        re.findall(r"^([A-Z][A-Z0-9_]+)=", (REPO / ".env.example").read_text(), re.MULTILINE)
    )
    assert documented == set(Settings.model_fields)


def test_the_zeliq_callback_secret_is_optional_until_zeliq_calls_back() -> None:
    assert load_settings(APP_ENV="production", **SAFE_PRODUCTION).ZELIQ_CALLBACK_SECRET is None
    settings = load_settings(
        APP_ENV="production",
        **SAFE_PRODUCTION,
        ZELIQ_CALLBACK_URL="https://api.example.com/webhooks/zeliq",
        ZELIQ_CALLBACK_SECRET="zeliq-callback-production",
    )
    assert settings.accepted_secrets("ZELIQ_CALLBACK") == ("zeliq-callback-production",)
    development = load_settings(APP_ENV="development")
    assert development.accepted_secrets("ZELIQ_CALLBACK") == (DEV_ZELIQ_CALLBACK_SECRET,)
