"""Enrichment provider adapters (manual §9), registered by key in :data:`PROVIDERS`.

Use :func:`build_providers` once per process with the shared ``ExternalHttp``; each adapter's
``lookup`` returns a :class:`ProviderResult` for every outcome.
"""

from sourcing.enrichment.providers import (  # noqa: F401  (importing registers the adapters)
    contactout,
    datagm,
    exa,
    forager,
    leadmagic,
    peopledatalabs,
    prospeo,
    rocketreach,
    wiza,
    zeliq,
)
from sourcing.enrichment.providers.base import (
    PROVIDERS,
    EmailKind,
    EnrichmentProvider,
    FoundEmail,
    FoundPhone,
    PersonQuery,
    PhoneType,
    ProviderResult,
    ResultStatus,
    Verification,
    build_providers,
    declared_credits,
    rate_limit_per_minute,
    register_provider,
    registered_keys,
)
from sourcing.enrichment.providers.contactout import ContactOutProvider
from sourcing.enrichment.providers.datagm import DataGMProvider
from sourcing.enrichment.providers.exa import ExaProvider
from sourcing.enrichment.providers.forager import ForagerProvider
from sourcing.enrichment.providers.leadmagic import LeadMagicProvider
from sourcing.enrichment.providers.peopledatalabs import PeopleDataLabsProvider
from sourcing.enrichment.providers.prospeo import ProspeoProvider
from sourcing.enrichment.providers.rocketreach import RocketReachProvider
from sourcing.enrichment.providers.wiza import WizaProvider
from sourcing.enrichment.providers.zeliq import ZeliqProvider

__all__ = [
    "PROVIDERS",
    "ContactOutProvider",
    "DataGMProvider",
    "EmailKind",
    "EnrichmentProvider",
    "ExaProvider",
    "ForagerProvider",
    "FoundEmail",
    "FoundPhone",
    "LeadMagicProvider",
    "PeopleDataLabsProvider",
    "PersonQuery",
    "PhoneType",
    "ProspeoProvider",
    "ProviderResult",
    "ResultStatus",
    "RocketReachProvider",
    "Verification",
    "WizaProvider",
    "ZeliqProvider",
    "build_providers",
    "declared_credits",
    "rate_limit_per_minute",
    "register_provider",
    "registered_keys",
]
