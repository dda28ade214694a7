"""The enrichment provider capability: one base class, one adapter per vendor (manual §9).

An adapter turns a :class:`PersonQuery` into the vendor's real request (spec/providers.md),
sends it through the shared :class:`~sourcing.common.http.ExternalHttp` (timeout, bounded retry,
metrics) and reads the vendor's own quality signals into a :class:`ProviderResult` with a
confidence in 0..1. :meth:`EnrichmentProvider.lookup` never raises for provider trouble: every
outcome (hit, miss, error, timeout, rate limit, not configured) is a result the waterfall can
record as an EnrichmentAttempt row.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, TypeVar
from urllib.parse import unquote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sourcing.common.http import ExternalHttp, ProviderError
from sourcing.common.models.enums import EnrichmentProvider as ProviderKey
from sourcing.common.outbound import (
    provider_api_key,
    provider_base_url,
)
from sourcing.enrichment.settings import EnrichmentSettings
from sourcing.people.contacts import (
    email_domain,
    filter_emails_for_region,
    is_personal_email,
    normalize_country,
)
from sourcing.people.phones import to_e164

T = TypeVar("T")


class ResultStatus(StrEnum):
    HIT = "hit"  # contact data returned (its confidence says how good)
    MISS = "miss"  # the vendor knows no contact for this person (or lacked the input it needs)
    ERROR = "error"  # the vendor failed: 5xx (transient) or 4xx such as 401/402/403 (not)
    TIMEOUT = "timeout"  # no answer within the timeout / time budget / polling limit
    RATE_LIMITED = "rate_limited"  # 429 after the bounded retries
    UNAVAILABLE = "unavailable"  # not configured (no credential), nothing was sent
    PENDING = "pending"  # accepted: the answer comes later by callback (Zeliq)


class EmailKind(StrEnum):
    PROFESSIONAL = "professional"
    PERSONAL = "personal"
    UNKNOWN = "unknown"


class Verification(StrEnum):
    VERIFIED = "verified"  # the vendor verified the mailbox (SMTP or equivalent)
    CATCH_ALL = "catch_all"  # the domain accepts every address: deliverable, person unproven
    UNVERIFIED = "unverified"  # pattern guess or no verification signal


class PhoneType(StrEnum):
    MOBILE = "mobile"
    WORK = "work"
    OTHER = "other"


class PersonQuery(BaseModel):
    """What we know about the person to enrich (from the Lead / Expert)."""

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    full_name: str
    first_name: str | None = None
    last_name: str | None = None
    company_name: str | None = None
    company_domain: str | None = None
    linkedin_url: str | None = None
    email: str | None = None
    country_iso: str | None = None

    @property
    def given_name(self) -> str | None:
        """First name, else the first word of the full name."""
        if self.first_name:
            return self.first_name
        parts = self.full_name.split()
        return parts[0] if parts else None

    @property
    def family_name(self) -> str | None:
        """Last name, else the last word of a full name with at least two words."""
        if self.last_name:
            return self.last_name
        parts = self.full_name.split()
        return parts[-1] if len(parts) >= 2 else None

    @property
    def domain(self) -> str | None:
        """The company domain without scheme, `www.` or path (`https://www.x.com/` -> x.com)."""
        return normalize_domain(self.company_domain)

    @property
    def linkedin_slug(self) -> str | None:
        """The public identifier of a LinkedIn profile URL (`/in/<slug>`)."""
        return linkedin_slug(self.linkedin_url)

    @property
    def country(self) -> str | None:
        return normalize_country(self.country_iso)


class FoundEmail(BaseModel):
    model_config = ConfigDict(frozen=True)

    address: str
    kind: EmailKind = EmailKind.UNKNOWN
    verification: Verification = Verification.UNVERIFIED
    confidence: float = Field(ge=0.0, le=1.0)


class FoundPhone(BaseModel):
    model_config = ConfigDict(frozen=True)

    number: str  # as the vendor wrote it
    e164: str | None = None  # "+<digits>" when the vendor gave an international number
    type: PhoneType = PhoneType.OTHER
    confidence: float = Field(ge=0.0, le=1.0)


class ProviderResult(BaseModel):
    """One provider call, shaped for an EnrichmentAttempt row (no secrets in it)."""

    provider: str
    status: ResultStatus
    emails: list[FoundEmail] = Field(default_factory=list)
    phones: list[FoundPhone] = Field(default_factory=list)
    # The best contact's confidence (None when nothing was found).
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    # The vendor's JSON answers keyed by call ("email-finder", "checkStatus", ...).
    raw: dict[str, Any] | None = None
    http_status: int | None = None
    latency_ms: int = 0
    error: str | None = None
    # For errors: would the same call succeed later (5xx, 429, timeouts)?
    transient: bool = False
    # Asynchronous vendors answering by callback (Zeliq): our request id in the callback URL
    # and the vendor's job id per callback kind ({"email": jobId, "phone": jobId}).
    callback_request_id: uuid.UUID | None = None
    callback_jobs: dict[str, str] = Field(default_factory=dict)
    # Emails removed by :meth:`for_region` (kept for the attempt's payload and diagnostics).
    filtered_emails: list[FoundEmail] = Field(default_factory=list)
    # What the lookup cost (:meth:`EnrichmentProvider.credits_spent`).
    credits: float = Field(default=0.0, ge=0.0)
    # A 429's ``Retry-After`` in seconds: no request to this provider before it elapses.
    retry_after: float | None = None

    @property
    def has_contacts(self) -> bool:
        return bool(self.emails or self.phones)

    def for_region(self, country_iso: str | None) -> ProviderResult:
        """A copy without the emails the region rule forbids (personal emails in CA, AU and
        Europe), its confidence recomputed from what is left. The status is kept: a HIT whose
        contacts were all filtered has ``has_contacts`` False (an attempt status FILTERED)."""
        kept = filter_emails_for_region(
            self.emails,
            country_iso,
            address_of=lambda email: email.address,
            labelled_personal=lambda email: email.kind is EmailKind.PERSONAL,
        )
        removed = [email for email in self.emails if email not in kept]
        return self.model_copy(
            update={
                "emails": kept,
                "filtered_emails": [*self.filtered_emails, *removed],
                "confidence": best_confidence(kept, self.phones),
            }
        )


def best_confidence(emails: Iterable[FoundEmail], phones: Iterable[FoundPhone]) -> float | None:
    scores = [email.confidence for email in emails] + [phone.confidence for phone in phones]
    return max(scores) if scores else None


# --- normalisation helpers shared by the adapters -------------------------------------------

_LINKEDIN_SLUG = re.compile(r"linkedin\.com/(?:in|pub)/([^/?#\s]+)", re.IGNORECASE)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def linkedin_slug(url: str | None) -> str | None:
    if not url:
        return None
    match = _LINKEDIN_SLUG.search(url)
    return unquote(match.group(1)).strip().lower() if match else None


def normalize_domain(value: str | None) -> str | None:
    if not value:
        return None
    domain = value.strip().lower()
    domain = re.sub(r"^[a-z][a-z0-9+.-]*://", "", domain)
    domain = domain.split("/", 1)[0].split("?", 1)[0].split(":", 1)[0]
    domain = domain.removeprefix("www.").strip(".")
    return domain or None


def email_kind(
    address: str, *, hint: EmailKind | None = None, company_domain: str | None = None
) -> EmailKind:
    """Personal when the domain is a personal mailbox provider (whatever the vendor said), else
    the vendor's label, else professional when at the company's domain, else unknown."""
    if is_personal_email(address):
        return EmailKind.PERSONAL
    if hint is not None and hint is not EmailKind.UNKNOWN:
        return hint
    domain = email_domain(address)
    company = normalize_domain(company_domain)
    if domain and company and (domain == company or domain.endswith("." + company)):
        return EmailKind.PROFESSIONAL
    return EmailKind.UNKNOWN


def make_email(
    address: Any,
    *,
    confidence: float,
    verification: Verification = Verification.UNVERIFIED,
    hint: EmailKind | None = None,
    person: PersonQuery | None = None,
) -> FoundEmail | None:
    """A FoundEmail from a vendor value, or None when it is not an address (masked, bool...)."""
    if not isinstance(address, str):
        return None
    cleaned = address.strip().lower()
    if not _EMAIL.match(cleaned) or confidence <= 0:
        return None
    return FoundEmail(
        address=cleaned,
        kind=email_kind(cleaned, hint=hint, company_domain=person.domain if person else None),
        verification=verification,
        confidence=round(min(confidence, 1.0), 3),
    )


def make_phone(
    number: Any, *, confidence: float, type_: PhoneType = PhoneType.OTHER
) -> FoundPhone | None:
    if not isinstance(number, str) or not number.strip() or confidence <= 0:
        return None
    digits = re.sub(r"\D", "", number)
    if len(digits) < 7:
        return None
    return FoundPhone(
        number=number.strip(),
        e164=to_e164(number),
        type=type_,
        confidence=round(min(confidence, 1.0), 3),
    )


def phone_type(value: Any) -> PhoneType:
    text = str(value or "").lower()
    if any(word in text for word in ("mobile", "cell")):
        return PhoneType.MOBILE
    if any(word in text for word in ("work", "professional", "office", "direct", "hq", "land")):
        return PhoneType.WORK
    return PhoneType.OTHER


def dedupe_emails(emails: Iterable[FoundEmail | None]) -> list[FoundEmail]:
    """One entry per address, the most confident one, in first-seen order."""
    best: dict[str, FoundEmail] = {}
    for email in emails:
        if email is None:
            continue
        current = best.get(email.address)
        if current is None or email.confidence > current.confidence:
            best[email.address] = email
    return list(best.values())


def dedupe_phones(phones: Iterable[FoundPhone | None]) -> list[FoundPhone]:
    best: dict[str, FoundPhone] = {}
    for phone in phones:
        if phone is None:
            continue
        key = phone.e164 or re.sub(r"\D", "", phone.number)
        current = best.get(key)
        if current is None or phone.confidence > current.confidence:
            best[key] = phone
    return list(best.values())


def as_dict(value: Any) -> dict[str, Any]:
    """The value when it is a JSON object, else an empty one (vendors send null for absent)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# --- the capability ----------------------------------------------------------------------------


