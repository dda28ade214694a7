"""Zeliq: asynchronous enrichment answered only by callback (spec/providers.md, "Zeliq").

Requests: ``POST /contact/enrich/email`` and ``POST /contact/enrich/phone`` with
``{linkedin_url, callbackUrl}`` or ``{first_name, last_name, company | domain, callbackUrl}``,
header ``x-api-key`` (no Bearer), each answered ``202 {jobId}``. Zeliq publishes no endpoint
to fetch a job's result, so we do not poll (and invent nothing):

* Without ZELIQ_CALLBACK_URL the adapter is **unavailable** (a lookup sends nothing).
* With it, a lookup submits both jobs and returns **miss** now, with the job ids in
  ``pending_job_ids``: the contacts arrive later at the callback, where
  :meth:`ZeliqProvider.read_callback` turns the body into contacts (the receiving endpoint and
  the late ExpertContact write are not part of this adapter).

Confidence of a callback, from ``most_probable_email_status``: ``valid``/``verified`` 0.9,
``catch_all``/``accept_all`` 0.6, anything else 0.45; a phone 0.65 (its field name is
unconfirmed: ``most_probable_phone``, ``phone`` or ``mobile_phone`` are read).
"""

from __future__ import annotations

from typing import Any

from sourcing.common.models.enums import EnrichmentProvider as ProviderKey
from sourcing.enrichment.providers.base import (
    EnrichmentProvider,
    Found,
    FoundEmail,
    FoundPhone,
    MalformedResponse,
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
from sourcing.enrichment.settings import EnrichmentSettings

STATUS_CONFIDENCE = {"valid": 0.9, "verified": 0.9, "catch_all": 0.6, "accept_all": 0.6}
STATUS_VERIFICATION = {
    "valid": Verification.VERIFIED,
    "verified": Verification.VERIFIED,
    "catch_all": Verification.CATCH_ALL,
    "accept_all": Verification.CATCH_ALL,
}


@register_provider
class ZeliqProvider(EnrichmentProvider):
    key = ProviderKey.ZELIQ.value
    display_name = "Zeliq"

    @classmethod
    def is_available(cls, settings: EnrichmentSettings) -> bool:
        return super().is_available(settings) and bool(settings.ZELIQ_CALLBACK_URL)

    def _auth_headers(self) -> dict[str, str]:
        return {"x-api-key": self.api_key}

    def request_body(self, person: PersonQuery) -> dict[str, Any] | None:
        callback = self.settings.ZELIQ_CALLBACK_URL
        if person.linkedin_url:
            return {"linkedin_url": person.linkedin_url, "callbackUrl": callback}
        first, last = person.given_name, person.family_name
        if first and last and (person.domain or person.company_name):
            body: dict[str, Any] = {"first_name": first, "last_name": last}
            if person.domain:
                body["domain"] = person.domain
            else:
                body["company"] = person.company_name
            body["callbackUrl"] = callback
            return body
        return None

    async def _fetch(self, person: PersonQuery, call: ProviderCall) -> Found:
        body = self.request_body(person)
        if body is None:
            return Found(
                status=ResultStatus.MISS, note="needs a LinkedIn URL, or a name and a company"
            )

        async def submit(kind: str) -> str:
            response = await self._request(call, kind, "POST", f"/contact/enrich/{kind}", json=body)
            job_id = as_dict(response.json()).get("jobId")
            if job_id is None:
                raise MalformedResponse(f"enrich/{kind} accepted without a jobId")
            return str(job_id)

        job_ids = [await submit("email")]
        # The email job is already paid for: a failed phone submission must not lose it.
        phone_job = await self._optional(call, "phone", lambda: submit("phone"))
        if phone_job is not None:
            job_ids.append(phone_job)
        return Found(
            status=ResultStatus.MISS,
            note="accepted: Zeliq delivers the result to the callback URL",
            pending_job_ids=job_ids,
        )

    @staticmethod
    def read_callback(
        body: Any, person: PersonQuery | None = None
    ) -> tuple[list[FoundEmail], list[FoundPhone]]:
        """Contacts from a Zeliq callback body ``{contact:{most_probable_email, ...}}``."""
        contact = as_dict(as_dict(body).get("contact"))
        status = str(contact.get("most_probable_email_status") or "").lower()
        email = make_email(
            contact.get("most_probable_email"),
            confidence=STATUS_CONFIDENCE.get(status, 0.45),
            verification=STATUS_VERIFICATION.get(status, Verification.UNVERIFIED),
            person=person,
        )
        number = next(
            (
                contact[name]
                for name in ("most_probable_phone", "phone", "mobile_phone")
                if contact.get(name)
            ),
            None,
        )
        phone = make_phone(number, confidence=0.65, type_=PhoneType.MOBILE)
        return ([email] if email else [], [phone] if phone else [])
