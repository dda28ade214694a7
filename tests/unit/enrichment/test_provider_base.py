"""The provider capability itself: registry, availability, settings routing, helpers."""

from __future__ import annotations

import pytest

from sourcing.common.http import ExternalHttp, ProviderError
from sourcing.common.models.enums import EnrichmentProvider as ProviderKey
from sourcing.common.outbound import (
    DEFAULT_BASE_URLS,
    provider_api_key,
    provider_base_url,
)
from sourcing.enrichment.providers import (
    PROVIDERS,
    EmailKind,
    FoundEmail,
    FoundPhone,
    PersonQuery,
    ProviderResult,
    ResultStatus,
    Verification,
    build_providers,
)
from sourcing.enrichment.providers.base import (
    classify_provider_error,
    email_kind,
    linkedin_slug,
    normalize_domain,
)
from tests.fixtures.settings import Settings
from tests.unit.enrichment.support import make_settings


def test_all_ten_providers_are_registered_in_the_manuals_order(http: ExternalHttp) -> None:
    providers = build_providers(make_settings(), http)
    assert list(providers) == [key.value for key in ProviderKey]
    assert all(provider.key == key for key, provider in providers.items())
    assert set(PROVIDERS) == {key.value for key in ProviderKey}


def test_every_credential_setting_exists() -> None:
    for key in [*PROVIDERS, "apollo", "openai"]:
        assert f"{key.upper()}_API_KEY" in Settings.model_fields
        assert f"{key.upper()}_BASE_URL" in make_settings().__class__.model_fields


def test_availability_follows_the_credentials(http: ExternalHttp) -> None:
    configured = build_providers(make_settings(), http)
    assert all(p.available for p in configured.values())
    bare = build_providers(make_settings(with_keys=False), http)
    assert not any(p.available for p in bare.values())
    only_one = build_providers(make_settings(with_keys=False, PROSPEO_API_KEY="k"), http)
    assert [key for key, p in only_one.items() if p.available] == ["prospeo"]


def test_base_urls_are_the_vendors_and_overridable() -> None:
    settings = make_settings(LEADMAGIC_BASE_URL="http://127.0.0.1:9999/stub/")
    assert provider_base_url(settings, "leadmagic") == "http://127.0.0.1:9999/stub"
    assert provider_base_url(settings, "wiza") == "https://wiza.co/api"
    assert provider_base_url(settings, "openai") == "https://api.openai.com/v1"
    with pytest.raises(KeyError):
        provider_base_url(settings, "nope")


def test_sandbox_mode_routes_every_provider_to_the_sandbox(http: ExternalHttp) -> None:
    settings = make_settings(SANDBOX_PROVIDERS=True, SANDBOX_URL="http://127.0.0.1:8099/")
    assert provider_base_url(settings, "leadmagic") == "http://127.0.0.1:8099/leadmagic"
    assert provider_base_url(settings, "rocketreach") == "http://127.0.0.1:8099/rocketreach/api/v2"
    assert provider_base_url(settings, "datagm") == "http://127.0.0.1:8099/datagm/api/ingress"
    assert provider_base_url(settings, "openai") == "http://127.0.0.1:8099/openai/v1"
    assert set(DEFAULT_BASE_URLS) == {*PROVIDERS, "apollo", "openai"}
    # Real keys never travel to the sandbox; without keys every adapter still works there.
    assert provider_api_key(settings, "leadmagic") == "sandbox-leadmagic"
    bare = build_providers(
        make_settings(with_keys=False, SANDBOX_PROVIDERS=True, ZELIQ_CALLBACK_URL=None), http
    )
    assert [key for key, p in bare.items() if not p.available] == ["zeliq"]  # needs a callback


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ProviderError("x", "HTTP 401: bad key", status=401), (ResultStatus.ERROR, 401, False)),
        (
            ProviderError("x", "gave up after 3 attempts (HTTP 503)", transient=True),
            (ResultStatus.ERROR, 503, True),
        ),
        (
            ProviderError("x", "gave up after 3 attempts (HTTP 429)", transient=True),
            (ResultStatus.RATE_LIMITED, 429, True),
        ),
        (
            ProviderError("x", "gave up after 3 attempts (timeout: ReadTimeout)", transient=True),
            (ResultStatus.TIMEOUT, None, True),
        ),
        (
            ProviderError(
                "x", "gave up after 3 attempts (transport_error: ConnectError)", transient=True
            ),
            (ResultStatus.ERROR, None, True),
        ),
    ],
)
def test_provider_errors_are_classified(
    error: ProviderError, expected: tuple[ResultStatus, int | None, bool]
) -> None:
    assert classify_provider_error(error) == expected


def test_region_filter_drops_personal_emails_for_europe_and_recomputes_confidence() -> None:
    result = ProviderResult(
        provider="x",
        status=ResultStatus.HIT,
        emails=[
            FoundEmail(address="jane@gmail.com", kind=EmailKind.PERSONAL, confidence=0.95),
            FoundEmail(
                address="jane@family.example", kind=EmailKind.PERSONAL, confidence=0.9
            ),  # labelled personal by the vendor
            FoundEmail(
                address="jane@stripe.com",
                kind=EmailKind.PROFESSIONAL,
                verification=Verification.CATCH_ALL,
                confidence=0.5,
            ),
        ],
        phones=[FoundPhone(number="+44 20 7946 0958", e164="+442079460958", confidence=0.65)],
        confidence=0.95,
    )
    gb = result.for_region("GB")
    assert [e.address for e in gb.emails] == ["jane@stripe.com"]
    assert [e.address for e in gb.filtered_emails] == ["jane@gmail.com", "jane@family.example"]
    assert gb.confidence == 0.65
    assert result.for_region("US") == result.model_copy(update={"confidence": 0.95})
    nothing_left = ProviderResult(
        provider="x",
        status=ResultStatus.HIT,
        emails=[FoundEmail(address="jane@gmail.com", kind=EmailKind.PERSONAL, confidence=0.9)],
        confidence=0.9,
    ).for_region("de")
    assert (nothing_left.status, nothing_left.has_contacts, nothing_left.confidence) == (
        ResultStatus.HIT,
        False,
        None,
    )


def test_person_query_derives_what_vendors_need() -> None:
    person = PersonQuery(
        full_name="  Jane van der Doe ",
        company_domain="HTTPS://WWW.Stripe.com/about",
        linkedin_url="https://uk.linkedin.com/in/jane-van-der-doe-4b2a1c/",
        country_iso="gb",
    )
    assert (person.given_name, person.family_name) == ("Jane", "Doe")
    assert person.domain == "stripe.com"
    assert person.linkedin_slug == "jane-van-der-doe-4b2a1c"
    assert person.country == "GB"
    assert PersonQuery(full_name="Cher").family_name is None


def test_helpers() -> None:
    assert linkedin_slug("https://www.linkedin.com/in/jane%2Ddoe?trk=x") == "jane-doe"
    assert linkedin_slug("https://example.com/jane") is None
    assert normalize_domain("stripe.com:443") == "stripe.com"
    assert email_kind("jane@gmail.com", hint=EmailKind.PROFESSIONAL) is EmailKind.PERSONAL
    assert email_kind("jane@eu.stripe.com", company_domain="stripe.com") is EmailKind.PROFESSIONAL
    assert email_kind("jane@other.com", company_domain="stripe.com") is EmailKind.UNKNOWN
