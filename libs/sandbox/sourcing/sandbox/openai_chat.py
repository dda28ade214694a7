"""Sandbox stand-in for OpenAI chat completions with structured outputs (spec/providers.md, "AI").

``POST /openai/v1/chat/completions`` with ``Authorization: Bearer`` (401 without) answers a
``chat.completion``. With a ``json_schema`` response format it reads the last user message as
the job-title client's JSON facts (``company``, ``project_brief``, ``titles_from_apollo``) and
answers the schema: every given title normalised with source ``apollo``, plus two expansions,
relevance from word overlap with the brief and a digest (deterministic), seniority from the
title's words.

Markers anywhere in the messages (case-insensitive) force the failure branches:

- ``sandbox-malformed``: the content is cut-off, invalid JSON;
- ``sandbox-invalid-schema``: valid JSON that violates the schema (relevance 7, no seniority);
- ``sandbox-refusal``: ``message.refusal`` is set and ``content`` is null.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Final

from fastapi import APIRouter, Request

from sourcing.sandbox.enrichment import json_body
from sourcing.sandbox.personas import digest
from sourcing.sandbox.state import VendorError, require_bearer

router = APIRouter(prefix="/openai/v1", tags=["sandbox: OpenAI"])

MALFORMED_MARKER: Final = "sandbox-malformed"
INVALID_SCHEMA_MARKER: Final = "sandbox-invalid-schema"
REFUSAL_MARKER: Final = "sandbox-refusal"

_SENIORITY_WORDS: Final = (
    (("chief", "ceo", "cto", "cfo", "coo", "cio", "cmo"), "c_suite"),
    (("founder", "co-founder"), "founder"),
    (("owner",), "owner"),
    (("partner",), "partner"),
    (("vp", "vice"), "vp"),
    (("head",), "head"),
    (("director",), "director"),
    (("manager",), "manager"),
    (("senior", "sr", "lead", "principal", "staff"), "senior"),
    (("intern",), "intern"),
)


def seniority_of(title: str) -> str:
    words = set(re.findall(r"[a-z-]+", title.lower()))
    for keys, seniority in _SENIORITY_WORDS:
        if words & set(keys):
            return seniority
    return "entry"


def normalize(title: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9&/+ -]", " ", title.lower()).split())


def relevance_of(title: str, brief: str) -> float:
    """0.3-0.8 from a digest, plus up to 0.2 for words shared with the brief."""
    base = 0.3 + (digest("relevance", normalize(title)) % 51) / 100
    shared = set(normalize(title).split()) & set(normalize(brief).split())
    return round(min(1.0, base + 0.1 * len(shared)), 2)


def _facts(messages: list[Any]) -> dict[str, Any]:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            try:
                facts = json.loads(str(message.get("content") or ""))
            except ValueError:
                return {"titles_from_apollo": [], "project_brief": str(message.get("content"))}
            return facts if isinstance(facts, dict) else {}
    return {}


def titles_answer(facts: dict[str, Any]) -> dict[str, Any]:
    brief = str(facts.get("project_brief") or "")
    given = [str(t) for t in facts.get("titles_from_apollo") or [] if str(t).strip()]
    items = []
    for title in given:
        items.append((title, "apollo"))
    for title in given[:1] or ["Head of Operations"]:
        core = normalize(title).split()[-1] if normalize(title) else "operations"
        items.extend(
            ((f"Head of {core.title()}", "expanded"), (f"Director of {core.title()}", "expanded"))
        )
    return {
        "titles": [
            {
                "title": title,
                "normalized_title": normalize(title),
                "relevance": relevance_of(title, brief),
                "seniority": seniority_of(title),
                "source": source,
                "rationale": f"{title} {'holds' if source == 'apollo' else 'would hold'} "
                "decision power close to the project's subject.",
            }
            for title, source in items
        ]
    }


@router.post("/chat/completions")
async def chat_completions(request: Request) -> dict[str, Any]:
    require_bearer(
        request,
        {
            "error": {
                "message": "You didn't provide an API key.",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        },
    )
    body = await json_body(request)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not body.get("model"):
        raise VendorError(
            400,
            {
                "error": {
                    "message": "model and messages are required",
                    "type": "invalid_request_error",
                }
            },
        )
    text = " ".join(str(m.get("content") or "") for m in messages if isinstance(m, dict)).lower()
    content: str | None
    refusal: str | None = None
    if REFUSAL_MARKER in text:
        content, refusal = None, "I'm sorry, I can't help with that request."
    elif MALFORMED_MARKER in text:
        content = '{"titles": [{"title": "VP Payments", "normalized_title": "vp paym'
    elif INVALID_SCHEMA_MARKER in text:
        content = json.dumps({"titles": [{"title": "VP Payments", "relevance": 7}]})
    else:
        content = json.dumps(titles_answer(_facts(messages)))
    prompt_tokens = max(1, len(text) // 4)
    completion_tokens = max(1, len(content or refusal or "") // 4)
    return {
        "id": f"chatcmpl-sandbox{digest(text) % 10**12}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(body["model"]),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
