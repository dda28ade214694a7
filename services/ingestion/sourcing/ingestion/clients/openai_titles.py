"""OpenAI job-title scoring for job-title discovery (manual §4.6; spec/providers.md, "OpenAI").

One chat completion per company with a strict structured output: the titles Apollo found,
normalised, plus similar titles the company likely uses, each with a relevance score in 0..1 to
the project, a seniority and a one-line rationale. The pydantic model :class:`TitleScoringAnswer`
is the schema: the SDK's ``chat.completions.parse`` sends its strict JSON schema as the response
format and parses the answer back into it. The model, temperature (<= 0.2 for determinism), base
URL, timeout and the SDK's own bounded retries come from settings.

Invalid JSON, a schema violation (a relevance outside 0..1 included), a truncated answer or a
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
from typing import TYPE_CHECKING, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sourcing.common.http import PROVIDER_LATENCY, PROVIDER_REQUESTS, ProviderError
from sourcing.common.kafka.retry import TRANSIENT_HTTP_STATUSES, TransientError
from sourcing.common.outbound import (
    ProviderSettings,
    provider_api_key,
    provider_base_url,
)

# The SDK is imported when a client is built (a job-title discovery), not at the ingestion
# service's start: it is a quarter of that process's idle memory.
if TYPE_CHECKING:
    from openai import AsyncOpenAI
    from openai.types.chat import ChatCompletionMessageParam, ParsedChatCompletion

PROVIDER: Final = "openai"
MAX_TEMPERATURE: Final = 0.2
# More expansions per company than this are noise for callers and cost tokens.
MAX_EXPANSIONS: Final = 10


class Seniority(StrEnum):
    """Seniority in Apollo's vocabulary (so filters can reuse it); unknown when unclear."""

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


# The docstrings and field descriptions of the two models below are sent to the model as part
# of the response format's schema. Strict mode accepts only a subset of JSON Schema and does not
# promise ranges or lengths, so the non-blank titles and the 0..1 relevance are checked by
# validators, which the generated schema leaves out: the SDK runs them when it parses the answer.


class ScoredTitle(BaseModel):
    """A job title at the company, scored for the project."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(description="The title as found (source apollo) or as proposed (expanded).")
    normalized_title: str = Field(description="Lower case, without company, team or location.")
    relevance: float = Field(description="0 (irrelevant) to 1 (exactly who the project needs).")
    seniority: Seniority
    source: Literal["apollo", "expanded"]
    rationale: str

    @field_validator("title", "normalized_title")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be blank")
        return value

    @field_validator("relevance")
    @classmethod
    def _within_zero_and_one(cls, value: float) -> float:
        if not 0.0 <= value <= 1.0:
            raise ValueError("must be within 0..1")
        return value


class TitleScoringAnswer(BaseModel):
    """Every given title normalised, plus similar titles the company likely uses."""

    model_config = ConfigDict(extra="forbid")

    titles: list[ScoredTitle]


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

    def __init__(self, reason: str) -> None:
        super().__init__(f"malformed model answer: {reason}")
        self.reason = reason


class ModelRefusal(MalformedModelAnswer):
    """The model declined to answer (``message.refusal``, or the content filter withheld it)."""


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
        if client is None:
            from openai import AsyncOpenAI

            client = AsyncOpenAI(
                api_key=api_key, base_url=base_url, timeout=timeout_seconds, max_retries=max_retries
            )
        self._client = client

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
        import openai

        messages = self.build_messages(
            company_name=company_name,
            titles=titles,
            project_brief=project_brief,
            geographies=geographies,
        )
        started = time.perf_counter()
        try:
            completion = await self._client.chat.completions.parse(
                model=self.model,
                messages=messages,
                temperature=self.temperature,
                response_format=TitleScoringAnswer,
            )
            answer = self._answer_of(completion)
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
        except openai.ContentFilterFinishReasonError as exc:
            self._record(started, "refusal")
            raise ModelRefusal("the answer was withheld by the content filter") from exc
        except openai.LengthFinishReasonError as exc:
            self._record(started, "malformed")
            raise MalformedModelAnswer("the answer was cut off (finish_reason=length)") from exc
        except ValidationError as exc:
            self._record(started, "malformed")
            raise MalformedModelAnswer(_describe(exc)) from exc
        except MalformedModelAnswer as exc:
            self._record(started, "refusal" if isinstance(exc, ModelRefusal) else "malformed")
            raise
        self._record(started, "success")
        return merge_titles(answer.titles)

    @staticmethod
    def _answer_of(completion: ParsedChatCompletion[TitleScoringAnswer]) -> TitleScoringAnswer:
        """The parsed answer of the first choice; a refusal or an empty answer raises."""
        if not completion.choices:
            raise MalformedModelAnswer("no choices in the completion")
        message = completion.choices[0].message
        if message.refusal:
            raise ModelRefusal(f"the model refused: {message.refusal}")
        if message.parsed is None:
            raise MalformedModelAnswer("empty answer")
        return message.parsed

    @staticmethod
    def _record(started: float, outcome: str) -> None:
        PROVIDER_LATENCY.labels(PROVIDER).observe(time.perf_counter() - started)
        PROVIDER_REQUESTS.labels(PROVIDER, outcome).inc()


def _describe(exc: ValidationError) -> str:
    """The reason an answer failed to parse: not JSON at all, or JSON breaking the schema."""
    errors = exc.errors()
    if errors[0]["type"] == "json_invalid":
        return f"not JSON: {errors[0]['msg']}"
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in errors[:5]
    )
    return f"schema violation: {problems}"


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
