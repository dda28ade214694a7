"""Closed value sets stored in the database (CHECK constraints are generated from them).

The §8 lifecycle statuses live in :mod:`sourcing.common.statemachines`; these are the other
enumerations: channels, outcomes, delivery and job statuses. Adding a value means adding it here
and writing a migration that replaces the CHECK constraint.
"""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    """The 13 outreach channels, stored as the manual's normalised key (§10), lower case.

    The API speaks the upper-case names (``EMAIL``); ``Channel(name.lower())`` converts.
    """

    PHONE = "phone"
    EMAIL = "email"
    LINKEDIN = "linkedin"
    WHATSAPP = "whatsapp"
    RESPONDIO = "respondio"
    SMS = "sms"
    IMESSAGE = "imessage"
    LINE = "line"
    WECHAT = "wechat"
    VIBER = "viber"
    TELEGRAM = "telegram"
    KAKAOTALK = "kakaotalk"
    VOICEMAIL = "voicemail"


class EnrichmentProvider(StrEnum):
    """Keys of the 10 enrichment providers (§9). Not a CHECK: tests register fake providers."""

    LEADMAGIC = "leadmagic"
    PROSPEO = "prospeo"
    EXA = "exa"
    ROCKETREACH = "rocketreach"
    WIZA = "wiza"
    FORAGER = "forager"
    ZELIQ = "zeliq"
    CONTACTOUT = "contactout"
    DATAGM = "datagm"
    PEOPLEDATALABS = "peopledatalabs"


class ContactType(StrEnum):
    EMAIL = "EMAIL"
    PHONE = "PHONE"
    LINKEDIN = "LINKEDIN"
    HANDLE = "HANDLE"  # a messenger handle; the channel column says which messenger


class ContactSource(StrEnum):
    SALES_NAV = "SALES_NAV"
    ENRICHMENT = "ENRICHMENT"
    MANUAL = "MANUAL"


class EnrichmentPhase(StrEnum):
    PARALLEL = "PARALLEL"
    FALLBACK = "FALLBACK"


class EnrichmentAttemptStatus(StrEnum):
    SUCCESS = "SUCCESS"  # the provider returned contact data (confidence says how good)
    NO_MATCH = "NO_MATCH"
    FILTERED = "FILTERED"  # data returned but nothing usable (e.g. personal email in Europe)
    ERROR = "ERROR"
    TIMEOUT = "TIMEOUT"
    RATE_LIMITED = "RATE_LIMITED"
    UNAVAILABLE = "UNAVAILABLE"  # no API key configured
    PENDING = "PENDING"  # accepted; the answer comes by callback (Zeliq) or the attempt times out


class CircuitState(StrEnum):
    """A provider's circuit breaker (the metric's value in parentheses)."""

    CLOSED = "CLOSED"  # (0) lookups go through
    HALF_OPEN = "HALF_OPEN"  # (1) the cool-down passed: one probe lookup goes through
    OPEN = "OPEN"  # (2) too many failures: the provider is skipped until the cool-down ends


class JobTitleSource(StrEnum):
    APOLLO = "APOLLO"
    OPENAI = "OPENAI"
    MANUAL = "MANUAL"


class JobStatus(StrEnum):
    """Lifecycle of a background job row (discovery runs, documentation jobs)."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class MessageDirection(StrEnum):
    OUTBOUND = "OUTBOUND"
    INBOUND = "INBOUND"


class MessagePurpose(StrEnum):
    OUTREACH = "OUTREACH"
    SCREENING = "SCREENING"
    SCREENING_REMINDER = "SCREENING_REMINDER"


class DeliveryStatus(StrEnum):
    QUEUED = "QUEUED"
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    READ = "READ"
    FAILED = "FAILED"
    BOUNCED = "BOUNCED"  # a hard bounce reported by the provider
    CANCELLED = "CANCELLED"  # never sent: suppressed, or its project closed, while queued


class CooldownAction(StrEnum):
    ENFORCED = "ENFORCED"  # a send was refused because the expert is in cooldown
    OVERRIDDEN = "OVERRIDDEN"  # a send inside the cooldown went ahead by override


class CooldownOverrideSource(StrEnum):
    REQUEST = "REQUEST"
    PROJECT = "PROJECT"


class CallTaskKind(StrEnum):
    INITIAL = "INITIAL"
    RETRY = "RETRY"  # after a RETRYABLE_REJECTION cool-off
    SIGNUP_CHASE = "SIGNUP_CHASE"


class CallOutcome(StrEnum):
    """The three outcomes a caller submits (§4.5)."""

    INTERESTED_SIGNUP_LINK_SENT = "INTERESTED_SIGNUP_LINK_SENT"
    RETRYABLE_REJECTION = "RETRYABLE_REJECTION"
    NEVER_CONTACT_AGAIN = "NEVER_CONTACT_AGAIN"


class CallDirection(StrEnum):
    OUTBOUND = "OUTBOUND"
    INBOUND = "INBOUND"


class CallLogStatus(StrEnum):
    """The furthest point a call reached (events arrive in any order; the fold keeps the max)."""

    STARTED = "STARTED"
    RINGING = "RINGING"
    ANSWERED = "ANSWERED"
    ENDED = "ENDED"
    FAILED = "FAILED"


class RawEventStatus(StrEnum):
    RECEIVED = "RECEIVED"
    PROCESSED = "PROCESSED"
    IGNORED = "IGNORED"  # an event type we store but do not act on


class SuppressionReason(StrEnum):
    NEVER_CONTACT_AGAIN = "NEVER_CONTACT_AGAIN"  # call outcome
    OPT_OUT = "OPT_OUT"  # the expert asked, on any channel
    MANUAL = "MANUAL"  # an operator
    BOUNCED = "BOUNCED"  # a hard bounce: the address does not exist
    ERASED = "ERASED"  # the person was erased; only hashes of their identities are kept


class SuppressedContactKind(StrEnum):
    """What a contact suppression names: an address, a number, a profile or a whole domain."""

    EMAIL = "EMAIL"
    PHONE = "PHONE"
    LINKEDIN_URL = "LINKEDIN_URL"
    DOMAIN = "DOMAIN"


class SheetOperation(StrEnum):
    APPEND = "APPEND"
    UPDATE = "UPDATE"


class SheetExportStatus(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"  # unchanged row, or Sheets not configured


class ReplayStatus(StrEnum):
    REQUESTED = "REQUESTED"
    PUBLISHED = "PUBLISHED"
    FAILED = "FAILED"


class SchedulerCycleStatus(StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


# Issue 4 / manual §5.2: at most this many signup chase tasks per expert per day.
MAX_SIGNUP_CHASES_PER_DAY = 3


def values(enum: type[StrEnum]) -> tuple[str, ...]:
    return tuple(member.value for member in enum)
