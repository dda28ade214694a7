"""Forager: person contacts lookup by LinkedIn identifier (spec/providers.md, "Forager").

Requests (header ``X-API-KEY``, account id in the path, FORAGER_ACCOUNT_ID):
``POST /api/{account_id}/datastorage/person_contacts_lookup/work_emails/``, then
``.../personal_emails/`` (skipped where the region rule forbids personal emails) and
``.../phone_numbers/``, each with ``{linkedin_public_identifier}``; no match is ``[]``. Forager
takes the LinkedIn slug, not a name: without a LinkedIn URL the lookup is a miss.

Confidence, from Forager's ``validation_status``: ``valid`` 0.9, ``catch_all`` / ``accept_all``
/ ``risky`` 0.6, ``unknown`` or absent 0.5, ``invalid`` dropped. Phones carry no validity: 0.65.
"""

from __future__ import annotations

from typing import Any

from sourcing.common.models.enums import EnrichmentProvider as ProviderKey
from sourcing.common.outbound import sandbox_enabled
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
    phone_type,
    register_provider,
)
from sourcing.enrichment.settings import EnrichmentSettings
from sourcing.people.contacts import requires_professional_email

VALIDATION_CONFIDENCE = {
    "valid": 0.9,
    "catch_all": 0.6,
    "accept_all": 0.6,
    "risky": 0.6,
    "unknown": 0.5,
    "invalid": 0.0,
}
VALIDATION_VERIFICATION = {
    "valid": Verification.VERIFIED,
    "catch_all": Verification.CATCH_ALL,
    "accept_all": Verification.CATCH_ALL,
}
PHONE_CONFIDENCE = 0.65
SANDBOX_ACCOUNT_ID = "sandbox"


def forager_account_id(settings: EnrichmentSettings) -> str | None:
    if sandbox_enabled(settings):
        return SANDBOX_ACCOUNT_ID
    return settings.FORAGER_ACCOUNT_ID or None


@register_provider
class ForagerProvider(EnrichmentProvider):
    key = ProviderKey.FORAGER.value
    display_name = "Forager"

    @classmethod
    def is_available(cls, settings: EnrichmentSettings) -> bool:
        return super().is_available(settings) and forager_account_id(settings) is not None

    def _auth_headers(self) -> dict[str, str]:
        return {"X-API-KEY": self.api_key}

    def _path(self, lookup: str) -> str:
        return (
            f"/api/{forager_account_id(self.settings)}/datastorage/person_contacts_lookup/{lookup}/"
        )

    async def _fetch(self, person: PersonQuery, call: ProviderCall) -> Found:
        slug = person.linkedin_slug
        if not slug:
            return Found(status=ResultStatus.MISS, note="needs a LinkedIn URL")
        body = {"linkedin_public_identifier": slug}

        async def lookup(name: str) -> list[Any]:
            response = await self._request(call, name, "POST", self._path(name), json=body)
            return as_list(response.json())

        emails: list[FoundEmail | None] = [
            self.read_email(item, EmailKind.PROFESSIONAL, person)
            for item in await lookup("work_emails")
        ]
        if not requires_professional_email(person.country_iso):
            personal = await self._optional(
                call, "personal_emails", lambda: lookup("personal_emails")
            )
            emails.extend(
                self.read_email(item, EmailKind.PERSONAL, person) for item in personal or []
            )
        numbers = await self._optional(call, "phone_numbers", lambda: lookup("phone_numbers"))
        phones: list[FoundPhone | None] = [
            make_phone(
                as_dict(item).get("phone_number"),
                confidence=PHONE_CONFIDENCE,
                type_=phone_type(as_dict(item).get("phone_type")),
            )
            for item in numbers or []
        ]
        return Found(emails=[e for e in emails if e], phones=[p for p in phones if p])

    @staticmethod
    def read_email(item: Any, hint: EmailKind, person: PersonQuery) -> FoundEmail | None:
        entry = as_dict(item)
        status = str(entry.get("validation_status") or "unknown").lower()
        vendor_type = str(entry.get("email_type") or "").lower()
        if vendor_type in ("personal", "professional", "work"):
            hint = EmailKind.PERSONAL if vendor_type == "personal" else EmailKind.PROFESSIONAL
        return make_email(
            entry.get("email"),
            confidence=VALIDATION_CONFIDENCE.get(status, 0.5),
            verification=VALIDATION_VERIFICATION.get(status, Verification.UNVERIFIED),
            hint=hint,
            person=person,
        )
