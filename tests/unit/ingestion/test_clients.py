"""Ingestion's outbound clients: Apollo people search (respx at the HTTP layer) and OpenAI title
scoring (the SDK over a mock HTTP transport: the real request serialisation is checked)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import httpx2
import pytest
import respx
from openai import AsyncOpenAI

from sourcing.common.http import PROVIDER_REQUESTS, ExternalHttp, ProviderError
from sourcing.common.kafka.retry import TransientError, is_transient
from sourcing.ingestion.clients import (
    ApolloClient,
    ApolloNotConfigured,
    JobTitleClient,
    MalformedModelAnswer,
    ModelRefusal,
    ScoredTitle,
    Seniority,
    TitleScoringAnswer,
    country_name,
)
from tests.unit.enrichment.support import make_http, make_settings

APOLLO_SEARCH = "https://api.apollo.io/api/v1/mixed_people/api_search"
# A recorded api_search answer (no credits, no emails: obfuscated last names).
APOLLO_PAGE: dict[str, Any] = {
    "total_entries": 3,
    "people": [
        {
            "id": "64a7ff0cc4dfae00013df1a5",
            "first_name": "Jane",
            "last_name_obfuscated": "Do***e",
            "title": "VP Payments",
            "has_email": True,
            "has_direct_phone": "Yes",
            "organization": {"name": "Stripe", "has_industry": True},
        },
        {
            "id": "64a7ff0cc4dfae00013df1a6",
            "first_name": "Omar",
            "last_name_obfuscated": "Kh***i",
            "title": "Head of Risk",
            "organization": {"name": "Stripe"},
        },
        {
            "id": "64a7ff0cc4dfae00013df1a7",
            "first_name": "Li",
            "last_name_obfuscated": "We***g",
            "title": "vp  payments",
            "organization": {"name": "Stripe"},
        },
    ],
}


@pytest.fixture
async def http() -> AsyncIterator[ExternalHttp]:
    client = make_http()
    yield client
    await client.aclose()


# --- Apollo ---------------------------------------------------------------------------------------


async def test_apollo_search_request_shape_and_titles(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post(APOLLO_SEARCH).mock(return_value=httpx.Response(200, json=APOLLO_PAGE))
    client = ApolloClient(settings=make_settings(), http=http)
    titles = await client.titles_at_company(
        company_name="Stripe", company_domain="stripe.com", country_isos=["US", "gb"]
    )
    request = route.calls.last.request
    assert request.method == "POST"
    assert request.headers["x-api-key"] == "apollo-test-key"
    assert json.loads(request.content) == {
        "page": 1,
        "per_page": 100,
        "person_locations": ["United States", "United Kingdom"],
        "q_organization_domains_list": ["stripe.com"],
    }
    assert [(t.title, t.count) for t in titles] == [("VP Payments", 2), ("Head of Risk", 1)]


async def test_apollo_without_domain_uses_keywords_and_pages(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    page_one = {"total_entries": 150, "people": APOLLO_PAGE["people"][:2]}
    page_two = {"total_entries": 150, "people": APOLLO_PAGE["people"][2:]}
    route = respx_mock.post(APOLLO_SEARCH).mock(
        side_effect=[httpx.Response(200, json=page_one), httpx.Response(200, json=page_two)]
    )
    client = ApolloClient(settings=make_settings(), http=http)
    titles = await client.titles_at_company(company_name="Wise", max_pages=5)
    bodies = [json.loads(call.request.content) for call in route.calls]
    assert bodies == [
        {"page": 1, "per_page": 100, "q_keywords": "Wise"},
        {"page": 2, "per_page": 100, "q_keywords": "Wise"},
    ]
    assert [t.title for t in titles] == ["VP Payments", "Head of Risk"]


def test_apollo_search_body_filters() -> None:
    body = ApolloClient.search_body(
        titles=["CFO", " "],
        seniorities=["vp"],
        organization_ids=["5e66b6381e05b4008c8331b8"],
        per_page=500,
    )
    assert body == {
        "page": 1,
        "per_page": 100,
        "person_titles": ["CFO"],
        "person_seniorities": ["vp"],
        "organization_ids": ["5e66b6381e05b4008c8331b8"],
        "include_similar_titles": True,
    }


async def test_apollo_errors_and_missing_key(
    http: ExternalHttp, respx_mock: respx.MockRouter
) -> None:
    respx_mock.post(APOLLO_SEARCH).mock(
        return_value=httpx.Response(401, json={"error": "Invalid access credentials."})
    )
    with pytest.raises(ProviderError) as raised:
        await ApolloClient(settings=make_settings(), http=http).search_people(
            organization_domains=["x.com"]
        )
    assert (raised.value.status, raised.value.transient) == (401, False)
    unconfigured = ApolloClient(settings=make_settings(with_keys=False), http=http)
    assert not unconfigured.available
    with pytest.raises(ApolloNotConfigured):
        await unconfigured.search_people()


def test_country_names() -> None:
    assert country_name("de") == "Germany"
    assert country_name("UK") == "United Kingdom"
    assert country_name("XK") == "Kosovo"
    assert country_name("ZZ") is None


# --- OpenAI ---------------------------------------------------------------------------------------

VALID_ANSWER = {
    "titles": [
        {
            "title": "VP Payments",
            "normalized_title": "VP Payments",
            "relevance": 0.92,
            "seniority": "vp",
            "source": "apollo",
            "rationale": "Owns the payments roadmap.",
        },
        {
            "title": "Head of Payments",
            "normalized_title": "head of payments",
            "relevance": 0.85,
            "seniority": "head",
            "source": "expanded",
            "rationale": "Runs payments operations.",
        },
        {
            "title": "Vice-President, Payments",
            "normalized_title": "vp payments",
            "relevance": 0.7,
            "seniority": "vp",
            "source": "expanded",
            "rationale": "Duplicate wording.",
        },
    ]
}


def completion(
    content: str | None, *, refusal: str | None = None, finish_reason: str = "stop"
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_790_000_000,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


Handler = Callable[[httpx2.Request], httpx2.Response]


def title_client(handler: Handler, **settings: Any) -> tuple[JobTitleClient, list[httpx2.Request]]:
    seen: list[httpx2.Request] = []

    def record(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return handler(request)

    values = {"OPENAI_MAX_RETRIES": 0, **settings}
    config = make_settings(**values)
    sdk = AsyncOpenAI(
        api_key="sk-openai-test-key",
        base_url="https://api.openai.com/v1",
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(record)),
    )
    return JobTitleClient.from_settings(config, client=sdk), seen


def _count(outcome: str) -> float:
    value: float = PROVIDER_REQUESTS.labels("openai", outcome)._value.get()
    return value


async def test_valid_structured_answer() -> None:
    client, seen = title_client(
        lambda _: httpx2.Response(200, json=completion(json.dumps(VALID_ANSWER)))
    )
    before = _count("success")
    titles = await client.score_titles(
        company_name="Stripe",
        titles=["VP Payments", "VP Payments", "Head of Risk"],
        project_brief="Card payments in Europe",
        geographies=["GB"],
    )
    request = seen[0]
    assert request.method == "POST"
    assert str(request.url) == "https://api.openai.com/v1/chat/completions"
    assert request.headers["Authorization"] == "Bearer sk-openai-test-key"
    body = json.loads(request.content)
    assert body["model"] == "gpt-4o-mini"
    assert body["temperature"] == 0.2
    assert body["response_format"]["type"] == "json_schema"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert json.loads(body["messages"][1]["content"]) == {
        "company": "Stripe",
        "geographies": ["GB"],
        "project_brief": "Card payments in Europe",
        "titles_from_apollo": ["VP Payments", "Head of Risk"],
    }
    # Normalised and merged: one entry per normalised title, the most relevant kept.
    assert [(t.normalized_title, t.relevance, t.seniority, t.source) for t in titles] == [
        ("vp payments", 0.92, Seniority.VP, "apollo"),
        ("head of payments", 0.85, Seniority.HEAD, "expanded"),
    ]
    assert _count("success") == before + 1


def _objects(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every object schema reachable from `schema` (``$ref`` followed), by title."""
    if "$ref" in schema:
        schema = root["$defs"][schema["$ref"].removeprefix("#/$defs/")]
    found = {schema["title"]: schema} if schema.get("type") == "object" else {}
    for child in [*schema.get("properties", {}).values(), schema.get("items", {})]:
        if child:
            found |= _objects(child, root)
    return found


