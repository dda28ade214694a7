"""WeChat official account customer-service message (``cgi-bin/message/custom/send``).

An access token is fetched with the app id + app secret (``WECHAT_API_KEY``) from
``GET /cgi-bin/token?grant_type=client_credential&appid=&secret=`` and cached until shortly
before ``expires_in``; the send is ``POST /cgi-bin/message/custom/send?access_token=`` with
``{touser:<OpenID>, msgtype:"text", text:{content}}`` → ``{errcode:0, errmsg:"ok"}``. WeChat
answers HTTP 200 for errors: ``errcode`` says what went wrong. An expired or revoked token
(40001, 40014, 42001) is refetched once; -1 (system busy) and 45009 (rate limit) are transient.
The send returns no message id.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, ClassVar

from sourcing.common.http import ExternalHttp
from sourcing.common.models.enums import Channel
from sourcing.outreach.channels.base import (
    ChannelUnavailable,
    OutboundMessage,
    OutreachChannel,
    SendReceipt,
    body_json,
    secret,
)
from sourcing.outreach.channels.settings import ChannelSettings

TOKEN_ERRORS = frozenset({40001, 40014, 42001})
TRANSIENT_ERRORS = frozenset({-1, 45009})
# Refresh this long before WeChat's stated expiry (tokens live 7,200 s).
TOKEN_SAFETY_SECONDS = 300.0


class WeChatChannel(OutreachChannel):
    channel = Channel.WECHAT
    credential_env: ClassVar[str] = "WECHAT_API_KEY"

    def __init__(
        self,
        *,
        settings: ChannelSettings,
        http: ExternalHttp,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(settings=settings, http=http)
        self._clock = clock
        self._token: str | None = None
        self._token_expires_at = 0.0
        self._token_lock = asyncio.Lock()

    @classmethod
    def unset_settings(cls, settings: ChannelSettings) -> list[str]:
        missing = [] if secret(settings.WECHAT_API_KEY) else [cls.credential_env]
        if not settings.WECHAT_APP_ID:
            missing.append("WECHAT_APP_ID")
        return missing

    def _check(self, data: dict[str, Any], what: str) -> None:
        code = data.get("errcode", 0)
        if code in (0, None):
            return
        text = f"{what}: errcode {code}: {data.get('errmsg', '')}"
        if code in TRANSIENT_ERRORS:
            raise ChannelUnavailable(self.provider, text)
        raise self.rejected(text, code=code)

    async def access_token(self, *, refresh: bool = False) -> str:
        async with self._token_lock:
            if not refresh and self._token and self._clock() < self._token_expires_at:
                return self._token
            response = await self.call(
                "GET",
                f"{self.base_url}/cgi-bin/token",
                params={
                    "grant_type": "client_credential",
                    "appid": self.settings.WECHAT_APP_ID,
                    "secret": self.credential(self.settings.WECHAT_API_KEY),
                },
            )
            data = body_json(response)
            self._check(data, "access token")
            token = data.get("access_token")
            if not isinstance(token, str) or not token:
                raise self.rejected("access token: no access_token in the answer")
            lifetime = float(data.get("expires_in") or 7200)
            self._token = token
            self._token_expires_at = self._clock() + max(0.0, lifetime - TOKEN_SAFETY_SECONDS)
            return token

    async def deliver(self, message: OutboundMessage) -> SendReceipt:
        payload = {
            "touser": message.recipient,
            "msgtype": "text",
            "text": {"content": message.body},
        }
        token = await self.access_token()
        for attempt in (1, 2):
            response = await self.call(
                "POST",
                f"{self.base_url}/cgi-bin/message/custom/send",
                params={"access_token": token},
                json=payload,
            )
            data = body_json(response)
            if attempt == 1 and data.get("errcode") in TOKEN_ERRORS:
                token = await self.access_token(refresh=True)
                continue
            self._check(data, "send")
            return SendReceipt(
                provider=self.provider, provider_message_id=None, status="sent", raw=data
            )
        raise AssertionError("unreachable")  # pragma: no cover
