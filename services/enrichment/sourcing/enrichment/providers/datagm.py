"""DataGM (Datagma): email finder and LinkedIn search (spec/providers.md, "DataGM").

Requests (``GET``, the key in the ``apiId`` query parameter; it never reaches a payload or an
error message): ``/v6/findEmail?apiId=&fullName=&company=<domain or name>&linkedInSlug=`` and,
with a LinkedIn URL, ``/v1/search?apiId=&username=<linkedin url>&minimumMatch=1`` for phones.
Datagma reports some errors in the body: ``code`` 5 is no match, ``code`` 13 is no credits (an
error, not retried).

Confidence, from Datagma's ``status``: ``Valid`` 0.9, ``MostProbable`` 0.6 (the ``email`` or
the first of ``mostProbableEmail[]``), ``NotFound`` none. Search: ``phones[].displayInternational``
0.65, ``emails[].address`` 0.5.
"""

from __future__ import annotations

from typing import Any

from sourcing.common.http import ProviderError
from sourcing.common.models.enums import EnrichmentProvider as ProviderKey
from sourcing.enrichment.providers.base import (
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

CODE_NOT_FOUND = 5
CODE_NO_CREDITS = 13


@register_provider
class DataGMProvider(EnrichmentProvider):
    key = ProviderKey.DATAGM.value
    display_name = "DataGM"

    def _auth_headers(self) -> dict[str, str]:
        return {}  # Datagma authenticates with the apiId query parameter

    def find_email_params(self, person: PersonQuery) -> dict[str, str] | None:
        company = person.domain or person.company_name
        if not company and not person.linkedin_slug:
            return None
        params = {"apiId": self.api_key, "fullName": person.full_name}
        if company:
            params["company"] = company
        if person.linkedin_slug:
            params["linkedInSlug"] = person.linkedin_slug
        return params

    def _check_body_error(self, answer: dict[str, Any], http_status: int) -> bool:
        """True when the body says "not found"; raises on the other body errors."""
        code = answer.get("code")
        if code is None or code == 0:
            return http_status == 404
        if code == CODE_NOT_FOUND:
            return True
        message = "no credits" if code == CODE_NO_CREDITS else str(answer.get("message") or answer)
        raise ProviderError(
            self.key,
            f"error code {code}: {message}",
            status=402 if code == CODE_NO_CREDITS else None,
        )

    async def _fetch(self, person: PersonQuery, call: ProviderCall) -> Found:
        params = self.find_email_params(person)
        if params is None:
            return Found(status=ResultStatus.MISS, note="needs a company or a LinkedIn URL")
        not_found = frozenset({404})
        response = await self._request(
            call, "findEmail", "GET", "/v6/findEmail", params=params, ok_statuses=not_found
        )
        answer = as_dict(response.json() if response.content else {})
        found = Found()
        if not self._check_body_error(answer, response.status_code):
            email = self.read_find_email(answer, person)
            if email:
                found.emails.append(email)
        if person.linkedin_url:
            search_params = {
                "apiId": self.api_key,
                "username": person.linkedin_url,
                "minimumMatch": "1",
            }

            async def search() -> tuple[list[FoundEmail], list[FoundPhone]]:
                result = await self._request(
                    call, "search", "GET", "/v1/search", params=search_params, ok_statuses=not_found
                )
                body = as_dict(result.json() if result.content else {})
                if self._check_body_error(body, result.status_code):
                    return [], []
                return self.read_search(body, person)

            # Phones are a bonus: a failed search keeps the email found above.
            searched = await self._optional(call, "search", search)
            if searched is not None:
                found.emails.extend(searched[0])
                found.phones.extend(searched[1])
        return found

    @staticmethod
    def read_find_email(answer: dict[str, Any], person: PersonQuery) -> FoundEmail | None:
        status = str(answer.get("status") or "").lower()
        if status == "valid":
            return make_email(
                answer.get("email"),
                confidence=0.9,
                verification=Verification.VERIFIED,
                person=person,
            )
        if status == "mostprobable":
            candidates = [answer.get("email"), *as_list(answer.get("mostProbableEmail"))]
            address = next((c for c in candidates if isinstance(c, str) and c), None)
            return make_email(address, confidence=0.6, person=person)
        return None

    @staticmethod
    def read_search(
        answer: dict[str, Any], person: PersonQuery
    ) -> tuple[list[FoundEmail], list[FoundPhone]]:
        found_person = as_dict(answer.get("person"))
        emails = [
            make_email(as_dict(item).get("address"), confidence=0.5, person=person)
            for item in as_list(found_person.get("emails"))
        ]
        phones = [
            make_phone(
                as_dict(item).get("displayInternational") or as_dict(item).get("number"),
                confidence=0.65,
                type_=phone_type(as_dict(item).get("type")),
            )
            for item in as_list(found_person.get("phones"))
        ]
        return [e for e in emails if e], [p for p in phones if p]