@dataclass(slots=True)
class Found:
    """What an adapter's `_fetch` returns; the base class turns it into a ProviderResult."""

    emails: list[FoundEmail] = field(default_factory=list)
    phones: list[FoundPhone] = field(default_factory=list)
    # Override the status derived from the contacts (e.g. MISS for "not enough input").
    status: ResultStatus | None = None
    note: str | None = None
    callback_request_id: uuid.UUID | None = None
    callback_jobs: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class ProviderCall:
    """One provider lookup's vendor answers and HTTP status, for the attempt's payload
    (not the :class:`sourcing.common.models.CallLog` of a phone call)."""

    raw: dict[str, Any] = field(default_factory=dict)
    http_status: int | None = None


class PollingExhausted(Exception):
    """An asynchronous vendor did not finish within the polling limit."""


class MalformedResponse(Exception):
    """The vendor answered 2xx with something that is not the documented shape."""


_HTTP_STATUS_IN_MESSAGE = re.compile(r"\bHTTP (\d{3})\b")


def classify_provider_error(exc: ProviderError) -> tuple[ResultStatus, int | None, bool]:
    """(status, http status, transient) for a ProviderError from ExternalHttp.

    ExternalHttp sets ``status`` only for non-retryable answers; when retries ran out it says
    why in the message ("... (HTTP 429)", "... (timeout: ReadTimeout)").
    """
    message = str(exc)
    status = exc.status
    if status is None and (match := _HTTP_STATUS_IN_MESSAGE.search(message)):
        status = int(match.group(1))
    if status == 429:
        return ResultStatus.RATE_LIMITED, status, True
    if status == 408 or (status is None and "timeout" in message.lower()):
        return ResultStatus.TIMEOUT, status, True
    return ResultStatus.ERROR, status, exc.transient


