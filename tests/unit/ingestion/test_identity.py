"""Normalised person identity: LinkedIn URL and email spellings of one person compare equal."""

from __future__ import annotations

import pytest

from sourcing.people.identity import (
    normalize_email,
    normalize_linkedin_url,
    person_identity,
)

JANE = "https://www.linkedin.com/in/janedoe"


@pytest.mark.parametrize(
    "url",
    [
        "https://www.linkedin.com/in/janedoe",
        "https://www.linkedin.com/in/janedoe/",
        "http://linkedin.com/in/janedoe",
        "linkedin.com/in/janedoe",
        "www.linkedin.com/in/JaneDoe/",
        "https://uk.linkedin.com/in/janedoe?originalSubdomain=uk",
        "https://de.linkedin.com/in/janedoe/#experience",
        "https://m.linkedin.com/in/janedoe",
        "HTTPS://WWW.LINKEDIN.COM/IN/JANEDOE",
        "  https://www.linkedin.com/in/janedoe/details/experience/  ",
        "https://www.linkedin.com//in//janedoe",
        "https://www.linkedin.com/in/jane%44oe",
    ],
)
def test_profile_spellings_normalise_to_one_url(url: str) -> None:
    assert normalize_linkedin_url(url) == JANE


def test_sales_navigator_lead_urls_keep_their_case_sensitive_id() -> None:
    a = normalize_linkedin_url(
        "https://www.linkedin.com/sales/lead/ACwAAB1x2Y3,NAME_SEARCH,aBcD?_ntb=xyz"
    )
    b = normalize_linkedin_url("https://linkedin.com/sales/people/ACwAAB1x2Y3,NAME_SEARCH/")
    assert a == b == "https://www.linkedin.com/sales/lead/ACwAAB1x2Y3"
    assert normalize_linkedin_url("https://linkedin.com/sales/lead/acwaab1x2y3") != a


def test_different_people_stay_different() -> None:
    assert normalize_linkedin_url("https://linkedin.com/in/janedoe2") != JANE
    assert normalize_linkedin_url("https://linkedin.com/company/stripe/") == (
        "https://www.linkedin.com/company/stripe"
    )


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "   ",
        "https://example.com/in/janedoe",
        "https://linkedin.com.evil.test/in/janedoe",
        "https://notlinkedin.com/in/janedoe",
        "https://www.linkedin.com/",
    ],
)
def test_non_linkedin_urls_have_no_identity(url: str | None) -> None:
    assert normalize_linkedin_url(url) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Jane.Doe@Stripe.com", "jane.doe@stripe.com"),
        ("  jane@stripe.com\n", "jane@stripe.com"),
        ("", None),
        (None, None),
        ("not-an-email", None),
        ("@stripe.com", None),
        ("jane@", None),
    ],
)
def test_email_normalisation(raw: str | None, expected: str | None) -> None:
    assert normalize_email(raw) == expected


def test_person_identity_prefers_linkedin_then_email() -> None:
    assert person_identity("https://uk.linkedin.com/in/JaneDoe/", "jane@stripe.com") == JANE
    assert person_identity(None, " Jane@Stripe.com ") == "jane@stripe.com"
    assert person_identity("https://example.com/jane", "jane@stripe.com") == "jane@stripe.com"
    with pytest.raises(ValueError, match="LinkedIn URL or an email"):
        person_identity(None, "  ")