def _keys(node: Any) -> set[str]:
    """Every key at any depth (keywords and property names alike)."""
    if isinstance(node, dict):
        return set(node).union(*map(_keys, node.values()))
    if isinstance(node, list):
        return set().union(*map(_keys, node))
    return set()


async def test_the_response_format_is_the_strict_schema_of_the_answer_model() -> None:
    client, seen = title_client(
        lambda _: httpx2.Response(200, json=completion(json.dumps(VALID_ANSWER)))
    )
    await client.score_titles(company_name="Stripe", titles=["VP Payments"])
    response_format = json.loads(seen[0].content)["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == TitleScoringAnswer.__name__
    assert response_format["json_schema"]["strict"] is True
    schema = response_format["json_schema"]["schema"]
    objects = _objects(schema, schema)
    # Generated from the pydantic models: every field named and required, nothing else allowed.
    assert set(objects) == {"TitleScoringAnswer", "ScoredTitle"}
    for model in (TitleScoringAnswer, ScoredTitle):
        shape = objects[model.__name__]
        assert list(shape["properties"]) == list(model.model_fields)
        assert shape["required"] == list(model.model_fields)
        assert shape["additionalProperties"] is False
    seniority = schema["$defs"]["Seniority"]
    assert seniority["enum"] == [s.value for s in Seniority]
    assert objects["ScoredTitle"]["properties"]["relevance"]["type"] == "number"
    # Ranges and lengths stay out of the schema (strict mode does not promise them); the
    # validators check them instead (see the malformed answers below).
    assert not _keys(schema) & {"minimum", "maximum", "minLength", "maxLength"}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"titles": [{"title": "VP Pay', "not JSON"),
        (json.dumps({"titles": [{"title": "VP Payments", "relevance": 7}]}), "schema violation"),
        (
            json.dumps({"titles": [{**VALID_ANSWER["titles"][0], "relevance": 1.5}]}),
            "titles.0.relevance: Value error, must be within 0..1",
        ),
        (
            json.dumps({"titles": [{**VALID_ANSWER["titles"][0], "relevance": -0.01}]}),
            "titles.0.relevance: Value error, must be within 0..1",
        ),
        (
            json.dumps({"titles": [{**VALID_ANSWER["titles"][0], "normalized_title": "  "}]}),
            "titles.0.normalized_title: Value error, must not be blank",
        ),
        (
            json.dumps({"titles": [{**VALID_ANSWER["titles"][0], "extra": "field"}]}),
            "schema violation",
        ),
        (
            json.dumps({"titles": [{**VALID_ANSWER["titles"][0], "seniority": "boss"}]}),
            "schema violation",
        ),
        ("", "empty answer"),
    ],
)
async def test_malformed_answers_raise_a_retryable_error(content: str, reason: str) -> None:
    client, _ = title_client(lambda _: httpx2.Response(200, json=completion(content)))
    before = _count("malformed")
    with pytest.raises(MalformedModelAnswer) as raised:
        await client.score_titles(company_name="Stripe", titles=["VP Payments"])
    assert reason in str(raised.value)
    assert isinstance(raised.value, TransientError) and is_transient(raised.value)
    assert _count("malformed") == before + 1


async def test_refusal_and_truncation() -> None:
    refused, _ = title_client(
        lambda _: httpx2.Response(200, json=completion(None, refusal="I can't help"))
    )
    before = _count("refusal")
    with pytest.raises(ModelRefusal, match="I can't help") as raised:
        await refused.score_titles(company_name="Stripe", titles=["VP Payments"])
    assert is_transient(raised.value)
    filtered, _ = title_client(
        lambda _: httpx2.Response(200, json=completion(None, finish_reason="content_filter"))
    )
    with pytest.raises(ModelRefusal, match="content filter"):
        await filtered.score_titles(company_name="Stripe", titles=["VP Payments"])
    assert _count("refusal") == before + 2
    cut, _ = title_client(
        lambda _: httpx2.Response(200, json=completion('{"titles": [', finish_reason="length"))
    )
    with pytest.raises(MalformedModelAnswer, match="cut off"):
        await cut.score_titles(company_name="Stripe", titles=["VP Payments"])


@pytest.mark.parametrize(
    ("status", "transient"), [(500, True), (429, True), (400, False), (401, False)]
)
async def test_http_failures_become_provider_errors(status: int, transient: bool) -> None:
    client, seen = title_client(
        lambda _: httpx2.Response(status, json={"error": {"message": "nope"}})
    )
    with pytest.raises(ProviderError) as raised:
        await client.score_titles(company_name="Stripe", titles=["VP Payments"])
    assert (raised.value.status, raised.value.transient) == (status, transient)
    assert len(seen) == 1  # OPENAI_MAX_RETRIES=0 here


def test_settings_are_enforced() -> None:
    with pytest.raises(ValueError, match="temperature"):
        JobTitleClient(api_key="k", model="m", temperature=0.5)
    with pytest.raises(ProviderError):
        JobTitleClient.from_settings(make_settings(with_keys=False))
    sandboxed = JobTitleClient.from_settings(
        make_settings(SANDBOX_PROVIDERS=True, SANDBOX_URL="http://127.0.0.1:8099")
    )
    assert str(sandboxed._client.base_url).rstrip("/") == "http://127.0.0.1:8099/openai/v1"
