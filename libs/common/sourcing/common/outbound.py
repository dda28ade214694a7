"""The outbound provider plumbing: base URLs, time limits, credentials and the sandbox switch.

`Settings` inherits this mixin, so every process reads these fields from the same environment.
The credentials themselves (``<PROVIDER>_API_KEY``) live in `sourcing.common.config.Settings`;
:func:`provider_api_key` and :func:`provider_base_url` resolve them per provider key, routing
every provider to the local sandbox when ``SANDBOX_PROVIDERS`` is on (never in production:
`Settings` refuses that combination at start-up).
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

# The vendors' real public bases (spec/providers.md); the sandbox serves each vendor under
# `/<key>` followed by the path part of this base, so only the origin changes.
DEFAULT_BASE_URLS: Final[dict[str, str]] = {
    "leadmagic": "https://api.leadmagic.io",
    "prospeo": "https://api.prospeo.io",
    "exa": "https://api.exa.ai",
    "rocketreach": "https://api.rocketreach.co/api/v2",
    "wiza": "https://wiza.co/api",
    "forager": "https://api-v2.forager.ai",
    "zeliq": "https://api.zeliq.com/api",
    "contactout": "https://api.contactout.com",
    "datagm": "https://gateway.datagma.net/api/ingress",
    "peopledatalabs": "https://api.peopledatalabs.com/v5",
    "apollo": "https://api.apollo.io/api/v1",
    "openai": "https://api.openai.com/v1",
}

# What adapters send as the credential to the sandbox (it only checks that one is present).
SANDBOX_CREDENTIAL_PREFIX: Final = "sandbox-"


class ProviderSettings(BaseSettings):
    # --- Provider base URLs (override to point a provider at a stub server or a regional host) ---
    # LeadMagic email and mobile finder.
    LEADMAGIC_BASE_URL: str = DEFAULT_BASE_URLS["leadmagic"]
    # Prospeo enrich-person.
    PROSPEO_BASE_URL: str = DEFAULT_BASE_URLS["prospeo"]
    # Exa people search (contacts extracted from page text).
    EXA_BASE_URL: str = DEFAULT_BASE_URLS["exa"]
    # RocketReach person lookup (asynchronous: lookup, then checkStatus polling).
    ROCKETREACH_BASE_URL: str = DEFAULT_BASE_URLS["rocketreach"]
    # Wiza individual reveals (asynchronous: start, then polling).
    WIZA_BASE_URL: str = DEFAULT_BASE_URLS["wiza"]
    # Forager person contacts lookup.
    FORAGER_BASE_URL: str = DEFAULT_BASE_URLS["forager"]
    # Forager account id (part of every Forager path); Forager is unavailable without it.
    FORAGER_ACCOUNT_ID: str | None = None
    # Zeliq contact enrichment (the help centre also shows https://app.zeliq.com/api).
    ZELIQ_BASE_URL: str = DEFAULT_BASE_URLS["zeliq"]
    # Public URL of the gateway's Zeliq receiver (`https://<public host>/webhooks/zeliq`); each
    # request appends `/<requestId>/<email|phone>?signature=...`. Zeliq answers only by
    # callback, so it is unavailable while this (or ZELIQ_CALLBACK_SECRET) is unset.
    ZELIQ_CALLBACK_URL: str | None = None
    # ContactOut people lookup.
    CONTACTOUT_BASE_URL: str = DEFAULT_BASE_URLS["contactout"]
    # DataGM (Datagma) ingress gateway.
    DATAGM_BASE_URL: str = DEFAULT_BASE_URLS["datagm"]
    # People Data Labs person enrichment.
    PEOPLEDATALABS_BASE_URL: str = DEFAULT_BASE_URLS["peopledatalabs"]
    # Apollo.io people search (job-title discovery).
    APOLLO_BASE_URL: str = DEFAULT_BASE_URLS["apollo"]
    # OpenAI API (job-title scoring); any OpenAI-compatible endpoint works.
    OPENAI_BASE_URL: str = DEFAULT_BASE_URLS["openai"]

    # --- Outbound call limits ---
    # Per HTTP request timeout for every provider call (the shared outbound HTTP client).
    PROVIDER_TIMEOUT_SECONDS: float = Field(default=8.0, gt=0)
    # OpenAI request timeout (structured answers take longer than a lookup).
    OPENAI_TIMEOUT_SECONDS: float = Field(default=30.0, gt=0)
    # Retries the OpenAI SDK makes on its own before the agent's retry policy takes over.
    OPENAI_MAX_RETRIES: int = Field(default=2, ge=0, le=5)

    # --- Provider sandbox (development and tests; refused in production) ---
    # Where the sandbox listens; adapters use `{SANDBOX_URL}/<provider>` when SANDBOX_PROVIDERS=1.
    SANDBOX_URL: str = "http://127.0.0.1:8099"
    # Port `python -m sourcing.sandbox` binds (127.0.0.1 only).
    SANDBOX_PORT: int = Field(default=8099, ge=1, le=65535)
    # Artificial latency the sandbox adds to every answer (0 for benchmarks).
    SANDBOX_LATENCY_SECONDS: float = Field(default=0.0, ge=0)
    # How long the sandbox's "slow" answers take (must exceed PROVIDER_TIMEOUT_SECONDS).
    SANDBOX_SLOW_SECONDS: float = Field(default=30.0, ge=0)
    # The gateway the sandbox posts its fake providers' inbound events to (delivered, replies,
    # opt-outs, bounces); empty: the local gateway, http://127.0.0.1:$PORT.
    SANDBOX_WEBHOOK_URL: str | None = None
    # Seconds between a sandbox send and each inbound event it posts back.
    SANDBOX_INBOUND_DELAY_SECONDS: float = Field(default=1.0, ge=0)


def sandbox_enabled(settings: object) -> bool:
    """True when adapters must talk to the local sandbox (`SANDBOX_PROVIDERS`)."""
    return bool(getattr(settings, "SANDBOX_PROVIDERS", False))


def sandbox_base_url(sandbox_url: str, key: str) -> str:
    """The sandbox's stand-in for a provider's base URL: `{sandbox}/<key><real base path>`."""
    path = urlsplit(DEFAULT_BASE_URLS[key]).path.rstrip("/")
    return f"{sandbox_url.rstrip('/')}/{key}{path}"


def provider_base_url(settings: ProviderSettings, key: str) -> str:
    """Base URL for provider `key` (`leadmagic`, ..., `apollo`, `openai`), without trailing slash.

    With ``SANDBOX_PROVIDERS`` on, the sandbox prefix (e.g. ``{SANDBOX_URL}/leadmagic``,
    ``{SANDBOX_URL}/rocketreach/api/v2``); otherwise ``<KEY>_BASE_URL``.
    """
    if key not in DEFAULT_BASE_URLS:
        raise KeyError(f"unknown provider {key!r}")
    if sandbox_enabled(settings):
        return sandbox_base_url(settings.SANDBOX_URL, key)
    configured = getattr(settings, f"{key.upper()}_BASE_URL", None) or DEFAULT_BASE_URLS[key]
    return str(configured).rstrip("/")


def provider_api_key(settings: object, key: str) -> str | None:
    """The credential for provider `key` from ``<KEY>_API_KEY``, or None when unset.

    In sandbox mode a placeholder is returned instead, so a real key never leaves for the
    sandbox and every adapter is available in development without keys.
    """
    if sandbox_enabled(settings):
        return f"{SANDBOX_CREDENTIAL_PREFIX}{key}"
    secret = getattr(settings, f"{key.upper()}_API_KEY", None)
    if isinstance(secret, SecretStr):
        value = secret.get_secret_value().strip()
        return value or None
    if isinstance(secret, str):
        return secret.strip() or None
    return None
