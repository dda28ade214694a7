"""Security suite fixtures: a gateway holding real secrets, and a log capture that must never
show one.

Every log record emitted while the suite runs (root logger, DEBUG) is formatted through the
production :class:`JsonFormatter` and kept. Every secret the suite knows of (the settings'
secrets and provider keys, every ``Authorization`` value, webhook signature and shared secret
it sent) is checked against those lines after each test and once more at the end of the suite.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.auth import Principal, Role, mint_token
from sourcing.common.logging import JsonFormatter
from tests.fixtures.api import ApiSettingsFactory, serve_gateway
from tests.fixtures.settings import Settings

# Request headers whose values are credentials.
CREDENTIAL_HEADERS = (
    "authorization",
    "x-yay-signature",
    "x-signup-signature",
    "x-sales-nav-secret",
    "x-auth-bootstrap-secret",
)
# Shorter values (a guessed "wrong" secret, a bare "Bearer") are too common to be told apart
# from ordinary words in a log line; every real credential is longer.
MIN_SECRET_LENGTH = 16
ROLES = ("admin", "ops", "caller")


class LogCapture(logging.Handler):
    """Keeps every record as the JSON line production would write."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(JsonFormatter("security-suite"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # pragma: no cover - a record that cannot be formatted
            self.handleError(record)


class KnownSecrets:
    """Every credential value the suite has configured or sent."""

    def __init__(self) -> None:
        self.values: set[str] = set()

    def add(self, value: str | None) -> None:
        if value is None:
            return
        value = value.strip()
        scheme, _, rest = value.partition(" ")
        if scheme.lower() in ("bearer", "basic") and rest:
            self.add(rest)
        if value.lower().startswith("sha256="):
            self.add(value[len("sha256=") :])
        if len(value) >= MIN_SECRET_LENGTH:
            self.values.add(value)

    def add_settings(self, settings: Settings) -> None:
        for name in type(settings).model_fields:
            value = getattr(settings, name)
            if isinstance(value, SecretStr):
                self.add(value.get_secret_value())

    def leaks(self, lines: list[str]) -> list[tuple[str, str]]:
        return [
            (secret[:6] + "…", line[:300])
            for line in lines
            for secret in self.values
            if secret in line
        ]


_CAPTURE = LogCapture()
_SECRETS = KnownSecrets()


@pytest.fixture(scope="package", autouse=True)
def suite_logs() -> Iterator[LogCapture]:
    """Captures the whole suite's logs at DEBUG; fails the suite if any line holds a secret."""
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(_CAPTURE)
    root.setLevel(logging.DEBUG)
    try:
        yield _CAPTURE
    finally:
        root.removeHandler(_CAPTURE)
        root.setLevel(previous_level)
    leaks = _SECRETS.leaks(_CAPTURE.lines)
    assert not leaks, f"secrets in the suite's logs: {leaks[:5]}"


@pytest.fixture(autouse=True)
def no_secret_logged(suite_logs: LogCapture) -> Iterator[None]:
    """The same check after each test, so a leak names the test that caused it."""
    start = len(suite_logs.lines)
    yield
    leaks = _SECRETS.leaks(suite_logs.lines[start:])
    assert not leaks, f"secrets in this test's logs: {leaks[:5]}"


@pytest.fixture
def known_secrets() -> KnownSecrets:
    return _SECRETS


def _secret_overrides() -> dict[str, Any]:
    """A distinct random value for every secret setting, so a leak of any of them shows."""
    overrides: dict[str, Any] = {}
    for name, field in Settings.model_fields.items():
        if "SecretStr" in repr(field.annotation):
            overrides[name] = f"{name.lower()}-{secrets.token_hex(16)}"
    overrides["GOOGLE_SHEETS_SERVICE_ACCOUNT_JSON"] = (
        '{"type": "service_account", "private_key": "' + secrets.token_hex(24) + '"}'
    )
    return overrides


@pytest.fixture
def security_settings(api_settings_factory: ApiSettingsFactory, lane_topics: str) -> Settings:
    """Development settings with every secret and provider key set to a random value, on this
    test's own topics; the rate limit is out of the way (its own tests live with the gateway)."""
    settings = api_settings_factory(
        **_secret_overrides(), KAFKA_TOPIC_PREFIX=lane_topics, RATE_LIMIT_MAX_REQUESTS=1_000_000
    )
    _SECRETS.add_settings(settings)
    return settings


async def _record_credentials(request: httpx.Request) -> None:
    for name in CREDENTIAL_HEADERS:
        _SECRETS.add(request.headers.get(name))


@pytest.fixture
async def gateway(
    security_settings: Settings, sessionmaker_rolled_back: async_sessionmaker[AsyncSession]
) -> AsyncIterator[httpx.AsyncClient]:
    """The real gateway (real database, rolled back; real broker) holding real-looking secrets."""
    async with serve_gateway(security_settings, sessionmaker_rolled_back) as client:
        client.event_hooks = {"request": [_record_credentials], "response": []}
        yield client


@pytest.fixture
def bearer(security_settings: Settings) -> Callable[..., dict[str, str]]:
    """`bearer(role, user_id)`: an Authorization header with a valid token of that role."""

    def headers(role: str, user_id: str = "user-1") -> dict[str, str]:
        token = mint_token(security_settings, Principal(user_id=user_id, role=Role(role)))
        _SECRETS.add(token)
        return {"Authorization": f"Bearer {token}"}

    return headers
