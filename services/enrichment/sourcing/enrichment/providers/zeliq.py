"""Zeliq: asynchronous enrichment answered only by callback (spec/providers.md, "Zeliq").

Requests: ``POST /contact/enrich/email`` and ``POST /contact/enrich/phone`` with
``{linkedin_url, callbackUrl}`` or ``{first_name, last_name, company | domain, callbackUrl}``,
header ``x-api-key`` (no Bearer), each answered ``202 {jobId}``. Zeliq publishes no endpoint
to fetch a job's result, so we do not poll (and invent nothing):

* Without ZELIQ_CALLBACK_URL or ZELIQ_CALLBACK_SECRET the adapter is **unavailable** (a lookup
  sends nothing).
* With them, a lookup draws a request id, submits both jobs, each with its own signed callback
  URL (:func:`sourcing.common.callbacks.signed_callback_url`:
  ``<ZELIQ_CALLBACK_URL>/<requestId>/<email|phone>?signature=...``), and returns **pending**
  with the request id and the job ids: the attempt waits for the callbacks (received by the
  gateway's ``POST /webhooks/zeliq/{requestId}/{kind}``), where :meth:`ZeliqProvider.read_callback`
  turns the bodies into contacts, or for ZELIQ_CALLBACK_TIMEOUT_SECONDS.

Confidence of a callback, from ``most_probable_email_status``: ``valid``/``verified`` 0.9,
``catch_all``/``accept_all`` 0.6, anything else 0.45; a phone 0.65 (its field name is
unconfirmed: ``most_probable_phone``, ``phone`` or ``mobile_phone`` are read).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sourcing.common.callbacks import signed_callback_url
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
    ProviderResult,
    ResultStatus,
    Verification,
    as_dict,
    best_confidence,
    dedupe_emails,
    dedupe_phones,
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
        return (
            super().is_available(settings)
            and bool(settings.ZELIQ_CALLBACK_URL)
            and settings.ZELIQ_CALLBACK_SECRET is not None
        )

    def _auth_headers(self) -> dict[str, str]:
        return {"x-api-key": self.api_key}

    def callback_url(self, request_id: uuid.UUID, kind: str) -> str:
        """The signed URL Zeliq posts the ``kind`` job's result to."""
        base, secret = self.settings.ZELIQ_CALLBACK_URL, self.settings.ZELIQ_CALLBACK_SECRET
        if not base or secret is None:
            raise RuntimeError("Zeliq has no callback URL or secret configured")
        return signed_callback_url(base, request_id, kind, secret=secret.get_secret_value())

    @staticmethod
    def request_body(person: PersonQuery) -> dict[str, Any] | None:
        """Who to enrich, without the callback URL (None: not enough to go on)."""
        if person.linkedin_url:
            return {"linkedin_url": person.linkedin_url}
        first, last = person.given_name, person.family_name
        if first and last and (person.domain or person.company_name):
            body: dict[str, Any] = {"first_name": first, "last_name": last}
            if person.domain:
                body["domain"] = person.domain
            else:
                body["company"] = person.company_name
            return body
        return None

    async def _fetch(self, person: PersonQuery, call: ProviderCall) -> Found:
        body = self.request_body(person)
        if body is None:
            return Found(
                status=ResultStatus.MISS, note="needs a LinkedIn URL, or a name and a company"
            )
        request_id = uuid.uuid4()

        async def submit(kind: str) -> str:
            job = {**body, "callbackUrl": self.callback_url(request_id, kind)}
            response = await self._request(call, kind, "POST", f"/contact/enrich/{kind}", json=job)
            job_id = as_dict(response.json()).get("jobId")
            if job_id is None:
                raise MalformedResponse(f"enrich/{kind} accepted without a jobId")
            return str(job_id)

        jobs = {"email": await submit("email")}
        # The email job is already paid for: a failed phone submission must not lose it.
        phone_job = await self._optional(call, "phone", lambda: submit("phone"))
        if phone_job is not None:
            jobs["phone"] = phone_job
        return Found(
            status=ResultStatus.PENDING,
            note="accepted: Zeliq delivers the result to the callback URL",
            callback_request_id=request_id,
            callback_jobs=jobs,
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

    def callback_result(
        self,
        bodies: Iterable[Any],
        person: PersonQuery | None,
        *,
        answered_all: bool,
        latency_ms: int,
    ) -> ProviderResult:
        """The attempt's result from the callbacks received so far (region rule not applied):
        a hit with their contacts; else a miss when every job answered, a timeout when not."""
        emails: list[FoundEmail] = []
        phones: list[FoundPhone] = []
        for body in bodies:
            found_emails, found_phones = self.read_callback(body, person)
            emails += found_emails
            phones += found_phones
        emails, phones = dedupe_emails(emails), dedupe_phones(phones)
        if emails or phones:
            status = ResultStatus.HIT
        else:
            status = ResultStatus.MISS if answered_all else ResultStatus.TIMEOUT
        return ProviderResult(
            provider=self.key,
            status=status,
            emails=emails,
            phones=phones,
            confidence=best_confidence(emails, phones),
            latency_ms=latency_ms,
            error=None if answered_all else "no callback within ZELIQ_CALLBACK_TIMEOUT_SECONDS",
            transient=not answered_all,
        )
