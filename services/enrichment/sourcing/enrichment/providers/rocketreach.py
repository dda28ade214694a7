"""RocketReach: asynchronous person lookup (spec/providers.md, "RocketReach").

Requests: ``GET /person/lookup`` with ``linkedin_url`` (preferred), else ``name`` and
``current_employer``, else ``email``; header ``Api-Key``. The lookup answers at once with the
profile's ``status``; until it is ``complete`` we poll ``GET /person/checkStatus?ids=<id>``
(every ENRICHMENT_POLL_INTERVAL_SECONDS, at most ENRICHMENT_POLL_MAX_ATTEMPTS times, within the
time budget). ``failed`` and 404 mean no match.

Confidence per email, from RocketReach's ``grade`` and ``smtp_valid``: grade A 0.95, A- 0.9,
B 0.8, B- 0.75, C 0.6, D 0.4, F dropped; no grade: 0.9 when ``smtp_valid`` is ``valid``.
``accept-all`` caps the email at 0.6 (catch-all domain), ``unknown`` at 0.5, ``invalid`` drops
it. When ``emails[]`` is empty the ``recommended_*`` / ``current_work_email`` fields count 0.6.
Phones: ``validity`` ``invalid`` dropped, ``recommended`` 0.75, others 0.6.
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
    MalformedResponse,
    PersonQuery,
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

GRADE_CONFIDENCE = {"A": 0.95, "A-": 0.9, "B": 0.8, "B-": 0.75, "C": 0.6, "D": 0.4, "F": 0.0}
SMTP_CAP = {"valid": 1.0, "accept-all": 0.6, "unknown": 0.5, "invalid": 0.0}
PENDING_STATUSES = frozenset({"progress", "searching", "waiting", "queued"})


@register_provider
class RocketReachProvider(EnrichmentProvider):
    key = ProviderKey.ROCKETREACH.value
    display_name = "RocketReach"

    def _auth_headers(self) -> dict[str, str]:
        return {"Api-Key": self.api_key}

    @staticmethod
    def lookup_params(person: PersonQuery) -> dict[str, str] | None:
        if person.linkedin_url:
            return {"linkedin_url": person.linkedin_url}
        employer = person.company_name or person.domain
        if employer:
            return {"name": person.full_name, "current_employer": employer}
        if person.email:
            return {"email": person.email}
        return None

    async def _fetch(self, person: PersonQuery, call: ProviderCall) -> Found:
        params = self.lookup_params(person)
        if params is None:
            return Found(
                status=ResultStatus.MISS, note="needs a LinkedIn URL, an employer or an email"
            )
        response = await self._request(
            call, "lookup", "GET", "/person/lookup", params=params, ok_statuses=frozenset({404})
        )
        if response.status_code == 404:
            return Found(status=ResultStatus.MISS)
        profile = as_dict(response.json())
        polls = 0
        while str(profile.get("status") or "").lower() in PENDING_STATUSES:
            if polls >= self._max_polls:
                raise PollingExhausted(
                    f"lookup {profile.get('id')} still pending after {polls} polls"
                )
            profile_id = profile.get("id")
            if profile_id is None:
                raise MalformedResponse("pending lookup without an id")
            await self._poll_pause()
            polls += 1
            answer = await self._request(
                call, "checkStatus", "GET", "/person/checkStatus", params={"ids": str(profile_id)}
            )
            profile = self.pick_profile(answer.json(), profile_id)
        call.raw["polls"] = polls
        status = str(profile.get("status") or "").lower()
        if status == "failed":
            return Found(status=ResultStatus.MISS)
        if status not in ("complete", ""):  # older answers carry no status once complete
            raise MalformedResponse(f"unexpected lookup status {status!r}")
        return self.read_profile(profile, person)

    @staticmethod
    def pick_profile(answer: Any, profile_id: Any) -> dict[str, Any]:
        """checkStatus answers a list of profiles (some integrations see `{profiles: [...]}`)."""
        profiles = as_list(answer) or as_list(as_dict(answer).get("profiles"))
        for item in profiles:
            if str(as_dict(item).get("id")) == str(profile_id):
                return as_dict(item)
        if isinstance(answer, dict) and str(answer.get("id")) == str(profile_id):
            return answer
        raise MalformedResponse(f"checkStatus did not return profile {profile_id}")

    @staticmethod
    def read_profile(profile: dict[str, Any], person: PersonQuery) -> Found:
        emails: list[FoundEmail | None] = []
        for item in as_list(profile.get("emails")):
            entry = as_dict(item)
            smtp = str(entry.get("smtp_valid") or "unknown").lower()
            grade = str(entry.get("grade") or "").upper()
            base = GRADE_CONFIDENCE.get(grade, 0.9 if smtp == "valid" else 0.5)
            confidence = min(base, SMTP_CAP.get(smtp, 0.5))
            verification = {
                "valid": Verification.VERIFIED,
                "accept-all": Verification.CATCH_ALL,
            }.get(smtp, Verification.UNVERIFIED)
            kind = str(entry.get("type") or "").lower()
            emails.append(
                make_email(
                    entry.get("email"),
                    confidence=confidence,
                    verification=verification,
                    hint=EmailKind(kind) if kind in ("professional", "personal") else None,
                    person=person,
                )
            )
        if not any(emails):
            for name, kind_hint in (
                ("recommended_professional_email", EmailKind.PROFESSIONAL),
                ("current_work_email", EmailKind.PROFESSIONAL),
                ("recommended_personal_email", EmailKind.PERSONAL),
                ("recommended_email", None),
            ):
                emails.append(
                    make_email(profile.get(name), confidence=0.6, hint=kind_hint, person=person)
                )
        phones: list[FoundPhone | None] = []
        for item in as_list(profile.get("phones")):
            entry = as_dict(item)
            if str(entry.get("validity") or "").lower() == "invalid":
                continue
            phones.append(
                make_phone(
                    entry.get("e164") or entry.get("number"),
                    confidence=0.75 if entry.get("recommended") else 0.6,
                    type_=phone_type(entry.get("type")),
                )
            )
        return Found(emails=[e for e in emails if e], phones=[p for p in phones if p])
