"""Google Sheets API v4 client of the google-sheets-sync agent (service-account JWT).

A JWT signed with the service account's key (``GOOGLE_SHEETS_SERVICE_ACCOUNT_JSON``) is
exchanged at the token URI for a Bearer token (cached until shortly before it expires); rows
are appended with ``values/{range}:append`` (the answer's ``updates.updatedRange`` says which
row was taken, remembered in GoogleSheetRowMap) and overwritten with ``PUT values/{range}``.
A tab per project is added with ``:batchUpdate addSheet`` and gets a header row. Base URLs come
from settings (``GOOGLE_SHEETS_BASE_URL``, ``GOOGLE_SHEETS_TOKEN_URL``) or, in sandbox mode,
from the provider sandbox.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from sourcing.common.http import ExternalHttp, ProviderError
from sourcing.common.kafka.retry import PermanentError
from sourcing.outreach.channels.settings import sandbox_url
from sourcing.outreach.settings import OutreachSettings

SCOPE = "https://www.googleapis.com/auth/spreadsheets"
DEFAULT_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 - a public endpoint URL, not a secret
PROVIDER = "google-sheets"
# Refresh the access token this long before Google's stated expiry.
TOKEN_SAFETY_SECONDS = 60.0
_UPDATED_ROW = re.compile(r"![A-Z]+(\d+)(?::[A-Z]+\d+)?$")


class SheetsNotConfigured(Exception):
    """Sheets sync is off: no service account key or spreadsheet id."""


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    client_email: str
    private_key: str
    private_key_id: str | None
    token_uri: str | None

    @classmethod
    def from_json(cls, raw: str) -> ServiceAccount:
        try:
            data = json.loads(raw)
            return cls(
                client_email=str(data["client_email"]),
                private_key=str(data["private_key"]),
                private_key_id=data.get("private_key_id"),
                token_uri=data.get("token_uri"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(
                "GOOGLE_SHEETS_SERVICE_ACCOUNT_JSON is not a service account key "
                "(needs client_email and private_key)"
            ) from exc


def sign_assertion(claims: dict[str, Any], private_key_pem: str, *, kid: str | None) -> str:
    """The service account's RS256 JWT assertion (keys pasted with escaped newlines work).

    PyJWT (with cryptography, about 10 MiB) is imported on the first token, not at the outreach
    service's start: without Google credentials it is never needed."""
    import jwt

    try:
        return jwt.encode(
            claims,
            private_key_pem.replace("\\n", "\n"),
            algorithm="RS256",
            headers={"kid": kid} if kid else None,
        )
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        raise PermanentError(
            "GOOGLE_SHEETS_SERVICE_ACCOUNT_JSON private_key is not a usable RSA key"
        ) from exc


def quote_tab(tab: str) -> str:
    """A tab name as used in A1 notation (single quotes, inner quotes doubled)."""
    return "'" + tab.replace("'", "''") + "'"


def row_from_range(updated_range: str) -> int:
    """The first row number of an A1 range such as ``'Tab'!A7:K7``."""
    match = _UPDATED_ROW.search(updated_range)
    if match is None:
        raise ValueError(f"cannot read a row number from range {updated_range!r}")
    return int(match.group(1))


