"""Sandbox stand-ins for the 12 messaging vendors behind the 13 outreach channels.

Each vendor lives under ``/<vendor>`` followed by its real path (the adapters' base URL becomes
``{SANDBOX_URL}/<vendor>``), checks the vendor's auth header or scheme, reads the vendor's real
request encoding (JSON, form, multipart) and answers with the vendor's success body and a
deterministic message id (a digest of recipient and text).

- twilio: ``POST /twilio/2010-04-01/Accounts/{sid}/Messages.json`` and ``.../Calls.json``
  (HTTP Basic, form);
- sendgrid: ``POST /sendgrid/v3/mail/send`` (Bearer, JSON; 202 + ``X-Message-Id``), followed
  by the signed Event Webhook deliveries of :mod:`sourcing.sandbox.inbound` when the sandbox
  knows the gateway;
- unipile: ``POST /unipile/api/v1/chats`` and ``/unipile/api/v1/chats/{chat_id}/messages``
  (``X-API-KEY``, multipart only: anything else is 415);
- 2chat: ``POST /2chat/open/whatsapp/send-message`` (``X-User-API-Key``, JSON);
- respondio: ``POST /respondio/v2/contact/{identifier}/message`` (Bearer, JSON);
- sendblue: ``POST /sendblue/api/send-message`` (``sb-api-key-id`` + ``sb-api-secret-key``);
- line: ``POST /line/v2/bot/message/push`` (Bearer; a repeated ``X-Line-Retry-Key`` is 409);
- wechat: ``GET /wechat/cgi-bin/token`` then ``POST /wechat/cgi-bin/message/custom/send``
  (app id + secret, then ``access_token`` query);
- viber: ``POST /viber/pa/send_message`` (``X-Viber-Auth-Token``, JSON);
- telegram: ``POST /telegram/bot{token}/sendMessage`` (token in the path, JSON or form);
- kakao: ``POST /kakao/v1/api/talk/friends/message/default/send`` (Bearer, form);
- slybroadcast: ``POST /slybroadcast/gateway/vmb.json.php`` (``c_uid`` + ``c_password``, form).

A missing credential answers 401 in the vendor's error shape, except where the vendor itself
answers HTTP 200 with an error body (WeChat ``errcode``, Viber ``status``, Slybroadcast
``ERROR``): those are mirrored as the vendor does it.

Error markers: a recipient containing

- ``fail`` gets the vendor's rejection: 400 (WeChat errcode 40003, Viber status 6 and
  Slybroadcast ``ERROR``, all at HTTP 200, like the real vendors);
- ``busy`` gets 429 with ``Retry-After: 1`` (WeChat errcode -1 and Viber status 12 at HTTP 200);
- ``down`` gets 503.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from sourcing.sandbox.inbound import InboundPoster

router = APIRouter(tags=["sandbox: messaging channels"])

RETRY_AFTER_SECONDS = 1
_MARKERS = ("fail", "busy", "down")


def _marker(recipient: object) -> str | None:
    text = str(recipient).lower()
    return next((marker for marker in _MARKERS if marker in text), None)


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).hexdigest()


def _number(*parts: object, digits: int = 12) -> int:
    value: int = int(_digest(*parts)[:15], 16) % (10**digits)
    return value


def _json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=body, headers=headers)


def _busy_headers() -> dict[str, str]:
    return {"Retry-After": str(RETRY_AFTER_SECONDS)}


def _down() -> JSONResponse:
    return _json_response(503, {"error": "service unavailable (sandbox marker 'down')"})


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _basic(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep and user and password else None


async def _json_body(request: Request) -> dict[str, Any] | None:
    try:
        data = json.loads(await request.body() or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


async def _form_body(request: Request) -> dict[str, list[str]] | None:
    """Form fields of a urlencoded or multipart body (parsed here: no python-multipart)."""
    content_type = request.headers.get("content-type", "")
    raw = await request.body()
    fields: dict[str, list[str]] = {}
    if content_type.startswith("application/x-www-form-urlencoded"):
        for name, value in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True):
            fields.setdefault(name, []).append(value)
        return fields
    if content_type.startswith("multipart/form-data"):
        message = BytesParser(policy=policy.default).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw
        )
        if not message.is_multipart():
            return None
        for part in message.iter_parts():
            param = part.get_param("name", header="content-disposition")
            if isinstance(param, str):
                payload = part.get_payload(decode=True)
                text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
                fields.setdefault(param, []).append(text)
        return fields
    return None


def _first(fields: dict[str, list[str]], name: str) -> str:
    values = fields.get(name) or [""]
    return values[0]


# --- Twilio: SMS and phone ------------------------------------------------------------------


def _twilio_error(status: int, code: int, message: str) -> JSONResponse:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    headers = _busy_headers() if status == 429 else None
    return _json_response(status, body, headers)


async def _twilio(request: Request, sid: str, *, kind: str) -> Response:
    credentials = _basic(request)
    if credentials is None or not (credentials[0] == sid or credentials[0].startswith("SK")):
        return _twilio_error(401, 20003, "Authenticate")
    form = await _form_body(request)
    if form is None or not request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        return _twilio_error(400, 20001, "Request body must be application/x-www-form-urlencoded")
    to = _first(form, "To")
    sender = _first(form, "From") or _first(form, "MessagingServiceSid")
    if not to:
        return _twilio_error(400, 21604, "A 'To' phone number is required.")
    if not sender:
        return _twilio_error(400, 21603, "A 'From' phone number is required.")
    if kind == "message" and not _first(form, "Body"):
        return _twilio_error(400, 21602, "Message body is required.")
    if kind == "call" and not (_first(form, "Twiml") or _first(form, "Url")):
        return _twilio_error(400, 21205, "Url parameter is required.")
    marker = _marker(to)
    if marker == "fail":
        return _twilio_error(400, 21211, f"Invalid 'To' Phone Number: {to}")
    if marker == "busy":
        return _twilio_error(429, 20429, "Too Many Requests")
    if marker == "down":
        return _down()
    now = format_datetime(datetime.now(UTC))
    content = _first(form, "Body") if kind == "message" else _first(form, "Twiml")
    prefix, resource = ("SM", "Messages") if kind == "message" else ("CA", "Calls")
    message_sid = prefix + _digest("twilio", kind, to, content)[:32]
    body: dict[str, Any] = {
        "sid": message_sid,
        "account_sid": sid,
        "to": to,
        "from": _first(form, "From") or None,
        "status": "queued",
        "direction": "outbound-api",
        "api_version": "2010-04-01",
        "date_created": now,
        "date_updated": now,
        "uri": f"/2010-04-01/Accounts/{sid}/{resource}/{message_sid}.json",
    }
    if kind == "message":
        body |= {
            "body": content,
            "messaging_service_sid": _first(form, "MessagingServiceSid") or None,
            "num_segments": "1",
            "num_media": "0",
            "price": None,
            "error_code": None,
            "error_message": None,
        }
    return _json_response(201, body)


@router.post("/twilio/2010-04-01/Accounts/{sid}/Messages.json")
async def twilio_messages(sid: str, request: Request) -> Response:
    return await _twilio(request, sid, kind="message")


@router.post("/twilio/2010-04-01/Accounts/{sid}/Calls.json")
async def twilio_calls(sid: str, request: Request) -> Response:
    return await _twilio(request, sid, kind="call")


# --- SendGrid: email ------------------------------------------------------------------------


def _sendgrid_error(status: int, message: str, field: str | None = None) -> JSONResponse:
    headers = _busy_headers() if status == 429 else None
    return _json_response(
        status, {"errors": [{"message": message, "field": field, "help": None}]}, headers
    )


@router.post("/sendgrid/v3/mail/send")
async def sendgrid_mail_send(request: Request) -> Response:
    if _bearer(request) is None:
        return _sendgrid_error(
            401, "The provided authorization grant is invalid, expired, or revoked"
        )
    payload = await _json_body(request)
    if payload is None:
        return _sendgrid_error(400, "Bad Request")
    try:
        to = payload["personalizations"][0]["to"][0]["email"]
    except (KeyError, IndexError, TypeError):
        return _sendgrid_error(400, "The personalizations field is required.", "personalizations")
    if not isinstance(payload.get("from"), dict) or not payload["from"].get("email"):
        return _sendgrid_error(
            400, "The from object must be provided for every email send.", "from"
        )
    if not payload.get("subject"):
        return _sendgrid_error(400, "The subject is required.", "subject")
    content = payload.get("content")
    if not isinstance(content, list) or not content or not content[0].get("value"):
        return _sendgrid_error(400, "The content value must be a string.", "content.0.value")
    marker = _marker(to)
    if marker == "fail":
        return _sendgrid_error(
            400, "Does not contain a valid address.", "personalizations.0.to.0.email"
        )
    if marker == "busy":
        return _sendgrid_error(429, "too many requests")
    if marker == "down":
        return _down()
    message_id = base64.urlsafe_b64encode(
        bytes.fromhex(_digest("sendgrid", to, content[0]["value"])[:32])
    ).decode()[:22]
    poster: InboundPoster | None = getattr(request.app.state, "inbound", None)
    if poster is not None:  # the sandbox app posts provider events; a bare router does not
        poster.after_email(to, message_id)
    return Response(status_code=202, headers={"X-Message-Id": message_id})


# --- Unipile: LinkedIn ----------------------------------------------------------------------


def _unipile_error(status: int, kind: str, title: str, detail: str = "") -> JSONResponse:
    headers = _busy_headers() if status == 429 else None
    body = {"status": status, "type": f"errors/{kind}", "title": title, "detail": detail}
    return _json_response(status, body, headers)


async def _unipile_form(request: Request) -> dict[str, list[str]] | Response:
    if not request.headers.get("x-api-key"):
        return _unipile_error(401, "missing_credentials", "Missing credentials")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return _unipile_error(
            415, "unsupported_media_type", "Unsupported media type", "multipart/form-data only"
        )
    form = await _form_body(request)
    if form is None:
        return _unipile_error(400, "malformed_request", "Malformed request")
    return form


def _unipile_marker(recipient: str) -> Response | None:
    marker = _marker(recipient)
    if marker == "fail":
        return _unipile_error(
            400, "invalid_parameters", "Invalid parameters", f"unknown attendee {recipient}"
        )
    if marker == "busy":
        return _unipile_error(429, "too_many_requests", "Too many requests")
    if marker == "down":
        return _down()
    return None


@router.post("/unipile/api/v1/chats")
async def unipile_start_chat(request: Request) -> Response:
    form = await _unipile_form(request)
    if isinstance(form, Response):
        return form
    account_id, attendee, text = (
        _first(form, "account_id"),
        _first(form, "attendees_ids"),
        _first(form, "text"),
    )
    if not account_id or not attendee:
        return _unipile_error(
            400, "missing_parameters", "Missing parameters", "account_id and attendees_ids"
        )
    error = _unipile_marker(attendee)
    if error is not None:
        return error
    chat_id = _digest("unipile-chat", account_id, attendee)[:22]
    message_id = _digest("unipile-message", chat_id, text)[:22]
    return _json_response(
        201, {"object": "ChatStarted", "chat_id": chat_id, "message_id": message_id}
    )


@router.post("/unipile/api/v1/chats/{chat_id}/messages")
async def unipile_send_in_chat(chat_id: str, request: Request) -> Response:
    form = await _unipile_form(request)
    if isinstance(form, Response):
        return form
    text = _first(form, "text")
    error = _unipile_marker(chat_id)
    if error is not None:
        return error
    message_id = _digest("unipile-message", chat_id, text)[:22]
    return _json_response(201, {"object": "MessageSent", "message_id": message_id})


# --- 2Chat: WhatsApp ------------------------------------------------------------------------


@router.post("/2chat/open/whatsapp/send-message")
async def twochat_send_message(request: Request) -> Response:
    if not request.headers.get("x-user-api-key"):
        return _json_response(401, {"success": False, "message": "Invalid API key"})
    payload = await _json_body(request)
    if payload is None or not all(payload.get(k) for k in ("from_number", "to_number", "text")):
        return _json_response(
            400, {"success": False, "message": "from_number, to_number and text are required"}
        )
    to = payload["to_number"]
    marker = _marker(to)
    if marker == "fail":
        return _json_response(
            400, {"success": False, "message": f"{to} is not registered on WhatsApp"}
        )
    if marker == "busy":
        return _json_response(
            429, {"success": False, "message": "Too many requests"}, _busy_headers()
        )
    if marker == "down":
        return _down()
    message_uuid = "MSG" + str(uuid.UUID(_digest("2chat", to, payload["text"])[:32])).upper()
    return _json_response(200, {"success": True, "message_uuid": message_uuid})


# --- Respond.io -----------------------------------------------------------------------------

_RESPONDIO_IDENTIFIER = re.compile(r"^(phone:\+?\d[\d ]*|email:[^@\s]+@[^@\s]+|id:\d+)$")


@router.post("/respondio/v2/contact/{identifier}/message")
async def respondio_send_message(identifier: str, request: Request) -> Response:
    if _bearer(request) is None:
        return _json_response(401, {"code": 401, "message": "Unauthorized"})
    payload = await _json_body(request)
    message = payload.get("message") if payload else None
    if not isinstance(message, dict) or message.get("type") != "text" or not message.get("text"):
        return _json_response(400, {"code": 400, "message": "message.text is required"})
    marker = _marker(identifier)
    if marker == "fail":
        return _json_response(400, {"code": 400, "message": f"Invalid identifier {identifier}"})
    if marker == "busy":
        return _json_response(429, {"code": 429, "message": "Too many requests"}, _busy_headers())
    if marker == "down":
        return _down()
    if not _RESPONDIO_IDENTIFIER.match(identifier):
        return _json_response(400, {"code": 400, "message": f"Invalid identifier {identifier}"})
    return _json_response(
        200,
        {
            "contactId": _number("respondio-contact", identifier, digits=9),
            "messageId": _number("respondio-message", identifier, message["text"], digits=10),
        },
    )


# --- Sendblue: iMessage ---------------------------------------------------------------------


@router.post("/sendblue/api/send-message")
async def sendblue_send_message(request: Request) -> Response:
    if not (request.headers.get("sb-api-key-id") and request.headers.get("sb-api-secret-key")):
        return _json_response(401, {"status": "ERROR", "message": "Unauthorized"})
    payload = await _json_body(request)
    if payload is None or not payload.get("number") or not payload.get("content"):
        return _json_response(
            400,
            {"status": "ERROR", "error_code": 4000, "error_message": "number and content"},
        )
    number = payload["number"]
    marker = _marker(number)
    if marker == "fail":
        return _json_response(
            400,
            {"status": "ERROR", "error_code": 4000, "error_message": f"Invalid number {number}"},
        )
    if marker == "busy":
        return _json_response(
            429,
            {"status": "ERROR", "error_code": 4001, "error_message": "Rate limit exceeded"},
            _busy_headers(),
        )
    if marker == "down":
        return _down()
    now = datetime.now(UTC).isoformat()
    return _json_response(
        200,
        {
            "accountEmail": "sandbox@example.com",
            "content": payload["content"],
            "is_outbound": True,
            "status": "QUEUED",
            "error_code": None,
            "error_message": None,
            "message_handle": str(uuid.UUID(_digest("sendblue", number, payload["content"])[:32])),
            "date_sent": now,
            "date_updated": now,
            "from_number": payload.get("from_number"),
            "number": number,
            "to_number": number,
            "was_downgraded": None,
            "plan": "blue",
            "media_url": "",
            "message_type": "message",
            "send_style": "",
        },
    )


# --- LINE -----------------------------------------------------------------------------------

# Retry keys LINE has seen (it answers a repeat with 409); bounded, oldest dropped first.
_LINE_RETRY_KEYS: OrderedDict[str, str] = OrderedDict()
_LINE_RETRY_KEYS_MAX = 10_000


@router.post("/line/v2/bot/message/push")
async def line_push(request: Request) -> Response:
    if _bearer(request) is None:
        return _json_response(
            401,
            {
                "message": "Authentication failed. Confirm that the access token in the "
                "authorization header is valid."
            },
        )
    retry_key = request.headers.get("x-line-retry-key")
    if retry_key is not None:
        try:
            retry_key = str(uuid.UUID(retry_key))
        except ValueError:
            return _json_response(
                400, {"message": "The value for the 'X-Line-Retry-Key' header is invalid"}
            )
        if retry_key in _LINE_RETRY_KEYS:
            return _json_response(
                409,
                {"message": "The retry key is already accepted"},
                {"x-line-accepted-request-id": _LINE_RETRY_KEYS[retry_key]},
            )
    payload = await _json_body(request)
    messages = payload.get("messages") if payload else None
    if not payload or not payload.get("to") or not isinstance(messages, list) or not messages:
        return _json_response(
            400,
            {
                "message": "The request body has 1 error(s)",
                "details": [{"message": "must be specified", "property": "to"}],
            },
        )
    to = payload["to"]
    marker = _marker(to)
    if marker == "fail":
        return _json_response(
            400,
            {
                "message": "The request body has 1 error(s)",
                "details": [{"message": "Invalid user ID", "property": "to"}],
            },
        )
    if marker == "busy":
        return _json_response(
            429,
            {"message": "The API rate limit has been exceeded. Try again later."},
            _busy_headers(),
        )
    if marker == "down":
        return _down()
    request_id = str(uuid.UUID(_digest("line-request", to, retry_key)[:32]))
    if retry_key is not None:
        _LINE_RETRY_KEYS[retry_key] = request_id
        while len(_LINE_RETRY_KEYS) > _LINE_RETRY_KEYS_MAX:
            _LINE_RETRY_KEYS.popitem(last=False)
    sent = [
        {
            "id": str(_number("line", to, index, json.dumps(item), digits=18)),
            "quoteToken": _digest("line-quote", to, index)[:40],
        }
        for index, item in enumerate(messages)
    ]
    return _json_response(200, {"sentMessages": sent}, {"x-line-request-id": request_id})


# --- WeChat official account ----------------------------------------------------------------

_WECHAT_TOKEN_PREFIX = "sandbox-wechat-token-"  # noqa: S105 - a prefix of fake tokens, not a secret


@router.get("/wechat/cgi-bin/token")
async def wechat_token(request: Request) -> Response:
    query = request.query_params
    if query.get("grant_type") != "client_credential":
        return _json_response(200, {"errcode": 40002, "errmsg": "invalid grant_type"})
    if not query.get("appid"):
        return _json_response(200, {"errcode": 41002, "errmsg": "appid missing"})
    if not query.get("secret"):
        return _json_response(200, {"errcode": 41004, "errmsg": "appsecret missing"})
    token = _WECHAT_TOKEN_PREFIX + _digest("wechat-token", query["appid"], query["secret"])[:40]
    return _json_response(200, {"access_token": token, "expires_in": 7200})


@router.post("/wechat/cgi-bin/message/custom/send")
async def wechat_custom_send(request: Request) -> Response:
    token = request.query_params.get("access_token")
    if not token:
        return _json_response(200, {"errcode": 41001, "errmsg": "access_token missing"})
    if not token.startswith(_WECHAT_TOKEN_PREFIX):
        return _json_response(
            200,
            {
                "errcode": 40001,
                "errmsg": "invalid credential, access_token is invalid or not latest",
            },
        )
    payload = await _json_body(request)
    text = payload.get("text") if payload else None
    if (
        not payload
        or not payload.get("touser")
        or payload.get("msgtype") != "text"
        or not isinstance(text, dict)
        or not text.get("content")
    ):
        return _json_response(200, {"errcode": 44002, "errmsg": "empty post data"})
    marker = _marker(payload["touser"])
    if marker == "fail":
        return _json_response(200, {"errcode": 40003, "errmsg": "invalid openid"})
    if marker == "busy":
        return _json_response(200, {"errcode": -1, "errmsg": "system error"})
    if marker == "down":
        return _down()
    return _json_response(200, {"errcode": 0, "errmsg": "ok"})


# --- Viber ----------------------------------------------------------------------------------


@router.post("/viber/pa/send_message")
async def viber_send_message(request: Request) -> Response:
    if not request.headers.get("x-viber-auth-token"):
        return _json_response(200, {"status": 2, "status_message": "invalidAuthToken"})
    payload = await _json_body(request)
    if not payload or not payload.get("receiver") or payload.get("type") != "text":
        return _json_response(200, {"status": 3, "status_message": "badData"})
    if not payload.get("text") or not isinstance(payload.get("sender"), dict):
        return _json_response(200, {"status": 4, "status_message": "missingData"})
    receiver = payload["receiver"]
    marker = _marker(receiver)
    if marker == "fail":
        return _json_response(200, {"status": 6, "status_message": "notSubscribed"})
    if marker == "busy":
        return _json_response(200, {"status": 12, "status_message": "tooManyRequests"})
    if marker == "down":
        return _down()
    return _json_response(
        200,
        {
            "status": 0,
            "status_message": "ok",
            "message_token": _number("viber", receiver, payload["text"], digits=18),
            "chat_hostname": "SN-CHAT-SANDBOX_",
        },
    )


# --- Telegram -------------------------------------------------------------------------------

_TELEGRAM_TOKEN = re.compile(r"^(\d+:[\w-]+|sandbox-[\w-]+)$")


def _telegram_error(status: int, description: str) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    headers = None
    if status == 429:
        body["parameters"] = {"retry_after": RETRY_AFTER_SECONDS}
        headers = _busy_headers()
    return _json_response(status, body, headers)


@router.post("/telegram/bot{token}/sendMessage")
async def telegram_send_message(token: str, request: Request) -> Response:
    if not _TELEGRAM_TOKEN.match(token):
        return _telegram_error(401, "Unauthorized")
    payload: dict[str, Any] | None
    if request.headers.get("content-type", "").startswith("application/json"):
        payload = await _json_body(request)
    else:
        form = await _form_body(request)
        payload = {name: values[0] for name, values in form.items()} if form else None
    if not payload or payload.get("chat_id") in (None, ""):
        return _telegram_error(400, "Bad Request: chat_id is empty")
    text = str(payload.get("text") or "")
    if not text:
        return _telegram_error(400, "Bad Request: message text is empty")
    if len(text) > 4096:
        return _telegram_error(400, "Bad Request: message is too long")
    chat_id = payload["chat_id"]
    marker = _marker(chat_id)
    if marker == "fail":
        return _telegram_error(400, "Bad Request: chat not found")
    if marker == "busy":
        return _telegram_error(429, f"Too Many Requests: retry after {RETRY_AFTER_SECONDS}")
    if marker == "down":
        return _down()
    bot_id = _number("telegram-bot", token, digits=10)
    return _json_response(
        200,
        {
            "ok": True,
            "result": {
                "message_id": _number("telegram", chat_id, text, digits=6),
                "from": {
                    "id": bot_id,
                    "is_bot": True,
                    "first_name": "Sandbox",
                    "username": "sandbox_bot",
                },
                "chat": {"id": chat_id, "type": "private"},
                "date": int(datetime.now(UTC).timestamp()),
                "text": text,
            },
        },
    )


# --- KakaoTalk ------------------------------------------------------------------------------


def _kakao_error(status: int, code: int, msg: str) -> JSONResponse:
    headers = _busy_headers() if status == 429 else None
    return _json_response(status, {"msg": msg, "code": code}, headers)


@router.post("/kakao/v1/api/talk/friends/message/default/send")
async def kakao_send_default(request: Request) -> Response:
    if _bearer(request) is None:
        return _kakao_error(401, -401, "this access token does not exist")
    form = await _form_body(request)
    if form is None:
        return _kakao_error(400, -2, "form-encoded body required")
    try:
        receivers = json.loads(_first(form, "receiver_uuids"))
        template = json.loads(_first(form, "template_object"))
    except json.JSONDecodeError:
        return _kakao_error(400, -2, "receiver_uuids and template_object must be JSON")
    if not isinstance(receivers, list) or not receivers or len(receivers) > 5:
        return _kakao_error(400, -2, "receiver_uuids: 1 to 5 uuids required")
    if not isinstance(template, dict) or template.get("object_type") != "text":
        return _kakao_error(400, -2, "template_object: object_type text required")
    if not template.get("text") or not isinstance(template.get("link"), dict):
        return _kakao_error(400, -2, "template_object: text and link required")
    markers = {_marker(receiver) for receiver in receivers}
    if "fail" in markers:
        return _kakao_error(400, -532, "receiver_uuids: invalid receiver uuid")
    if "busy" in markers:
        return _kakao_error(429, -10, "API limit has been exceeded.")
    if "down" in markers:
        return _down()
    return _json_response(200, {"successful_receiver_uuids": receivers})


# --- Slybroadcast: voicemail drop -----------------------------------------------------------


@router.post("/slybroadcast/gateway/vmb.json.php")
async def slybroadcast_gateway(request: Request) -> Response:
    form = await _form_body(request)
    if form is None:
        return _json_response(200, {"ERROR": "form-encoded body required"})
    if not _first(form, "c_uid") or not _first(form, "c_password"):
        return _json_response(200, {"ERROR": "Bad Audio Login: c_uid and c_password required"})
    if _first(form, "c_method") != "new_campaign":
        return _json_response(200, {"ERROR": "c_method: unsupported"})
    phone = _first(form, "c_phone")
    if not phone or not _first(form, "c_callerID") or not _first(form, "c_date"):
        return _json_response(200, {"ERROR": "c_phone, c_callerID and c_date are required"})
    has_url = bool(_first(form, "c_url") and _first(form, "c_audio"))
    if not (has_url or _first(form, "c_record_audio") or _first(form, "c_sys_audio_name")):
        return _json_response(
            200, {"ERROR": "an audio (c_url + c_audio or c_record_audio) is required"}
        )
    marker = _marker(phone)
    if marker == "fail":
        return _json_response(200, {"ERROR": f"c_phone: invalid phone number {phone}"})
    if marker == "busy":
        return _json_response(429, {"ERROR": "too many requests"}, _busy_headers())
    if marker == "down":
        return _down()
    return _json_response(
        200,
        {
            "new_campaign": "OK",
            "session_id": str(_number("slybroadcast", phone, _first(form, "c_title"), digits=10)),
            "number_of_phone": len(phone.split(",")),
        },
    )