class EnrichmentProvider(ABC):
    """Base class of the enrichment adapters (Dispatch-style plugin: one per vendor, by key).

    Subclasses set `key` (an :class:`~sourcing.common.models.enums.EnrichmentProvider` value),
    implement `_auth_headers` and `_fetch`, and document how they derive confidence from the
    vendor's own signals.
    """

    key: ClassVar[str]
    display_name: ClassVar[str]
    # The vendor does not charge a lookup that finds nothing (spec/providers.md).
    misses_free: ClassVar[bool] = False

    def __init__(self, *, settings: EnrichmentSettings, http: ExternalHttp) -> None:
        self.settings = settings
        self.http = http
        self.base_url = provider_base_url(settings, self.key)
        self._api_key = provider_api_key(settings, self.key)

    # -- configuration --

    @classmethod
    def is_available(cls, settings: EnrichmentSettings) -> bool:
        """True when the provider's credential (and anything else it needs) is configured."""
        return provider_api_key(settings, cls.key) is not None

    @property
    def available(self) -> bool:
        return self.is_available(self.settings)

    @property
    def credits_per_lookup(self) -> float:
        return declared_credits(self.settings, self.key)

    @property
    def rate_limit_per_minute(self) -> float | None:
        return rate_limit_per_minute(self.settings, self.key)

    def reported_credits(self, raw: Mapping[str, Any]) -> float | None:
        """The credits the vendor says the lookup consumed, when its answer says so
        (adapters override; ``raw`` is the vendor's answers by call label)."""
        return None

    def credits_spent(self, raw: Mapping[str, Any], status: ResultStatus) -> float:
        """What a lookup cost: as reported by the vendor, else the declared cost for an answer
        (a hit, a callback placed, a miss unless :attr:`misses_free`); a failed or unsent
        request costs nothing."""
        reported = self.reported_credits(raw)
        if reported is not None:
            return max(reported, 0.0)
        if status in (ResultStatus.HIT, ResultStatus.PENDING):
            return self.credits_per_lookup
        if status is ResultStatus.MISS and not self.misses_free:
            return self.credits_per_lookup
        return 0.0

    @property
    def api_key(self) -> str:
        if self._api_key is None:
            raise RuntimeError(f"{self.key} has no credential configured")
        return self._api_key

    @abstractmethod
    def _auth_headers(self) -> dict[str, str]:
        """The vendor's authentication headers (empty when it authenticates in the query)."""

    # -- the lookup --

    async def lookup(
        self, person: PersonQuery, *, budget_seconds: float | None = None
    ) -> ProviderResult:
        """Ask the vendor for this person's contacts; every failure becomes a result.

        `budget_seconds` bounds the whole lookup, retries and polling included (default
        ``ENRICHMENT_TIME_BUDGET_SECONDS``); the waterfall passes what remains of its own.
        """
        if not self.available:
            return ProviderResult(
                provider=self.key,
                status=ResultStatus.UNAVAILABLE,
                error=f"{self.display_name} is not configured",
            )
        budget = budget_seconds if budget_seconds is not None else self._default_budget()
        call = ProviderCall()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(max(budget, 0.0)):
                found = await self._fetch(person, call)
        except TimeoutError:
            return self._failure(
                call, started, ResultStatus.TIMEOUT, f"no answer within {budget:g} s", True
            )
        except PollingExhausted as exc:
            return self._failure(call, started, ResultStatus.TIMEOUT, str(exc), True)
        except ProviderError as exc:
            status, http_status, transient = classify_provider_error(exc)
            if http_status is not None:
                call.http_status = http_status
            failure = self._failure(call, started, status, str(exc), transient)
            return failure.model_copy(update={"retry_after": exc.retry_after})
        except httpx.HTTPError as exc:  # e.g. an invalid URL: configuration, not the vendor
            return self._failure(call, started, ResultStatus.ERROR, repr(exc), False)
        except (MalformedResponse, ValidationError, ValueError, KeyError, TypeError) as exc:
            message = f"malformed response: {type(exc).__name__}: {exc}"
            return self._failure(call, started, ResultStatus.ERROR, message, False)
        emails = dedupe_emails(found.emails)
        phones = dedupe_phones(found.phones)
        status = found.status or (ResultStatus.HIT if emails or phones else ResultStatus.MISS)
        return ProviderResult(
            provider=self.key,
            status=status,
            emails=emails,
            phones=phones,
            confidence=best_confidence(emails, phones),
            raw=call.raw or None,
            http_status=call.http_status,
            latency_ms=_elapsed_ms(started),
            error=self._scrub(found.note) if found.note else None,
            callback_request_id=found.callback_request_id,
            callback_jobs=found.callback_jobs,
            credits=self.credits_spent(call.raw, status),
        )

    def callback_result(
        self,
        bodies: Iterable[Any],
        person: PersonQuery | None,
        *,
        answered_all: bool,
        latency_ms: int,
    ) -> ProviderResult:
        """A PENDING attempt's result from the callbacks received (providers answering by
        callback override this; ``answered_all`` False: the rest timed out)."""
        raise NotImplementedError(f"{self.display_name} does not answer by callback")

    @abstractmethod
    async def _fetch(self, person: PersonQuery, call: ProviderCall) -> Found:
        """Send the vendor's requests (through :meth:`_request`) and read its answer."""

    # -- helpers for adapters --

    async def _request(
        self,
        call: ProviderCall,
        label: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        ok_statuses: frozenset[int] = frozenset(),
    ) -> httpx.Response:
        """One vendor request via ExternalHttp; its JSON answer is kept under `label`."""
        response = await self.http.request(
            self.key,
            method,
            f"{self.base_url}{path}",
            headers=self._auth_headers(),
            json=json,
            params=params,
            ok_statuses=ok_statuses,
        )
        call.http_status = response.status_code
        call.raw[label] = _body(response)
        return response

    async def _optional(
        self, call: ProviderCall, label: str, fetch: Callable[[], Awaitable[T]]
    ) -> T | None:
        """A secondary call (e.g. a phone lookup after an email hit): its failure is recorded
        in the payload and does not lose what the primary call found."""
        try:
            return await fetch()
        except ProviderError as exc:
            call.raw[f"{label}:error"] = self._scrub(str(exc))
            return None

    async def _poll_pause(self) -> None:
        await asyncio.sleep(self.settings.ENRICHMENT_POLL_INTERVAL_SECONDS)

    @property
    def _max_polls(self) -> int:
        return self.settings.ENRICHMENT_POLL_MAX_ATTEMPTS

    def _default_budget(self) -> float:
        return self.settings.ENRICHMENT_TIME_BUDGET_SECONDS

    def _scrub(self, text: str) -> str:
        """Never let the credential reach a log line or an attempt row."""
        if self._api_key and self._api_key in text:
            return text.replace(self._api_key, "***")
        return text

    def _failure(
        self,
        call: ProviderCall,
        started: float,
        status: ResultStatus,
        message: str,
        transient: bool,
    ) -> ProviderResult:
        return ProviderResult(
            provider=self.key,
            status=status,
            raw=call.raw or None,
            http_status=call.http_status,
            latency_ms=_elapsed_ms(started),
            error=self._scrub(message)[:1000],
            transient=transient,
            credits=self.credits_spent(call.raw, status),
        )