class GoogleSheetsClient:
    """The few Sheets calls the sync needs, on one spreadsheet."""

    def __init__(
        self,
        settings: OutreachSettings,
        *,
        http: ExternalHttp | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.spreadsheet_id = settings.GOOGLE_SHEETS_SPREADSHEET_ID
        raw = settings.GOOGLE_SHEETS_SERVICE_ACCOUNT_JSON
        self._raw_key = raw.get_secret_value() if raw is not None else None
        self._own_http = http is None
        self.http = http or ExternalHttp(
            timeout_seconds=settings.GOOGLE_SHEETS_TIMEOUT_SECONDS, transport=transport
        )
        self._clock = clock
        self._token: str | None = None
        self._token_expires_at = 0.0
        self._lock = asyncio.Lock()
        self._known_tabs: set[str] = set()

    @property
    def configured(self) -> bool:
        return bool(self._raw_key and self.spreadsheet_id)

    def missing_settings(self) -> list[str]:
        missing = []
        if not self._raw_key:
            missing.append("GOOGLE_SHEETS_SERVICE_ACCOUNT_JSON")
        if not self.spreadsheet_id:
            missing.append("GOOGLE_SHEETS_SPREADSHEET_ID")
        return missing

    @property
    def sandboxed(self) -> bool:
        return bool(self.settings.SANDBOX_PROVIDERS)

    @property
    def api_base(self) -> str:
        if self.sandboxed:
            return f"{sandbox_url(self.settings)}/google-sheets"
        return self.settings.GOOGLE_SHEETS_BASE_URL.rstrip("/")

    def token_url(self, account: ServiceAccount) -> str:
        if self.sandboxed:
            return f"{sandbox_url(self.settings)}/google-oauth/token"
        return self.settings.GOOGLE_SHEETS_TOKEN_URL or account.token_uri or DEFAULT_TOKEN_URL

    @property
    def spreadsheet_url(self) -> str:
        if not self.spreadsheet_id:
            raise SheetsNotConfigured("GOOGLE_SHEETS_SPREADSHEET_ID is not set")
        return f"{self.api_base}/v4/spreadsheets/{quote(self.spreadsheet_id, safe='')}"

    async def aclose(self) -> None:
        if self._own_http:
            await self.http.aclose()

    # --- auth -----------------------------------------------------------------------------

    async def access_token(self) -> str:
        async with self._lock:
            now = self._clock()
            if self._token and now < self._token_expires_at:
                return self._token
            if not self._raw_key:
                raise SheetsNotConfigured("GOOGLE_SHEETS_SERVICE_ACCOUNT_JSON is not set")
            account = ServiceAccount.from_json(self._raw_key)
            audience = self.token_url(account)
            issued = int(now)
            assertion = sign_assertion(
                {
                    "iss": account.client_email,
                    "scope": SCOPE,
                    "aud": audience,
                    "iat": issued,
                    "exp": issued + 3600,
                },
                account.private_key,
                kid=account.private_key_id,
            )
            response = await self._call(
                "POST",
                audience,
                data={
                    "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                    "assertion": assertion,
                },
                authorized=False,
            )
            body = response.json()
            token = body.get("access_token")
            if not isinstance(token, str) or not token:
                raise PermanentError("token endpoint answered without access_token")
            lifetime = float(body.get("expires_in") or 3600)
            self._token = token
            self._token_expires_at = now + max(0.0, lifetime - TOKEN_SAFETY_SECONDS)
            return token

    async def _call(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        params: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        authorized: bool = True,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {await self.access_token()}"} if authorized else {}
        try:
            return await self.http.request(
                PROVIDER, method, url, headers=headers, json=json_body, params=params, data=data
            )
        except ProviderError as exc:
            if exc.status == 401 and authorized:
                self._token = None  # revoked or expired early: the next attempt fetches anew
            raise

    # --- sheet operations -------------------------------------------------------------------

    async def ensure_tab(self, tab: str, header: Sequence[str]) -> None:
        """Create the tab (with its header row) unless the spreadsheet already has it."""
        if tab in self._known_tabs:
            return
        response = await self._call(
            "GET", self.spreadsheet_url, params={"fields": "sheets.properties.title"}
        )
        titles = {
            sheet.get("properties", {}).get("title") for sheet in response.json().get("sheets", [])
        }
        if tab not in titles:
            await self._call(
                "POST",
                f"{self.spreadsheet_url}:batchUpdate",
                json_body={"requests": [{"addSheet": {"properties": {"title": tab}}}]},
            )
            await self.update_row(tab, 1, header)
        self._known_tabs.add(tab)

    async def append_row(self, tab: str, values: Sequence[str]) -> int:
        """Append one row; returns the row number Sheets put it on."""
        a1 = quote(f"{quote_tab(tab)}!A1", safe="")
        response = await self._call(
            "POST",
            f"{self.spreadsheet_url}/values/{a1}:append",
            params={"valueInputOption": "RAW", "insertDataOption": "INSERT_ROWS"},
            json_body={"values": [list(values)]},
        )
        updated = response.json().get("updates", {}).get("updatedRange", "")
        return row_from_range(str(updated))

    async def update_row(self, tab: str, row: int, values: Sequence[str]) -> None:
        """Overwrite row ``row`` of the tab."""
        a1 = quote(f"{quote_tab(tab)}!A{row}", safe="")
        await self._call(
            "PUT",
            f"{self.spreadsheet_url}/values/{a1}",
            params={"valueInputOption": "RAW"},
            json_body={"range": f"{quote_tab(tab)}!A{row}", "values": [list(values)]},
        )
