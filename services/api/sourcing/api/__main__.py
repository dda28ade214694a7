"""`python -m sourcing.api` starts the gateway on PORT."""

from __future__ import annotations

import uvicorn

from sourcing.api.app import create_app
from sourcing.api.settings import GatewaySettings
from sourcing.common.config import settings_or_exit
from sourcing.common.logging import configure_logging
from sourcing.common.process import freeze_startup_heap, refuse_unsafe_start
from sourcing.common.tracing import setup_tracing


def main() -> None:
    settings = settings_or_exit("api", GatewaySettings)
    configure_logging(service="api", level=settings.log_level_number)
    refuse_unsafe_start("api", settings)
    setup_tracing(settings, "api")  # before create_app: the app reads whether tracing is on
    app = create_app(settings)
    freeze_startup_heap()
    uvicorn.run(
        app,
        host="0.0.0.0",  # noqa: S104 - the gateway serves every interface of its container
        port=settings.PORT,
        log_config=None,
        # The edge middleware writes the access log; uvicorn's own is disabled by the logging
        # set-up, but would still build its arguments for every response.
        access_log=False,
        timeout_graceful_shutdown=20,
        # Forwarded headers are read by the gateway's edge, from FORWARDED_ALLOW_IPS only.
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
