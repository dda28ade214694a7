"""People Data Labs: person enrichment (spec/providers.md, "People Data Labs").

Request: ``GET /person/enrich`` with ``profile=<linkedin url>`` (preferred), else
``first_name``, ``last_name`` and ``company`` (domain or name); plus ``min_likelihood``; header
``X-Api-Key``. 404 is no match. Plans without contact access return ``true`` instead of the
value in contact fields: those are ignored (not addresses).

Confidence is PDL's match ``likelihood`` (1-10) / 10 for every email and the mobile phone; other
phone numbers get 0.8 of that. A work email or an ``emails[]`` entry typed professional is
professional, ``personal_emails`` personal.
"""

from __future__ import annotations

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
    as_dict,
    as_list,
    make_email,
    make_phone,
    register_provider,
)

# Matches below this likelihood are too often someone else; PDL then answers 404 (free).
MIN_LIKELIHOOD = 3


@register_provider
class PeopleDataLabsProvider(EnrichmentProvider):
    key = ProviderKey.PEOPLEDATALABS.value
    display_name = "People Data Labs"

    def _auth_headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.api_key}

    @staticmethod
    def enrich_params(person: PersonQuery) -> dict[str, str] | None:
        params: dict[str, str]
        first, last = person.given_name, person.family_name
        company = person.domain or person.company_name
        if person.linkedin_url:
            params = {"profile": person.linkedin_url}
        elif first and last and company:
            params = {"first_name": first, "last_name": last, "company": company}
        else:
            return None
        params["min_likelihood"] = str(MIN_LIKELIHOOD)
        return params

    async def _fetch(self, person: PersonQuery, call: ProviderCall) -> Found:
        params = self.enrich_params(person)
        if params is None:
            return Found(
                status=ResultStatus.MISS,
                note="needs a LinkedIn URL, or a name and a company",
            )
        response = await self._request(
            call, "enrich", "GET", "/person/enrich", params=params, ok_statuses=frozenset({404})
        )
        if response.status_code == 404:
            return Found(status=ResultStatus.MISS)
        answer = as_dict(response.json())
        return self.read_person(as_dict(answer.get("data")), answer.get("likelihood"), person)

    @staticmethod
    def read_person(data: dict[str, Any], likelihood: Any, person: PersonQuery) -> Found:
        try:
            confidence = max(0.0, min(float(likelihood), 10.0)) / 10
        except (TypeError, ValueError):
            confidence = 0.5  # a match without a likelihood: middle of the scale
        emails: list[FoundEmail | None] = [
            make_email(
                data.get("work_email"),
                confidence=confidence,
                hint=EmailKind.PROFESSIONAL,
                person=person,
            )
        ]
        for address in as_list(data.get("personal_emails")):
            emails.append(
                make_email(address, confidence=confidence, hint=EmailKind.PERSONAL, person=person)
            )
        for item in as_list(data.get("emails")):
            entry = as_dict(item)
            vendor_type = str(entry.get("type") or "").lower()
            hint = (
                EmailKind.PERSONAL
                if vendor_type == "personal"
                else EmailKind.PROFESSIONAL
                if "professional" in vendor_type
                else None
            )
            emails.append(
                make_email(entry.get("address"), confidence=confidence, hint=hint, person=person)
            )
        phones: list[FoundPhone | None] = [
            make_phone(data.get("mobile_phone"), confidence=confidence, type_=PhoneType.MOBILE)
        ]
        phones.extend(
            make_phone(n, confidence=confidence * 0.8) for n in as_list(data.get("phone_numbers"))
        )
        return Found(emails=[e for e in emails if e], phones=[p for p in phones if p])
