"""`python -m sourcing.sandbox`: serve the provider sandbox on 127.0.0.1:SANDBOX_PORT.

Refuses to start when APP_ENV (or NODE_ENV) is production: the sandbox fakes every provider.
"""

from __future__ import annotations

import logging
import os
import sys

import uvicorn

from sourcing.common.config import ConfigurationError, Settings, load_settings
from sourcing.common.outbound import ProviderSettings
from sourcing.sandbox.app import create_sandbox_app

logger = logging.getLogger("sourcing.sandbox")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Checked before loading settings: production settings may be incomplete on purpose here.
    app_env = os.environ.get("APP_ENV") or os.environ.get("NODE_ENV") or ""
    if app_env.strip().lower() == "production":
        logger.error("refusing to start the provider sandbox: APP_ENV is production")
        return 2
    try:
        settings = load_settings(Settings)
    except ConfigurationError as exc:
        logger.error("%s", exc)
        return 2
    if settings.APP_ENV == "production":
        logger.error("refusing to start the provider sandbox: APP_ENV is production")
        return 2
    provider = settings if isinstance(settings, ProviderSettings) else ProviderSettings()
    app = create_sandbox_app(
        provider.SANDBOX_LATENCY_SECONDS,
        slow_seconds=provider.SANDBOX_SLOW_SECONDS,
        webhook_url=provider.SANDBOX_WEBHOOK_URL or f"http://127.0.0.1:{settings.PORT}",
        inbound_delay_seconds=provider.SANDBOX_INBOUND_DELAY_SECONDS,
    )
    logger.info("provider sandbox listening on http://127.0.0.1:%d", provider.SANDBOX_PORT)
    uvicorn.run(app, host="127.0.0.1", port=provider.SANDBOX_PORT, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
