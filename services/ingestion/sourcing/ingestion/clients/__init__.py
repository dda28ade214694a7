"""Outbound clients of the ingestion service: Apollo people search and OpenAI title scoring."""

from sourcing.ingestion.clients.apollo import (
    ApolloClient,
    ApolloNotConfigured,
    ApolloPerson,
    ApolloSearchPage,
    ApolloTitle,
)
from sourcing.ingestion.clients.countries import COUNTRY_NAMES, country_name
from sourcing.ingestion.clients.openai_titles import (
    JobTitleClient,
    MalformedModelAnswer,
    ModelRefusal,
    ScoredTitle,
    Seniority,
    TitleScoringAnswer,
    merge_titles,
    normalize_title,
)

__all__ = [
    "COUNTRY_NAMES",
    "ApolloClient",
    "ApolloNotConfigured",
    "ApolloPerson",
    "ApolloSearchPage",
    "ApolloTitle",
    "JobTitleClient",
    "MalformedModelAnswer",
    "ModelRefusal",
    "ScoredTitle",
    "Seniority",
    "TitleScoringAnswer",
    "country_name",
    "merge_titles",
    "normalize_title",
]
