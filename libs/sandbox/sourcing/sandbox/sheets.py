"""Sandbox stand-in for Google's OAuth token endpoint and the Sheets API v4 (in memory).

- ``POST /google-oauth/token``: form ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``
  and ``assertion`` (an RS256 JWT whose claims carry ``iss``, ``scope`` with the spreadsheets
  scope, ``aud``, ``iat`` and ``exp``; the signature is not checked: the sandbox has no public
  key) → ``{access_token, expires_in, token_type}``;
- under ``/google-sheets/v4/spreadsheets/{id}`` (Bearer token from the endpoint above, else
  401): ``GET`` (tabs), ``POST :batchUpdate`` (``addSheet``), ``POST values/{range}:append``,
  ``PUT values/{range}``, ``GET values/{range}``. Any spreadsheet id exists (created empty).

``SHEETS_STATE`` is readable by tests: spreadsheet id → tab title → rows (lists of strings).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["sandbox: google sheets"])

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE = "https://www.googleapis.com/auth/spreadsheets"
SHEETS_STATE: dict[str, dict[str, list[list[str]]]] = {}
_TOKENS: set[str] = set()
_A1 = re.compile(r"^(?:'((?:[^']|'')+)'|([^!]+))(?:!([A-Z]+)(\d+)?(?::[A-Z]+\d*)?)?$")


def _error(status: int, message: str, reason: str) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"error": {"code": status, "message": message, "status": reason}},
    )


def _b64json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@router.post("/google-oauth/token")
async def token(request: Request) -> JSONResponse:
    form = dict(parse_qsl((await request.body()).decode()))
    if form.get("grant_type") != JWT_BEARER:
        return JSONResponse(status_code=400, content={"error": "unsupported_grant_type"})
    parts = form.get("assertion", "").split(".")
    try:
        header, claims = _b64json(parts[0]), _b64json(parts[1])
    except (ValueError, IndexError):
        return JSONResponse(status_code=400, content={"error": "invalid_grant"})
    valid = (
        len(parts) == 3
        and header.get("alg") == "RS256"
        and claims.get("iss")
        and SCOPE in str(claims.get("scope", "")).split()
        and claims.get("aud")
        and int(claims.get("exp", 0)) > int(claims.get("iat", 0))
    )
    if not valid:
        return JSONResponse(
            status_code=400,
            content={"error": "invalid_grant", "error_description": "Invalid JWT claims"},
        )
    access = "ya29.sandbox-" + hashlib.sha256(parts[2].encode()).hexdigest()[:32]
    _TOKENS.add(access)
    return JSONResponse({"access_token": access, "expires_in": 3599, "token_type": "Bearer"})


def _authorized(request: Request) -> bool:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return scheme == "Bearer" and value in _TOKENS


def _sheet(spreadsheet_id: str) -> dict[str, list[list[str]]]:
    return SHEETS_STATE.setdefault(spreadsheet_id, {"Sheet1": []})


def _parse_range(a1: str) -> tuple[str, int | None]:
    match = _A1.match(a1)
    if match is None:
        raise ValueError(a1)
    tab = (match.group(1) or "").replace("''", "'") or (match.group(2) or "")
    row = match.group(4)
    return tab, int(row) if row else None


def _properties(spreadsheet_id: str) -> list[dict[str, Any]]:
    return [
        {"properties": {"sheetId": index, "title": title, "index": index}}
        for index, title in enumerate(_sheet(spreadsheet_id))
    ]


@router.get("/google-sheets/v4/spreadsheets/{spreadsheet_id}")
async def get_spreadsheet(spreadsheet_id: str, request: Request) -> JSONResponse:
    if not _authorized(request):
        return _error(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED")
    return JSONResponse({"spreadsheetId": spreadsheet_id, "sheets": _properties(spreadsheet_id)})


@router.post("/google-sheets/v4/spreadsheets/{spreadsheet_id}:batchUpdate")
async def batch_update(spreadsheet_id: str, request: Request) -> JSONResponse:
    if not _authorized(request):
        return _error(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED")
    body = await request.json()
    sheet = _sheet(spreadsheet_id)
    replies: list[dict[str, Any]] = []
    for item in body.get("requests", []):
        title = item.get("addSheet", {}).get("properties", {}).get("title")
        if not title:
            return _error(400, "Invalid requests: only addSheet is supported", "INVALID_ARGUMENT")
        if title in sheet:
            return _error(
                400,
                f'Invalid requests[0].addSheet: A sheet with the name "{title}" already exists.',
                "INVALID_ARGUMENT",
            )
        sheet[title] = []
        replies.append({"addSheet": {"properties": {"title": title, "sheetId": len(sheet) - 1}}})
    return JSONResponse({"spreadsheetId": spreadsheet_id, "replies": replies})


@router.post("/google-sheets/v4/spreadsheets/{spreadsheet_id}/values/{a1}:append")
async def append(spreadsheet_id: str, a1: str, request: Request) -> JSONResponse:
    if not _authorized(request):
        return _error(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED")
    try:
        tab, _ = _parse_range(a1)
    except ValueError:
        return _error(400, f"Unable to parse range: {a1}", "INVALID_ARGUMENT")
    rows = _sheet(spreadsheet_id).get(tab)
    if rows is None:
        return _error(400, f"Unable to parse range: {a1}", "INVALID_ARGUMENT")
    values = (await request.json()).get("values", [])
    first = len(rows) + 1
    rows.extend([[str(v) for v in row] for row in values])
    last = len(rows)
    width = max((len(row) for row in values), default=1)
    end_col = chr(ord("A") + width - 1)
    quoted = "'" + tab.replace("'", "''") + "'"
    return JSONResponse(
        {
            "spreadsheetId": spreadsheet_id,
            "tableRange": f"{quoted}!A1:{end_col}{first - 1 or 1}",
            "updates": {
                "spreadsheetId": spreadsheet_id,
                "updatedRange": f"{quoted}!A{first}:{end_col}{last}",
                "updatedRows": len(values),
                "updatedColumns": width,
                "updatedCells": len(values) * width,
            },
        }
    )


@router.put("/google-sheets/v4/spreadsheets/{spreadsheet_id}/values/{a1}")
async def update(spreadsheet_id: str, a1: str, request: Request) -> JSONResponse:
    if not _authorized(request):
        return _error(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED")
    try:
        tab, row = _parse_range(a1)
    except ValueError:
        return _error(400, f"Unable to parse range: {a1}", "INVALID_ARGUMENT")
    rows = _sheet(spreadsheet_id).get(tab)
    if rows is None:
        return _error(400, f"Unable to parse range: {a1}", "INVALID_ARGUMENT")
    values = (await request.json()).get("values", [])
    start = (row or 1) - 1
    while len(rows) < start + len(values):
        rows.append([])
    for offset, new in enumerate(values):
        rows[start + offset] = [str(v) for v in new]
    return JSONResponse(
        {
            "spreadsheetId": spreadsheet_id,
            "updatedRange": a1,
            "updatedRows": len(values),
            "updatedCells": sum(len(v) for v in values),
        }
    )


@router.get("/google-sheets/v4/spreadsheets/{spreadsheet_id}/values/{a1}")
async def read(spreadsheet_id: str, a1: str, request: Request) -> JSONResponse:
    if not _authorized(request):
        return _error(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED")
    try:
        tab, _ = _parse_range(a1)
    except ValueError:
        return _error(400, f"Unable to parse range: {a1}", "INVALID_ARGUMENT")
    rows = _sheet(spreadsheet_id).get(tab, [])
    return JSONResponse({"range": a1, "majorDimension": "ROWS", "values": rows})
