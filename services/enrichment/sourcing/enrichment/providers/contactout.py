"""ContactOut: people lookup by LinkedIn profile or by name and company domain
(spec/providers.md, "ContactOut").

Requests, header ``token: <key>``: with a LinkedIn URL ``GET /v1/people/linkedin?profile=<url>
&include_phone=true``; otherwise ``POST /v1/people/enrich`` ``{full_name, company_domain:[...],
include:["work_email", "personal_email", "phone"]}`` (personal emails are not requested where
the region rule forbids them). 404 is no match.

Confidence, from ContactOut's ``work_email_status``: a work email marked ``Verified`` 0.9, other
work emails 0.6; personal emails 0.6; addresses only in the unlabelled ``email[]`` 0.5; phones
0.65 (no validity signal).
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
    ProviderCall,
    ResultStatus,
    Verification,
    as_dict,
    as_list,
    make_email,
    make_phone,
    register_provider,
)
from sourcing.people.contacts import requires_professional_email


@register_provider
class ContactOutProvider(EnrichmentProvider):
    key = ProviderKey.CONTACTOUT.value
    display_name = "ContactOut"

    def _auth_headers(self) -> dict[str, str]:
        return {"token": self.api_key}

    @staticmethod
    def enrich_body(person: PersonQuery) -> dict[str, Any] | None:
        if not person.domain:
            return None
        include = ["work_email", "phone"]
        if not requires_professional_email(person.country_iso):
            include.insert(1, "personal_email")
        return {
            "full_name": person.full_name,
            "company_domain": [person.domain],
            "include": include,
        }

    async def _fetch(self, person: PersonQuery, call: ProviderCall) -> Found:
        not_found = frozenset({404})
        if person.linkedin_url:
            response = await self._request(
                call,
                "linkedin",
                "GET",
                "/v1/people/linkedin",
                params={"profile": person.linkedin_url, "include_phone": "true"},
                ok_statuses=not_found,
            )
        else:
            body = self.enrich_body(person)
            if body is None:
                return Found(
                    status=ResultStatus.MISS, note="needs a LinkedIn URL or a company domain"
                )
            response = await self._request(
                call, "enrich", "POST", "/v1/people/enrich", json=body, ok_statuses=not_found
            )
        if response.status_code == 404:
            return Found(status=ResultStatus.MISS)
        return self.read_profile(as_dict(as_dict(response.json()).get("profile")), person)

    @staticmethod
    def read_profile(profile: dict[str, Any], person: PersonQuery) -> Found:
        statuses = {
            str(k).lower(): str(v).lower()
            for k, v in as_dict(profile.get("work_email_status")).items()
        }
        emails: list[FoundEmail | None] = []
        for address in as_list(profile.get("work_email")):
            verified = statuses.get(str(address).lower()) == "verified"
            emails.append(
                make_email(
                    address,
                    confidence=0.9 if verified else 0.6,
                    verification=Verification.VERIFIED if verified else Verification.UNVERIFIED,
                    hint=EmailKind.PROFESSIONAL,
                    person=person,
                )
            )
        for address in as_list(profile.get("personal_email")):
            emails.append(
                make_email(address, confidence=0.6, hint=EmailKind.PERSONAL, person=person)
            )
        for address in as_list(profile.get("email")):
            emails.append(make_email(address, confidence=0.5, person=person))
        phones: list[FoundPhone | None] = [
            make_phone(n, confidence=0.65) for n in as_list(profile.get("phone"))
        ]
        return Found(emails=[e for e in emails if e], phones=[p for p in phones if p])
