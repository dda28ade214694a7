"""JSON logging with the correlation id of the request or message being handled."""

from __future__ import annotations

import json
import logging
import sys
import traceback
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)

# Attributes every LogRecord has; anything else passed through `extra=` is logged as a field.
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "correlation_id", "color_message"}
)
_REDACTED_KEYS = ("authorization", "secret", "password", "token", "signature", "api_key")


def _install_record_factory() -> None:
    """Stamp every LogRecord with the correlation id current where the line was logged.

    Reading the contextvar at format time would be too late for handlers that format later
    (queues, pytest's capture): the request or message has finished by then.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "stamps_correlation_id", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.correlation_id = correlation_id_var.get()
        return record

    factory.stamps_correlation_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


_install_record_factory()


def new_correlation_id() -> str:
    return str(uuid.uuid4())


def current_correlation_id() -> str | None:
    return correlation_id_var.get()


def redact(fields: dict[str, Any]) -> dict[str, Any]:
    """Mask values whose key names a credential, so secrets never reach a log line."""
    return {
        key: "[redacted]" if any(word in key.lower() for word in _REDACTED_KEYS) else value
        for key, value in fields.items()
    }


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        correlation_id = getattr(record, "correlation_id", None)
        if correlation_id:
            entry["correlationId"] = correlation_id
        extra = {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS}
        entry.update(redact(extra))
        if record.exc_info:
            entry["error"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(entry, default=str)


def configure_logging(*, service: str, level: int) -> None:
    """Route every logger (ours, uvicorn's, Faust's) through one JSON handler on stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "faust", "mode", "aiokafka"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Access lines are logged by our own middleware, with the correlation id.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every request URL at INFO, and some vendors put credentials in the URL
    # (Telegram's bot token in the path, WeChat's access token in the query).
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(max(level, logging.WARNING))
