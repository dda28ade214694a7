"""LeadMagic: email finder, then mobile finder (spec/providers.md, "LeadMagic").

Requests: ``POST /v1/people/email-finder`` ``{first_name, last_name, domain | company_name}``
and ``POST /mobile-finder`` ``{profile_url | work_email | personal_email}``, header
``X-API-Key``. No-result lookups are free; 402 means no credits (an error, not retried).

Confidence, from LeadMagic's ``status``: ``valid`` 0.95, ``valid_catch_all`` 0.75 (LeadMagic
verified the person on a catch-all domain), ``catch_all`` 0.5 (deliverable, person unproven),
``not_found``/anything else: no email. A mobile number carries no validity signal: 0.65.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sourcing.common.models.enums import EnrichmentProvider as ProviderKey
from sourcing.enrichment.providers.base import (
    EmailKind,
    EnrichmentProvider,
    Found,
    FoundEmail,
    FoundPhone,
    PersonQuery,
    PhoneType,
    ProviderCall,
    ResultStatus,
    Verification,
    as_dict,
    make_email,
    make_phone,
    register_provider,
)

EMAIL_CONFIDENCE = {"valid": 0.95, "valid_catch_all": 0.75, "catch_all": 0.5}
EMAIL_VERIFICATION = {
    "valid": Verification.VERIFIED,
    "valid_catch_all": Verification.VERIFIED,
    "catch_all": Verification.CATCH_ALL,
}
MOBILE_CONFIDENCE = 0.65


@register_provider
class LeadMagicProvider(EnrichmentProvider):
    key = ProviderKey.LEADMAGIC.value
    display_name = "LeadMagic"

    misses_free = True

    def reported_credits(self, raw: Mapping[str, Any]) -> float | None:
        """The sum of ``credits_consumed`` over the email and mobile finders' answers."""
        reported = [
            answer.get("credits_consumed")
            for answer in (as_dict(raw.get("email-finder")), as_dict(raw.get("mobile-finder")))
        ]
        numbers = [
            float(value)
            for value in reported
            if isinstance(value, int | float) and not isinstance(value, bool)
        ]
        return sum(numbers) if numbers else None

    def _auth_headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}

    @staticmethod
    def email_finder_body(person: PersonQuery) -> dict[str, Any] | None:
        """The email-finder body, or None when the person lacks a name or a company."""
        first, last = person.given_name, person.family_name
        if not (first and last) or not (person.domain or person.company_name):
            return None
        body: dict[str, Any] = {"first_name": first, "last_name": last}
        if person.domain:
            body["domain"] = person.domain  # LeadMagic prefers the domain over the name
        else:
            body["company_name"] = person.company_name
        return body

    async def _fetch(self, person: PersonQuery, call: ProviderCall) -> Found:
        emails: list[FoundEmail | None] = []
        body = self.email_finder_body(person)
        if body is not None:
            response = await self._request(
                call, "email-finder", "POST", "/v1/people/email-finder", json=body
            )
            emails.append(self.read_email(as_dict(response.json()), person))

        mobile_body: dict[str, Any] | None = None
        work_email = next(
            (e.address for e in emails if e and e.kind is not EmailKind.PERSONAL), None
        )
        if person.linkedin_url:
            mobile_body = {"profile_url": person.linkedin_url}
        elif work_email or person.email:
            mobile_body = {"work_email": work_email or person.email}
        if body is None and mobile_body is None:
            return Found(
                status=ResultStatus.MISS, note="needs a name and a company, or a LinkedIn URL"
            )

        phones: list[FoundPhone | None] = []
        if mobile_body is not None:
            request_body = mobile_body

            async def mobile() -> Any:
                response = await self._request(
                    call, "mobile-finder", "POST", "/mobile-finder", json=request_body
                )
                return response.json()

            # The email is what matters most: a failed phone lookup must not lose it.
            answer = await self._optional(call, "mobile-finder", mobile) if body else await mobile()
            phones.append(self.read_mobile(as_dict(answer)))
        return Found(emails=[e for e in emails if e], phones=[p for p in phones if p])

    @staticmethod
    def read_email(answer: dict[str, Any], person: PersonQuery) -> FoundEmail | None:
        status = str(answer.get("status") or "").lower()
        return make_email(
            answer.get("email"),
            confidence=EMAIL_CONFIDENCE.get(status, 0.0),
            verification=EMAIL_VERIFICATION.get(status, Verification.UNVERIFIED),
            hint=EmailKind.PROFESSIONAL,  # an email *finder* at the company's domain
            person=person,
        )

    @staticmethod
    def read_mobile(answer: dict[str, Any]) -> FoundPhone | None:
        return make_phone(
            answer.get("mobile_number"), confidence=MOBILE_CONFIDENCE, type_=PhoneType.MOBILE
        )
