"""The API over HTTP: the bearer token, the error envelope and cursor paging."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from sourcing.cli.config import Config

TIMEOUT_SECONDS = 30.0
MAX_PAGES = 10_000  # a server that never stops paging cannot hang ``--all``

Params = Mapping[str, str | int | bool | None]


class ApiError(Exception):
    """An error answer, read from the envelope ``{"error": {code, message, details}}``."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    @classmethod
    def of(cls, response: httpx.Response) -> ApiError:
        try:
            error = response.json()["error"]
            return cls(
                response.status_code,
                str(error.get("code", "error")),
                str(error.get("message", "")),
                error.get("details"),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            text = response.text.strip()[:500] or response.reason_phrase
            return cls(response.status_code, "http_error", text)


class Unreachable(Exception):
    """No HTTP answer at all (connection refused, DNS, timeout)."""


class Api:
    def __init__(self, config: Config, *, transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {config.token}"} if config.token else {}
        self.base_url = config.api_url
        self._http = httpx.Client(
            base_url=config.api_url, headers=headers, timeout=TIMEOUT_SECONDS, transport=transport
        )

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """The decoded JSON answer (None for an empty one); :class:`ApiError` for 4xx/5xx."""
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, path, params=query, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise Unreachable(f"cannot reach the API at {self.base_url}: {exc}") from exc
        if response.is_error:
            raise ApiError.of(response)
        return response.json() if response.content else None

    def get(self, path: str, params: Params | None = None) -> Any:
        return self.request("GET", path, params=params)

    def pages(self, path: str, params: Params, *, every: bool) -> dict[str, Any]:
        """One page, or with ``every`` all of them (following ``nextCursor``) in one answer."""
        page = self.get(path, params)
        if not every:
            return dict(page)
        items = list(page["items"])
        for _ in range(MAX_PAGES):
            cursor = page.get("nextCursor")
            if not cursor:
                break
            page = self.get(path, {**params, "cursor": cursor})
            items.extend(page["items"])
        return {**page, "items": items, "nextCursor": None}


def _query_value(value: str | int | bool) -> str | int:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