def declared_credits(settings: EnrichmentSettings, key: str) -> float:
    """The declared cost of one lookup (``<KEY>_CREDITS_PER_LOOKUP``; 1.0 for a provider
    without the setting, such as a test's fake)."""
    return float(getattr(settings, f"{key.upper()}_CREDITS_PER_LOOKUP", 1.0))


def rate_limit_per_minute(settings: EnrichmentSettings, key: str) -> float | None:
    """Lookups per minute one process may send (``<KEY>_RATE_LIMIT_PER_MINUTE``; None: no
    limit, for a provider without the setting)."""
    value = getattr(settings, f"{key.upper()}_RATE_LIMIT_PER_MINUTE", None)
    return float(value) if value is not None else None


def _elapsed_ms(started: float) -> int:
    return max(0, round((time.perf_counter() - started) * 1000))


def _body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return {"text": response.text[:2000]}


# --- registry ----------------------------------------------------------------------------------

PROVIDERS: dict[str, type[EnrichmentProvider]] = {}

P = TypeVar("P", bound=type[EnrichmentProvider])


def register_provider(cls: P) -> P:
    """Class decorator: make an adapter available under its `key` (tests register fakes)."""
    if cls.key in PROVIDERS and PROVIDERS[cls.key] is not cls:
        raise ValueError(f"enrichment provider {cls.key!r} is already registered")
    PROVIDERS[cls.key] = cls
    return cls


def registered_keys() -> list[str]:
    """Registered keys in the manual's order (LeadMagic ... PeopleDataLabs), then any others."""
    order = {key.value: index for index, key in enumerate(ProviderKey)}
    return sorted(PROVIDERS, key=lambda key: (order.get(key, len(order)), key))


def build_providers(
    settings: EnrichmentSettings, http: ExternalHttp, *, keys: Iterable[str] | None = None
) -> dict[str, EnrichmentProvider]:
    """One adapter instance per registered provider (or per key in `keys`), in registry order.

    Unconfigured providers are included: they answer ``unavailable`` without a request, so the
    waterfall can record and skip them uniformly.
    """
    chosen = list(keys) if keys is not None else registered_keys()
    return {key: PROVIDERS[key](settings=settings, http=http) for key in chosen}
