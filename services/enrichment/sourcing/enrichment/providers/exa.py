"""Exa: people search; contacts extracted from the pages' text (spec/providers.md, "Exa").

Request: ``POST /search`` ``{query, type:"auto", category:"people", numResults,
contents:{text:true}}``, header ``x-api-key``. Exa has no email or phone fields, so addresses
and international phone numbers are read out of ``text``, ``highlights`` and ``summary``.

Confidence is low by nature and never reaches the waterfall's threshold on its own:
an email at the company's domain 0.4, any other address 0.25, each plus 0.1 when its local part
contains the person's last name (so at most 0.5); a phone number in international form 0.2.
Role mailboxes (info@, sales@, ...) are ignored.
"""

from __future__ import annotations

import re
from typing import Any

from sourcing.common.models.enums import EnrichmentProvider as ProviderKey
from sourcing.enrichment.providers.base import (
    EnrichmentProvider,
    Found,
    FoundEmail,
    FoundPhone,
    PersonQuery,
    ProviderCall,
    as_dict,
    as_list,
    make_email,
    make_phone,
    register_provider,
)
from sourcing.people.contacts import email_domain

NUM_RESULTS = 5
_EMAIL_IN_TEXT = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Only numbers written internationally: a bare national number has no country to dial.
_PHONE_IN_TEXT = re.compile(r"\+[1-9][\d\s().-]{6,18}\d")
ROLE_MAILBOXES = frozenset(
    {
        "info", "contact", "support", "hello", "sales", "press", "media", "noreply",
        "no-reply", "admin", "team", "office", "help", "jobs", "careers", "privacy", "hr",
        "marketing", "billing", "webmaster", "legal", "security", "abuse", "postmaster",
    }
)  # fmt: skip


@register_provider
class ExaProvider(EnrichmentProvider):
    key = ProviderKey.EXA.value
    display_name = "Exa"

    def _auth_headers(self) -> dict[str, str]:
        return {"x-api-key": self.api_key}

    @staticmethod
    def request_body(person: PersonQuery) -> dict[str, Any]:
        # The name in quotes keeps the search on this exact person.
        parts = [f'"{person.full_name}"', person.company_name or person.domain or "", "email"]
        return {
            "query": " ".join(part for part in parts if part),
            "type": "auto",
            "category": "people",
            "numResults": NUM_RESULTS,
            "contents": {"text": True},
        }

    async def _fetch(self, person: PersonQuery, call: ProviderCall) -> Found:
        response = await self._request(
            call, "search", "POST", "/search", json=self.request_body(person)
        )
        texts: list[str] = []
        for result in as_list(as_dict(response.json()).get("results")):
            item = as_dict(result)
            texts.extend(str(item[name]) for name in ("text", "summary") if item.get(name))
            texts.extend(str(h) for h in as_list(item.get("highlights")))
        return self.extract(texts, person)

    @staticmethod
    def extract(texts: list[str], person: PersonQuery) -> Found:
        emails: list[FoundEmail] = []
        phones: list[FoundPhone] = []
        last_name = (person.family_name or "").lower()
        for text in texts:
            for address in _EMAIL_IN_TEXT.findall(text):
                local = address.split("@", 1)[0].lower()
                if local in ROLE_MAILBOXES:
                    continue
                at_company = person.domain is not None and email_domain(address) == person.domain
                confidence = 0.4 if at_company else 0.25
                if last_name and last_name in local:
                    confidence += 0.1
                email = make_email(address, confidence=confidence, person=person)
                if email:
                    emails.append(email)
            for number in _PHONE_IN_TEXT.findall(text):
                phone = make_phone(number, confidence=0.2)
                if phone and phone.e164:
                    phones.append(phone)
        return Found(emails=emails, phones=phones)
