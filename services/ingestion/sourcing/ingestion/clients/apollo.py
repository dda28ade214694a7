"""Apollo.io people search for job-title discovery (manual §4.6; spec/providers.md, "Apollo").

``POST /mixed_people/api_search`` with header ``x-api-key``: filters ``person_titles[]``,
``include_similar_titles``, ``person_seniorities[]``, ``person_locations[]``,
``q_organization_domains_list[]``, ``organization_ids[]``, ``q_keywords``, ``page``,
``per_page`` (at most 100). It costs no credits and returns no emails or phones: we read the
titles people hold at a company. Every call goes through the shared ExternalHttp (timeout,
bounded retry, metrics); failures raise :class:`~sourcing.common.http.ProviderError`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from sourcing.common.http import ExternalHttp, ProviderError
from sourcing.common.outbound import (
    ProviderSettings,
    provider_api_key,
    provider_base_url,
)
from sourcing.ingestion.clients.countries import country_name

PROVIDER: Final = "apollo"
MAX_PER_PAGE: Final = 100


class ApolloOrganization(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | None = None
    name: str | None = None
    primary_domain: str | None = None


class ApolloPerson(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | None = None
    first_name: str | None = None
    last_name_obfuscated: str | None = None
    title: str | None = None
    organization: ApolloOrganization | None = None


class ApolloSearchPage(BaseModel):
    people: list[ApolloPerson] = Field(default_factory=list)
    total_entries: int = 0
    page: int = 1
    per_page: int = MAX_PER_PAGE


class ApolloTitle(BaseModel):
    """A title found at a company and how many people in the search hold it."""

    title: str
    count: int


class ApolloNotConfigured(ProviderError):
    def __init__(self) -> None:
        super().__init__(PROVIDER, "APOLLO_API_KEY is not set", transient=False)


def _clean(values: Iterable[str]) -> list[str]:
    return [value.strip() for value in values if value and value.strip()]


class ApolloClient:
    def __init__(self, *, settings: ProviderSettings, http: ExternalHttp) -> None:
        self._http = http
        self._base_url = provider_base_url(settings, PROVIDER)
        self._api_key = provider_api_key(settings, PROVIDER)

    @property
    def available(self) -> bool:
        return self._api_key is not None

    @staticmethod
    def search_body(
        *,
        organization_domains: Sequence[str] = (),
        organization_ids: Sequence[str] = (),
        titles: Sequence[str] = (),
        include_similar_titles: bool = True,
        seniorities: Sequence[str] = (),
        locations: Sequence[str] = (),
        keywords: str | None = None,
        page: int = 1,
        per_page: int = MAX_PER_PAGE,
    ) -> dict[str, Any]:
        """The api_search body; empty filters are left out (Apollo treats them as "any")."""
        body: dict[str, Any] = {
            "page": max(1, page),
            "per_page": max(1, min(per_page, MAX_PER_PAGE)),
        }
        for name, values in (
            ("person_titles", titles),
            ("person_seniorities", seniorities),
            ("person_locations", locations),
            ("q_organization_domains_list", organization_domains),
            ("organization_ids", organization_ids),
        ):
            cleaned = _clean(values)
            if cleaned:
                body[name] = cleaned
        if titles:
            body["include_similar_titles"] = include_similar_titles
        if keywords and keywords.strip():
            body["q_keywords"] = keywords.strip()
        return body

    async def search_people(
        self,
        *,
        organization_domains: Sequence[str] = (),
        organization_ids: Sequence[str] = (),
        titles: Sequence[str] = (),
        include_similar_titles: bool = True,
        seniorities: Sequence[str] = (),
        locations: Sequence[str] = (),
        keywords: str | None = None,
        page: int = 1,
        per_page: int = MAX_PER_PAGE,
    ) -> ApolloSearchPage:
        """One page of people matching the filters."""
        if self._api_key is None:
            raise ApolloNotConfigured()
        body = self.search_body(
            organization_domains=organization_domains,
            organization_ids=organization_ids,
            titles=titles,
            include_similar_titles=include_similar_titles,
            seniorities=seniorities,
            locations=locations,
            keywords=keywords,
            page=page,
            per_page=per_page,
        )
        response = await self._http.request(
            PROVIDER,
            "POST",
            f"{self._base_url}/mixed_people/api_search",
            headers={"x-api-key": self._api_key, "Cache-Control": "no-cache"},
            json=body,
        )
        try:
            answer = response.json()
        except ValueError as exc:
            raise ProviderError(
                PROVIDER, "api_search answered with non-JSON", status=response.status_code
            ) from exc
        if not isinstance(answer, dict):
            raise ProviderError(PROVIDER, "api_search answered with an unexpected shape")
        total = answer.get("total_entries")
        if total is None:  # older answers put it under `pagination`
            pagination = answer.get("pagination")
            total = pagination.get("total_entries") if isinstance(pagination, dict) else 0
        return ApolloSearchPage(
            people=[
                ApolloPerson.model_validate(p)
                for p in answer.get("people") or []
                if isinstance(p, dict)
            ],
            total_entries=int(total or 0),
            page=body["page"],
            per_page=body["per_page"],
        )

    async def titles_at_company(
        self,
        *,
        company_name: str,
        company_domain: str | None = None,
        organization_id: str | None = None,
        country_isos: Sequence[str] = (),
        max_pages: int = 1,
        per_page: int = MAX_PER_PAGE,
    ) -> list[ApolloTitle]:
        """Distinct titles held at a company in the given countries, most common first.

        The company is matched by Apollo organization id, else domain; with neither, its name
        goes into ``q_keywords`` (looser: Apollo matches keywords across the profile).
        """
        locations = [name for code in country_isos if (name := country_name(code))]
        counts: Counter[str] = Counter()
        spelling: dict[str, str] = {}
        for page in range(1, max(1, max_pages) + 1):
            result = await self.search_people(
                organization_ids=[organization_id] if organization_id else (),
                organization_domains=[company_domain]
                if company_domain and not organization_id
                else (),
                keywords=None if organization_id or company_domain else company_name,
                locations=locations,
                page=page,
                per_page=per_page,
            )
            for person in result.people:
                title = " ".join((person.title or "").split())
                if title:
                    key = title.casefold()
                    counts[key] += 1
                    spelling.setdefault(key, title)
            if page * result.per_page >= result.total_entries or not result.people:
                break
        return [
            ApolloTitle(title=spelling[key], count=count) for key, count in counts.most_common()
        ]
