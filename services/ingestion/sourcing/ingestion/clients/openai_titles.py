"""OpenAI job-title scoring for job-title discovery (manual §4.6; spec/providers.md, "OpenAI").

One chat completion per company with a strict JSON-schema structured output: the titles Apollo
found, normalised, plus similar titles the company likely uses, each with a relevance score in
0..1 to the project, a seniority and a one-line rationale. The model, temperature (<= 0.2 for
determinism), base URL, timeout and the SDK's own bounded retries come from settings.

The answer is validated with pydantic: invalid JSON, a schema violation, a truncated answer or a
refusal raise :class:`MalformedModelAnswer` (a ``TransientError``: the agent retries the message,
then dead-letters it with this reason). Transport and HTTP failures raise
:class:`~sourcing.common.http.ProviderError` with ``transient`` set like ExternalHttp does.
Every call is counted in the shared provider metrics under the label ``openai``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from enum import StrEnum
from typing import Any, Final, Literal

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam
from openai.types.shared_params import ResponseFormatJSONSchema
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sourcing.common.http import PROVIDER_LATENCY, PROVIDER_REQUESTS, ProviderError
from sourcing.common.kafka.retry import TRANSIENT_HTTP_STATUSES, TransientError
from sourcing.common.outbound import (
    ProviderSettings,
    provider_api_key,
    provider_base_url,
)

PROVIDER: Final = "openai"
MAX_TEMPERATURE: Final = 0.2
# More expansions per company than this are noise for callers and cost tokens.
MAX_EXPANSIONS: Final = 10


class Seniority(StrEnum):
    """Apollo's seniority vocabulary (so filters can reuse it), plus unknown."""

    OWNER = "owner"
    FOUNDER = "founder"
    C_SUITE = "c_suite"
    PARTNER = "partner"
    VP = "vp"
    HEAD = "head"
    DIRECTOR = "director"
    MANAGER = "manager"
    SENIOR = "senior"
    ENTRY = "entry"
    INTERN = "intern"
    UNKNOWN = "unknown"


class ScoredTitle(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=1)  # as found (Apollo) or as proposed (expanded)
    normalized_title: str = Field(min_length=1)  # lower-case, no company or location
    relevance: float = Field(ge=0.0, le=1.0)
    seniority: Seniority
    source: Literal["apollo", "expanded"]
    rationale: str


class TitleScoringAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    titles: list[ScoredTitle]


# The structured-output schema (strict mode: every property required, no extra properties).
# Ranges are enforced by pydantic after the call (strict mode does not guarantee them).
TITLE_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "titles": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "title": {"type": "string"},
                    "normalized_title": {"type": "string"},
                    "relevance": {"type": "number", "description": "0 (irrelevant) to 1"},
                    "seniority": {"type": "string", "enum": [s.value for s in Seniority]},
                    "source": {"type": "string", "enum": ["apollo", "expanded"]},
                    "rationale": {"type": "string"},
                },
                "required": [
                    "title",
                    "normalized_title",
                    "relevance",
                    "seniority",
                    "source",
                    "rationale",
                ],
                "additionalProperties": False,
            },
        }
    },
    "required": ["titles"],
    "additionalProperties": False,
}

RESPONSE_FORMAT: Final[ResponseFormatJSONSchema] = {
    "type": "json_schema",
    "json_schema": {"name": "job_titles", "schema": TITLE_SCHEMA, "strict": True},
}

SYSTEM_PROMPT: Final = (
    "You help an expert network find people to interview. Given a company, the job titles its "
    "employees hold (from a people database) and the project brief, return every given title "
    "normalised (lower case, no company, team or location names) with source 'apollo', plus up "
    f"to {MAX_EXPANSIONS} similar titles the company likely uses, with source 'expanded'. Score "
    "each title's relevance to the project from 0 (irrelevant) to 1 (exactly who we need), "
    "give its seniority and a one-sentence rationale. Answer only with the JSON schema."
)


class MalformedModelAnswer(TransientError):
    """The model's answer is not valid JSON for the schema (or it refused, or was cut off)."""

    def __init__(self, reason: str, *, content: str | None = None) -> None:
        super().__init__(f"malformed model answer: {reason}")
        self.reason = reason
        self.content = content[:2000] if content else content


class ModelRefusal(MalformedModelAnswer):
    """The model declined to answer (``message.refusal``)."""


