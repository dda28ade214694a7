"""Prospeo: enrich-person (spec/providers.md, "Prospeo").

Request: ``POST /enrich-person`` ``{only_verified_email, enrich_mobile, data:{first_name,
last_name | full_name, linkedin_url, email, company_name, company_website}}``, header ``X-KEY``.
A person Prospeo cannot match comes back as 400 ``{error:true, error_code:"NO_MATCH"}``: a miss;
other 400 codes (invalid input, no credits) are errors.

Confidence, from Prospeo's own flags: email ``status`` ``VERIFIED`` 0.9, any other status 0.5
(unverified / catch-all); an email not ``revealed`` is masked and ignored. Mobile: ``VERIFIED``
0.8, otherwise 0.65 when revealed.
"""

from __future__ import annotations

from typing import Any

from sourcing.common.http import ProviderError
from sourcing.common.models.enums import EnrichmentProvider as ProviderKey
from sourcing.enrichment.providers.base import (
    EmailKind,
    EnrichmentProvider,
    Found,
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

NO_MATCH_CODES = frozenset({"NO_MATCH"})


@register_provider
class ProspeoProvider(EnrichmentProvider):
    key = ProviderKey.PROSPEO.value
    display_name = "Prospeo"

    def _auth_headers(self) -> dict[str, str]:
        return {"X-KEY": self.api_key}

    @staticmethod
    def request_body(person: PersonQuery) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if person.first_name and person.last_name:
            data["first_name"] = person.first_name
            data["last_name"] = person.last_name
        else:
            data["full_name"] = person.full_name
        for name, value in (
            ("linkedin_url", person.linkedin_url),
            ("email", person.email),
            ("company_name", person.company_name),
            ("company_website", person.domain),
        ):
            if value:
                data[name] = value
        # Unverified emails are still worth having (scored low); phones cost extra credits but
        # are contacts we use.
        return {"only_verified_email": False, "enrich_mobile": True, "data": data}

    async def _fetch(self, person: PersonQuery, call: ProviderCall) -> Found:
        if not (person.linkedin_url or person.email or person.company_name or person.domain):
            return Found(
                status=ResultStatus.MISS, note="needs a LinkedIn URL, an email or a company"
            )
        response = await self._request(
            call,
            "enrich-person",
            "POST",
            "/enrich-person",
            json=self.request_body(person),
            ok_statuses=frozenset({400}),
        )
        answer = as_dict(response.json())
        if answer.get("error"):
            code = str(answer.get("error_code") or "")
            if code in NO_MATCH_CODES:
                return Found(status=ResultStatus.MISS)
            raise ProviderError(
                self.key,
                f"HTTP {response.status_code}: {code or answer}",
                status=response.status_code,
            )
        return self.read_person(as_dict(answer.get("person")), person)

    @staticmethod
    def read_person(data: dict[str, Any], person: PersonQuery) -> Found:
        email = as_dict(data.get("email"))
        mobile = as_dict(data.get("mobile"))
        found = Found()
        if email.get("revealed", True):
            verified = str(email.get("status") or "").upper() == "VERIFIED"
            found_email = make_email(
                email.get("email"),
                confidence=0.9 if verified else 0.5,
                verification=Verification.VERIFIED if verified else Verification.UNVERIFIED,
                hint=EmailKind.PROFESSIONAL,  # Prospeo returns work emails
                person=person,
            )
            if found_email:
                found.emails.append(found_email)
        if mobile.get("revealed", True):
            verified = str(mobile.get("status") or "").upper() == "VERIFIED"
            number = mobile.get("mobile_international") or mobile.get("mobile")
            phone = make_phone(number, confidence=0.8 if verified else 0.65, type_=PhoneType.MOBILE)
            if phone:
                found.phones.append(phone)
        return found
