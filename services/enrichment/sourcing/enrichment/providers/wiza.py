"""Wiza: asynchronous individual reveal (spec/providers.md, "Wiza").

Requests: ``POST /individual_reveals`` ``{individual_reveal:{profile_url} | {full_name,
company, domain} | {email}, enrichment_level:"full", email_options:{accept_work,
accept_personal}}`` with ``Authorization: Bearer <key>``, then ``GET /individual_reveals/{id}``
until ``data.is_complete`` (every ENRICHMENT_POLL_INTERVAL_SECONDS, at most
ENRICHMENT_POLL_MAX_ATTEMPTS times, within the time budget). Personal emails are not asked for
where the region rule would drop them anyway (saves credits). ``status`` ``failed`` is a miss.

Confidence, from Wiza's ``email_status``: ``valid`` 0.9, ``catch_all`` 0.6, ``risky`` /
``unknown`` / absent 0.45, ``invalid`` dropped. Phones: ``mobile_phone`` / type mobile 0.75,
other numbers 0.6 (Wiza gives no per-number validity).
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
    MalformedResponse,
    PersonQuery,
    PhoneType,
    PollingExhausted,
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
from sourcing.people.contacts import requires_professional_email

EMAIL_STATUS_CONFIDENCE = {
    "valid": 0.9,
    "catch_all": 0.6,
    "risky": 0.45,
    "unknown": 0.45,
    "invalid": 0.0,
}
EMAIL_STATUS_VERIFICATION = {"valid": Verification.VERIFIED, "catch_all": Verification.CATCH_ALL}
EMAIL_TYPE_KIND = {"work": EmailKind.PROFESSIONAL, "personal": EmailKind.PERSONAL}


@register_provider
class WizaProvider(EnrichmentProvider):
    key = ProviderKey.WIZA.value
    display_name = "Wiza"

    def reported_credits(self, raw: Mapping[str, Any]) -> float | None:
        """The finished reveal's ``credits``: a number, or the sum of its numeric counters
        (``{"email_credits": 1, "phone_credits": 1}``; nested breakdowns are not added)."""
        credits = as_dict(as_dict(raw.get("reveal")).get("data")).get("credits")
        if isinstance(credits, int | float) and not isinstance(credits, bool):
            return float(credits)
        counters = [
            float(value)
            for value in as_dict(credits).values()
            if isinstance(value, int | float) and not isinstance(value, bool)
        ]
        return sum(counters) if counters else None

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    @staticmethod
    def start_body(person: PersonQuery) -> dict[str, Any] | None:
        reveal: dict[str, Any]
        if person.linkedin_url:
            reveal = {"profile_url": person.linkedin_url}
        elif person.company_name or person.domain:
            reveal = {"full_name": person.full_name}
            if person.company_name:
                reveal["company"] = person.company_name
            if person.domain:
                reveal["domain"] = person.domain
        elif person.email:
            reveal = {"email": person.email}
        else:
            return None
        return {
            "individual_reveal": reveal,
            "enrichment_level": "full",
            "email_options": {
                "accept_work": True,
                "accept_personal": not requires_professional_email(person.country_iso),
            },
        }

    async def _fetch(self, person: PersonQuery, call: ProviderCall) -> Found:
        body = self.start_body(person)
        if body is None:
            return Found(
                status=ResultStatus.MISS, note="needs a LinkedIn URL, a company or an email"
            )
        started = await self._request(call, "start", "POST", "/individual_reveals", json=body)
        reveal_id = as_dict(as_dict(started.json()).get("data")).get("id")
        if reveal_id is None:
            raise MalformedResponse("individual reveal started without an id")
        for _ in range(self._max_polls):
            await self._poll_pause()
            answer = await self._request(call, "reveal", "GET", f"/individual_reveals/{reveal_id}")
            data = as_dict(as_dict(answer.json()).get("data"))
            status = str(data.get("status") or "").lower()
            if status == "failed":
                return Found(
                    status=ResultStatus.MISS, note=str(data.get("fail_error") or "") or None
                )
            if data.get("is_complete"):
                return self.read_reveal(data, person)
        raise PollingExhausted(f"reveal {reveal_id} not complete after {self._max_polls} polls")

    @staticmethod
    def read_reveal(data: dict[str, Any], person: PersonQuery) -> Found:
        emails: list[FoundEmail | None] = []
        entries = [as_dict(item) for item in as_list(data.get("emails"))]
        if not entries and data.get("email"):
            entries = [{"email": data.get("email"), "email_status": data.get("email_status")}]
        for entry in entries:
            status = str(entry.get("email_status") or "unknown").lower()
            emails.append(
                make_email(
                    entry.get("email"),
                    confidence=EMAIL_STATUS_CONFIDENCE.get(status, 0.45),
                    verification=EMAIL_STATUS_VERIFICATION.get(status, Verification.UNVERIFIED),
                    hint=EMAIL_TYPE_KIND.get(str(entry.get("email_type") or "").lower()),
                    person=person,
                )
            )
        phones: list[FoundPhone | None] = []
        for item in as_list(data.get("phones")):
            entry = as_dict(item)
            kind = phone_type(entry.get("type"))
            confidence = 0.75 if kind is PhoneType.MOBILE else 0.6
            phones.append(
                make_phone(
                    entry.get("number") or entry.get("pretty_number"),
                    confidence=confidence,
                    type_=kind,
                )
            )
        phones.append(make_phone(data.get("mobile_phone"), confidence=0.75, type_=PhoneType.MOBILE))
        phones.append(make_phone(data.get("phone_number"), confidence=0.6))
        return Found(emails=[e for e in emails if e], phones=[p for p in phones if p])