class JobTitleClient:
    """Scores and expands a company's job titles with a structured OpenAI answer."""

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        temperature: float,
        base_url: str | None = None,
        timeout_seconds: float = 30.0,
        max_retries: int = 2,
        client: AsyncOpenAI | None = None,
    ) -> None:
        if not 0.0 <= temperature <= MAX_TEMPERATURE:
            raise ValueError(f"temperature must be within 0..{MAX_TEMPERATURE} (got {temperature})")
        self.model = model
        self.temperature = temperature
        self._client = client or AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout_seconds, max_retries=max_retries
        )

    @classmethod
    def from_settings(
        cls, settings: ProviderSettings, *, client: AsyncOpenAI | None = None
    ) -> JobTitleClient:
        """Built from OPENAI_* settings (the sandbox in development); raises when no key is set."""
        api_key = provider_api_key(settings, PROVIDER)
        if api_key is None:
            raise ProviderError(PROVIDER, "OPENAI_API_KEY is not set", transient=False)
        return cls(
            api_key=api_key,
            model=str(getattr(settings, "OPENAI_MODEL", "gpt-4o-mini")),
            temperature=float(getattr(settings, "OPENAI_CLASSIFICATION_TEMPERATURE", 0.0)),
            base_url=provider_base_url(settings, PROVIDER),
            timeout_seconds=settings.OPENAI_TIMEOUT_SECONDS,
            max_retries=settings.OPENAI_MAX_RETRIES,
            client=client,
        )

    async def aclose(self) -> None:
        await self._client.close()

    @staticmethod
    def build_messages(
        *,
        company_name: str,
        titles: Sequence[str],
        project_brief: str | None = None,
        geographies: Sequence[str] = (),
    ) -> list[ChatCompletionMessageParam]:
        """System instructions plus the facts as one JSON user message (data, not prose)."""
        facts = {
            "company": company_name,
            "geographies": list(geographies),
            "project_brief": project_brief or "",
            "titles_from_apollo": list(dict.fromkeys(t.strip() for t in titles if t.strip())),
        }
        return [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": json.dumps(facts, ensure_ascii=False)},
        ]

    async def score_titles(
        self,
        *,
        company_name: str,
        titles: Sequence[str],
        project_brief: str | None = None,
        geographies: Sequence[str] = (),
    ) -> list[ScoredTitle]:
        """The model's titles, one per normalised title (highest relevance kept), best first."""
        messages = self.build_messages(
            company_name=company_name,
            titles=titles,
            project_brief=project_brief,
            geographies=geographies,
        )
        started = time.perf_counter()
        try:
            completion = await self._client.chat.completions.create(
                model=self.model,
                messages=messages,
                temperature=self.temperature,
                response_format=RESPONSE_FORMAT,
            )
        except openai.APIStatusError as exc:
            self._record(started, f"http_{exc.status_code // 100}xx")
            transient = exc.status_code in TRANSIENT_HTTP_STATUSES
            raise ProviderError(
                PROVIDER,
                f"HTTP {exc.status_code}: {exc.message}",
                status=exc.status_code,
                transient=transient,
            ) from exc
        except openai.APITimeoutError as exc:
            self._record(started, "timeout")
            raise ProviderError(PROVIDER, "timeout", transient=True) from exc
        except openai.APIConnectionError as exc:
            self._record(started, "transport_error")
            raise ProviderError(
                PROVIDER, f"transport_error: {type(exc).__name__}", transient=True
            ) from exc
        try:
            answer = self.parse_completion(completion)
        except MalformedModelAnswer as exc:
            self._record(started, "refusal" if isinstance(exc, ModelRefusal) else "malformed")
            raise
        self._record(started, "success")
        return merge_titles(answer.titles)

    @staticmethod
    def parse_completion(completion: Any) -> TitleScoringAnswer:
        choices = getattr(completion, "choices", None) or []
        if not choices:
            raise MalformedModelAnswer("no choices in the completion")
        choice = choices[0]
        message = choice.message
        if getattr(message, "refusal", None):
            raise ModelRefusal(f"the model refused: {message.refusal}")
        content = message.content
        if getattr(choice, "finish_reason", None) == "length":
            raise MalformedModelAnswer(
                "the answer was cut off (finish_reason=length)", content=content
            )
        if not content:
            raise MalformedModelAnswer("empty answer")
        try:
            data = json.loads(content)
        except ValueError as exc:
            raise MalformedModelAnswer(f"not JSON: {exc}", content=content) from exc
        try:
            return TitleScoringAnswer.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:5]
            )
            raise MalformedModelAnswer(f"schema violation: {problems}", content=content) from exc

    @staticmethod
    def _record(started: float, outcome: str) -> None:
        PROVIDER_LATENCY.labels(PROVIDER).observe(time.perf_counter() - started)
        PROVIDER_REQUESTS.labels(PROVIDER, outcome).inc()


def normalize_title(title: str) -> str:
    return " ".join(title.casefold().split())


def merge_titles(titles: Sequence[ScoredTitle]) -> list[ScoredTitle]:
    """One entry per normalised title (the most relevant; an Apollo title wins a tie), sorted
    by relevance: what the JobTitle upsert (unique per company and normalised title) expects."""
    best: dict[str, ScoredTitle] = {}
    for item in titles:
        key = normalize_title(item.normalized_title)
        if not key:
            continue
        item = item.model_copy(update={"normalized_title": key})
        current = best.get(key)
        if (
            current is None
            or item.relevance > current.relevance
            or (item.relevance == current.relevance and item.source == "apollo" != current.source)
        ):
            best[key] = item
    return sorted(best.values(), key=lambda t: (-t.relevance, t.normalized_title))
