"""Settings: the manual's variables and defaults, refusal of unsafe configurations."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from sourcing.common.config import (
    DEV_JWT_SECRET,
    ConfigurationError,
    Settings,
    load_settings,
)

PRODUCTION_SECRETS = {
    "JWT_SECRET": "p" * 32,
    "YAY_WEBHOOK_SECRET": "yay-production",
    "SALES_NAV_WEBHOOK_SECRET": "sales-nav-production",
    "SIGNUP_WEBHOOK_SECRET": "signup-production",
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
    for name, value in PRODUCTION_SECRETS.items():
        monkeypatch.setenv(name, value)
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
    values = {k: v for k, v in PRODUCTION_SECRETS.items() if k != missing}
    with pytest.raises(ConfigurationError, match=missing):
        load_settings(APP_ENV="production", **values)


def test_short_jwt_secret_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="JWT_SECRET must be at least 32"):
        load_settings(APP_ENV="production", **(PRODUCTION_SECRETS | {"JWT_SECRET": "x" * 31}))
    with pytest.raises(ConfigurationError, match="JWT_SECRET"):
        load_settings(JWT_SECRET="short")


def test_development_default_secret_is_refused_outside_development() -> None:
    with pytest.raises(ConfigurationError, match="JWT_SECRET still has the development default"):
        load_settings(APP_ENV="production", **(PRODUCTION_SECRETS | {"JWT_SECRET": DEV_JWT_SECRET}))


def test_temperature_above_point_two_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="OPENAI_CLASSIFICATION_TEMPERATURE"):
        load_settings(OPENAI_CLASSIFICATION_TEMPERATURE=0.3)
    assert (
        load_settings(OPENAI_CLASSIFICATION_TEMPERATURE=0.0).OPENAI_CLASSIFICATION_TEMPERATURE == 0
    )


def test_sandbox_can_never_be_enabled_in_production() -> None:
    with pytest.raises(ConfigurationError, match="SANDBOX_PROVIDERS"):
        load_settings(APP_ENV="production", SANDBOX_PROVIDERS=True, **PRODUCTION_SECRETS)


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
