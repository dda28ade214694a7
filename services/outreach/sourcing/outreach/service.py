"""The outreach context's rules (manual §4.7, §4.8, §10), used by its agents and its endpoints.

Channels
--------
The one table mapping what people type onto the 13 channels. Input is squashed before lookup
(lower case, spaces, dashes, dots and underscores removed), so ``"Whats App"``,
``"whats-app"`` and ``"WHATSAPP"`` all meet the key ``whatsapp`` and the alias table only lists
genuinely different words and misspellings. No other copy of these aliases may exist.

Cooldown
--------
An expert is left alone for ``OUTREACH_COOLDOWN_DAYS`` (30) after the last outreach message
queued or sent to them, on any channel and for any project (screening questions and reminders
do not count: they follow a contact the expert already accepted, and failed messages never
reached them). A send inside the cooldown is refused unless the request or the project sets
``overrideCooldown``. Every refusal (``ENFORCED``) and every send that went ahead inside the
cooldown (``OVERRIDDEN``) is a CooldownLog row.

Concurrency: :func:`apply_cooldown` takes a transaction-scoped advisory lock on the expert
before reading their last contact, and the caller inserts the new message (through
:func:`queue_outbound_message`) in the same transaction. Two sends for one expert at once are
serialised: the second sees the first's queued message and is refused.

Screening
---------
Status semantics (manual §8 "Screening response status", one row per expert and question):
the rows of one expert's screening for one project move together and always show the state
of that screening as a whole; ``answered_at`` / ``response_text`` say which questions are
answered.

* dispatch creates a ``PENDING`` row per question (idempotent: existing rows are kept);
* the first answer moves every open row ``PENDING → IN_PROGRESS``;
* once every *required* question has an answer, every row moves ``IN_PROGRESS → COMPLETE``;
* after ``SCREENING_MAX_REMINDERS`` unanswered follow-ups the open rows move ``→ ESCALATED``.

Each scheduler tick (``screening.follow-up-sweep.v1``) asks :func:`responses_due_follow_up`
for one response per open screening (the first open question in display order) whose rows
were all untouched for ``SCREENING_FOLLOW_UP_IDLE_MINUTES`` and publishes
``screening.follow-up.v1`` for each; the follow-up re-checks the idle time, so publishing twice
is harmless.

Recipient selection (:func:`pick_recipient`, :func:`best_recipient`) is shared by screening
dispatch and automatic outreach: which contact of an expert a channel can address.

Project status and target
-------------------------
Only an ACTIVE project takes outreach (:func:`project_refusal`): a PAUSED one holds every new
message (operator sends, automatic outreach, screening dispatch and reminders) until it is
ACTIVE again, a COMPLETED or ARCHIVED one is over, and its messages still queued are cancelled
(:func:`cancel_queued_outreach`, on ``project.closed.v1``, and by the delivery itself if it
comes first). New outreach (:func:`new_outreach_refusal`: an operator's send, automatic
outreach) also stops once the project has its ``targetThreshold`` of converted experts (with a
CONVERTED lead in it: they signed up). A message queued before a pause is delivered as usual.

Google Sheets
-------------
One tab per project (:func:`tab_title`), one row per expert (:func:`sheet_row`, columns
:data:`SHEET_HEADER`), without the emails the region rule forbids nor suppressed
addresses; the adapter is
:mod:`sourcing.outreach.sheets`.

Inbound events
--------------
The gateway's webhooks verify each provider family's signature and normalise replies,
delivery reports, bounces and opt-outs into ``outreach.inbound.v1``;
:func:`record_inbound` matches one to its thread and applies it once (deduplicated on the
provider's event id in ``processed_webhook_events``). A reply stores an INBOUND message and
moves the leads to REPLIED but leaves the thread OPEN (the conversation goes on); an opt-out,
or a reply with a stop phrase (:func:`stop_phrase_pattern`), suppresses the address and the
person and CLOSES the thread; a hard bounce suppresses the address only.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.errors import Conflict, InvalidPayload, NotFound
from sourcing.common.events import Envelope
from sourcing.common.kafka.outbox import publish
from sourcing.common.logging import correlation_id_var
from sourcing.common.messages.allocation import ExpertSuppressionRequested
from sourcing.common.messages.outreach import (
    InboundChannelEvent,
    InboundKind,
    OutreachSendRequested,
    ScreeningFollowUpRequested,
)
from sourcing.common.models import (
    ContactSuppression,
    CooldownLog,
    Expert,
    ExpertContact,
    OutreachMessage,
    OutreachThread,
    Project,
    ScreeningQuestion,
    ScreeningResponse,
    SystemEvent,
)
from sourcing.common.models.enums import (
    Channel,
    ContactType,
    CooldownAction,
    CooldownOverrideSource,
    DeliveryStatus,
    MessageDirection,
    MessagePurpose,
    SuppressedContactKind,
    SuppressionReason,
)
from sourcing.common.statemachines import (
    LeadStatus,
    OutreachThreadStatus,
    ProjectStatus,
    ScreeningResponseStatus,
)
from sourcing.common.transitions import move
from sourcing.outreach import repository
from sourcing.people.contacts import region_refusal
from sourcing.people.suppression import (
    AddressRefusal,
    address_refusal,
    normalize_suppressed_value,
    suppress_contact,
    suppressed_addresses,
    suppression_reason,
    value_hash,
)

# --- channels -------------------------------------------------------------------------------

# Extra spellings per channel, written squashed; the channel's own key is always accepted.
CHANNEL_ALIASES: Mapping[Channel, tuple[str, ...]] = MappingProxyType(
    {
        Channel.PHONE: ("call", "phonecall", "telephone", "tel", "voicecall", "coldcall"),
        Channel.EMAIL: ("mail", "emial", "emai", "emaill", "eml"),
        Channel.LINKEDIN: ("li", "linkdin", "linkedln", "linkein", "inmail"),
        Channel.WHATSAPP: ("wa", "whatapp", "whatsap", "watsapp", "wapp", "whatsup"),
        Channel.RESPONDIO: ("respond",),
        Channel.SMS: ("text", "txt", "textmessage", "texting"),
        Channel.IMESSAGE: ("imsg", "imesage", "imessages", "applemessage", "applemessages"),
        Channel.LINE: ("lineapp", "linemessenger"),
        Channel.WECHAT: ("weixin", "weichat", "wechatapp"),
        Channel.VIBER: ("rakutenviber", "vibr"),
        Channel.TELEGRAM: ("tg", "telegramm", "telgram"),
        Channel.KAKAOTALK: ("kakao", "kaokao", "kakotalk", "kaokaotalk", "kakaotok"),
        Channel.VOICEMAIL: ("vm", "vmdrop", "voicemaildrop", "ringlessvoicemail", "rvm"),
    }
)

_SEPARATORS = re.compile(r"[\s\-._]+")


def squash(value: str) -> str:
    """Lower case without spaces, dashes, dots or underscores: the lookup form of a name."""
    return _SEPARATORS.sub("", value.strip().lower())


def _build_lookup() -> Mapping[str, Channel]:
    lookup: dict[str, Channel] = {}
    for channel in Channel:
        for spelling in (channel.value, *CHANNEL_ALIASES.get(channel, ())):
            key = squash(spelling)
            owner = lookup.setdefault(key, channel)
            if owner is not channel:  # a typo here would silently reroute messages
                raise RuntimeError(f"alias {spelling!r} maps to both {owner} and {channel}")
    return MappingProxyType(lookup)


_LOOKUP = _build_lookup()


def api_name(channel: Channel) -> str:
    """The upper-case name the API speaks (``EMAIL``) for a normalised channel."""
    return channel.name


def valid_channel_names() -> list[str]:
    """The 13 API names in the manual's order."""
    return [api_name(channel) for channel in Channel]


class UnknownChannel(InvalidPayload):
    """A channel name that is neither one of the 13 nor a known alias (400 invalid_payload)."""

    def __init__(self, value: str) -> None:
        valid = valid_channel_names()
        super().__init__(
            f"unknown channel {value!r}; valid channels: {', '.join(valid)}",
            details={"field": "channel", "value": value, "validChannels": valid},
        )
        self.value = value


def normalize_channel(value: str) -> Channel:
    """The channel a user-supplied name means, in any case or spacing, aliases included.

    Raises :class:`UnknownChannel` (listing the valid names) when nothing matches.
    """
    channel = _LOOKUP.get(squash(value))
    if channel is None:
        raise UnknownChannel(value)
    return channel


def known_spellings() -> Mapping[str, Channel]:
    """Every accepted squashed spelling and its channel (for docs and tests)."""
    return _LOOKUP


_PHONE = re.compile(r"^\+?[0-9][0-9 ().-]{5,20}$")
_DIALLED_CHANNELS = frozenset({Channel.PHONE, Channel.SMS, Channel.VOICEMAIL, Channel.WHATSAPP})


def validate_recipient(channel: Channel, recipient: str) -> None:
    """What the channel's vendor cannot address at all is refused before anything is queued."""
    if channel is Channel.EMAIL and ("@" not in recipient or recipient.startswith("@")):
        raise InvalidPayload(
            f"recipient {recipient!r} is not an email address (channel EMAIL)",
            details={"field": "recipient", "channel": api_name(channel)},
        )
    if channel in _DIALLED_CHANNELS and not _PHONE.match(recipient):
        raise InvalidPayload(
            f"recipient {recipient!r} is not a phone number (channel {api_name(channel)})",
            details={"field": "recipient", "channel": api_name(channel)},
        )


# --- recipients -----------------------------------------------------------------------------

_PHONE_CHANNELS = frozenset(
    {
        Channel.PHONE,
        Channel.SMS,
        Channel.VOICEMAIL,
        Channel.WHATSAPP,
        Channel.IMESSAGE,
        Channel.RESPONDIO,
    }
)
# Channel tried, in order, when the expert has no preferred channel (or no contact for it).
FALLBACK_ORDER = (
    Channel.EMAIL,
    Channel.SMS,
    Channel.WHATSAPP,
    Channel.LINKEDIN,
    Channel.TELEGRAM,
    Channel.LINE,
    Channel.WECHAT,
    Channel.VIBER,
    Channel.KAKAOTALK,
)


def _contact_type_for(channel: Channel) -> ContactType:
    if channel is Channel.EMAIL:
        return ContactType.EMAIL
    if channel in _PHONE_CHANNELS:
        return ContactType.PHONE
    if channel is Channel.LINKEDIN:
        return ContactType.LINKEDIN
    return ContactType.HANDLE


_SUPPRESSED_KIND: Final = {
    ContactType.EMAIL: SuppressedContactKind.EMAIL,
    ContactType.PHONE: SuppressedContactKind.PHONE,
    ContactType.LINKEDIN: SuppressedContactKind.LINKEDIN_URL,
}


def suppressed_kind(channel: Channel) -> SuppressedContactKind | None:
    """What kind of address ``channel`` sends to, as the suppression rule names it (None for a
    messenger handle, which only the person rule covers)."""
    return _SUPPRESSED_KIND.get(_contact_type_for(channel))


async def recipient_refusal(
    session: AsyncSession, expert: Expert, channel: Channel, address: str
) -> AddressRefusal | None:
    """Why ``address`` may not be used to reach ``expert`` on ``channel`` (the region rule for
    email, a suppressed address), or None: the one check of explicit recipients."""
    return await address_refusal(
        session, country_iso=expert.country_iso, kind=suppressed_kind(channel), address=address
    )


async def suppressed_contacts(
    session: AsyncSession, expert: Expert, contacts: Sequence[ExpertContact]
) -> frozenset[str]:
    """The expert's addresses (contacts, primary email and phone) a suppression names."""
    by_kind: dict[SuppressedContactKind, set[str]] = {}
    for contact in contacts:
        kind = _SUPPRESSED_KIND.get(ContactType(contact.type))
        if kind is not None:
            by_kind.setdefault(kind, set()).add(contact.value)
    if expert.primary_email:
        by_kind.setdefault(SuppressedContactKind.EMAIL, set()).add(expert.primary_email)
    if expert.primary_phone:
        by_kind.setdefault(SuppressedContactKind.PHONE, set()).add(expert.primary_phone)
    return frozenset(await suppressed_addresses(session, by_kind))


def usable_address(
    expert: Expert, kind: ContactType, address: str, suppressed: Collection[str]
) -> bool:
    """May ``address`` (of contact type ``kind``) be used for ``expert``: not in ``suppressed``
    (see :func:`suppressed_contacts`) and, for an email, allowed by the region rule."""
    if address in suppressed:
        return False
    return kind is not ContactType.EMAIL or region_refusal(expert.country_iso, address) is None


def pick_recipient(
    expert: Expert,
    contacts: Sequence[ExpertContact],
    channel: Channel,
    suppressed: Collection[str] = frozenset(),
) -> str | None:
    """The best address of ``expert`` on ``channel``: a contact tagged with the channel first,
    then one of the channel's contact type (primary, professional, most confident first),
    then the expert's primary email/phone, never an email the region rule forbids nor an
    address in ``suppressed`` (see :func:`suppressed_contacts`). None when the channel cannot
    reach them."""
    kind = _contact_type_for(channel)

    def usable(address: str) -> bool:
        return usable_address(expert, kind, address, suppressed)

    def rank(contact: ExpertContact) -> tuple[int, int, int, float]:
        return (
            0 if contact.channel == channel.value else 1,
            0 if contact.is_primary else 1,
            0 if contact.is_professional else 1,
            -(contact.confidence or 0.0),
        )

    candidates = [
        c
        for c in contacts
        if (
            c.channel == channel.value
            or (c.type == kind.value and (kind is not ContactType.HANDLE or c.channel is None))
        )
        and usable(c.value)
    ]
    if kind is ContactType.HANDLE:  # an untagged handle could be any messenger's
        candidates = [c for c in candidates if c.channel == channel.value]
    if candidates:
        return sorted(candidates, key=rank)[0].value
    if kind is ContactType.EMAIL and expert.primary_email and usable(expert.primary_email):
        return expert.primary_email
    if kind is ContactType.PHONE and expert.primary_phone and usable(expert.primary_phone):
        return expert.primary_phone
    return None


@dataclass(frozen=True, slots=True)
class Recipient:
    channel: Channel
    address: str


def best_recipient(
    expert: Expert, contacts: Sequence[ExpertContact], suppressed: Collection[str] = frozenset()
) -> Recipient | None:
    """The expert's preferred channel when it reaches them, else the first of
    :data:`FALLBACK_ORDER` that does."""
    order: list[Channel] = []
    if expert.preferred_channel:
        order.append(Channel(expert.preferred_channel))
    order.extend(channel for channel in FALLBACK_ORDER if channel not in order)
    for channel in order:
        address = pick_recipient(expert, contacts, channel, suppressed)
        if address:
            return Recipient(channel=channel, address=address)
    return None


async def choose_recipient(
    session: AsyncSession, expert: Expert, channel: Channel | None = None
) -> Recipient | None:
    """Where to reach ``expert``: on ``channel``, or on the best channel that reaches them
    (:func:`best_recipient`), never at a suppressed address or one the region rule forbids."""
    contacts = await repository.list_contacts(session, expert.id)
    suppressed = await suppressed_contacts(session, expert, contacts)
    if channel is None:
        return best_recipient(expert, contacts, suppressed)
    address = pick_recipient(expert, contacts, channel, suppressed)
    return Recipient(channel=channel, address=address) if address else None


async def delivery_refusal(
    session: AsyncSession, expert: Expert, channel: Channel, recipient: str
) -> str | None:
    """Why a queued message may no longer go out (the person or the address was suppressed
    since it was queued), or None: the last check before a channel is called."""
    reason = await suppression_reason(session, expert.id)
    if reason is not None:
        return f"expert suppressed ({reason})"
    refusal = await recipient_refusal(session, expert, channel, recipient)
    return refusal.message if refusal is not None else None


async def cancel_queued_messages(
    session: AsyncSession,
    *,
    reason: str,
    now: datetime,
    actor: str,
    expert_id: uuid.UUID | None = None,
    address: tuple[SuppressedContactKind, str] | None = None,
) -> list[uuid.UUID]:
    """Cancel what is still queued for a suppressed expert, or to a suppressed address
    (``(kind, normalised value)``), so nothing already accepted goes out after the refusal."""
    messages = await repository.queued_messages(session, expert_id=expert_id, address=address)
    return cancel_messages(session, messages, reason=reason, actor=actor, now=now)


# --- suppressions ---------------------------------------------------------------------------


class ErasedPersonSuppression(Conflict):
    code = "erased_person_suppression"


async def add_suppression(
    session: AsyncSession,
    *,
    kind: SuppressedContactKind,
    value: str,
    reason: SuppressionReason,
    now: datetime,
    actor: str,
    note: str | None = None,
    expert_id: uuid.UUID | None = None,
    correlation_id: str | None = None,
) -> tuple[ContactSuppression, bool]:
    """Suppress an address (idempotent: an existing row is returned unchanged, with False).
    A new suppression cancels the messages still queued to the address and is audited with the
    address's hash, never the address."""
    normalized = normalize_suppressed_value(kind, value)
    if normalized is None:
        raise InvalidPayload(
            f"{value!r} is not a valid {kind.value.lower().replace('_', ' ')}",
            details={"field": "value", "kind": kind.value},
        )
    row, created = await suppress_contact(
        session,
        kind,
        normalized,
        reason=reason,
        actor=actor,
        expert_id=expert_id,
        note=note,
        correlation_id=correlation_id,
    )
    if not created:
        return row, False
    cancelled = await cancel_queued_messages(
        session,
        reason=f"{kind.value.lower()} suppressed ({reason.value})",
        now=now,
        actor=actor,
        address=(kind, normalized),
    )
    await repository.add(
        session,
        SystemEvent(
            type="contact.suppressed",
            entity_type="contact_suppression",
            entity_id=row.id,
            actor=actor,
            correlation_id=correlation_id,
            data={
                "kind": kind.value,
                "reason": reason.value,
                "valueHash": row.value_hash,
                "expertId": str(expert_id) if expert_id else None,
                "cancelledMessageIds": [str(message_id) for message_id in cancelled],
            },
        ),
    )
    return row, True


async def remove_suppression(
    session: AsyncSession,
    suppression_id: uuid.UUID,
    *,
    actor: str,
    correlation_id: str | None,
) -> None:
    """Lift a suppression (audited). The hashed identities an erasure keeps cannot be lifted:
    they are what stops the erased person from being ingested again."""
    row = await repository.get_suppression(session, suppression_id)
    if row is None:
        raise NotFound(
            f"suppression {suppression_id} not found",
            details={"suppressionId": str(suppression_id)},
        )
    if row.reason == SuppressionReason.ERASED.value:
        raise ErasedPersonSuppression(
            "this suppression records an erased person and cannot be lifted",
            details={"suppressionId": str(suppression_id)},
        )
    await repository.add(
        session,
        SystemEvent(
            type="contact.unsuppressed",
            entity_type="contact_suppression",
            entity_id=row.id,
            actor=actor,
            correlation_id=correlation_id,
            data={"kind": row.kind, "reason": row.reason, "valueHash": row.value_hash},
        ),
    )
    await repository.delete_suppression(session, row)


def suppression_hash(kind: SuppressedContactKind, value: str) -> str:
    """The hash a list filter by value matches (400 when the value is not one of ``kind``)."""
    normalized = normalize_suppressed_value(kind, value)
    if normalized is None:
        raise InvalidPayload(
            f"{value!r} is not a valid {kind.value.lower().replace('_', ' ')}",
            details={"field": "value", "kind": kind.value},
        )
    return value_hash(normalized)


# --- cooldown -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CooldownDecision:
    """Whether a send may go ahead, and why."""

    allowed: bool
    in_cooldown: bool
    last_contacted_at: datetime | None
    ends_at: datetime | None
    override_source: CooldownOverrideSource | None = None
    log_id: uuid.UUID | None = None


def evaluate_cooldown(
    *,
    last_contacted_at: datetime | None,
    now: datetime,
    cooldown_days: int,
    request_override: bool = False,
    project_override: bool = False,
) -> CooldownDecision:
    """The pure rule: in cooldown when the last contact is less than ``cooldown_days`` ago."""
    if last_contacted_at is None or cooldown_days <= 0:
        return CooldownDecision(
            allowed=True, in_cooldown=False, last_contacted_at=last_contacted_at, ends_at=None
        )
    ends_at = last_contacted_at + timedelta(days=cooldown_days)
    if now >= ends_at:
        return CooldownDecision(
            allowed=True, in_cooldown=False, last_contacted_at=last_contacted_at, ends_at=ends_at
        )
    source = (
        CooldownOverrideSource.REQUEST
        if request_override
        else CooldownOverrideSource.PROJECT
        if project_override
        else None
    )
    return CooldownDecision(
        allowed=source is not None,
        in_cooldown=True,
        last_contacted_at=last_contacted_at,
        ends_at=ends_at,
        override_source=source,
    )


async def apply_cooldown(
    session: AsyncSession,
    *,
    project_id: uuid.UUID,
    expert_id: uuid.UUID,
    channel: Channel,
    now: datetime,
    cooldown_days: int,
    request_override: bool = False,
    project_override: bool = False,
    actor: str | None = None,
    correlation_id: str | None = None,
) -> CooldownDecision:
    """Lock the expert, evaluate the rule and log an enforcement or override.

    The lock is held until the caller's transaction ends: queue the message in the same
    transaction. An ``ENFORCED`` log must be committed by the caller even though the send is
    refused (the gateway answers 409 without rolling back).
    """
    await repository.lock_expert_outreach(session, expert_id)
    decision = evaluate_cooldown(
        last_contacted_at=await repository.last_outreach_at(session, expert_id),
        now=now,
        cooldown_days=cooldown_days,
        request_override=request_override,
        project_override=project_override,
    )
    if not decision.in_cooldown:
        return decision
    log = CooldownLog(
        id=uuid.uuid4(),
        project_id=project_id,
        expert_id=expert_id,
        channel=channel.value,
        action=(CooldownAction.OVERRIDDEN if decision.allowed else CooldownAction.ENFORCED).value,
        override_source=decision.override_source.value if decision.override_source else None,
        last_contacted_at=decision.last_contacted_at,
        cooldown_ends_at=decision.ends_at,
        reason=(
            f"overridden by {decision.override_source.value.lower()}"
            if decision.override_source
            else f"last contacted {decision.last_contacted_at:%Y-%m-%d}; "
            f"cooldown of {cooldown_days} days"
        ),
        actor=actor,
        correlation_id=correlation_id,
    )
    await repository.add(session, log)
    return CooldownDecision(
        allowed=decision.allowed,
        in_cooldown=True,
        last_contacted_at=decision.last_contacted_at,
        ends_at=decision.ends_at,
        override_source=decision.override_source,
        log_id=log.id,
    )


async def link_cooldown_log(
    session: AsyncSession, decision: CooldownDecision, message: OutreachMessage
) -> None:
    """Point an OVERRIDDEN log at the message that went ahead."""
    if decision.log_id is None:
        return
    log = await repository.get_cooldown_log(session, decision.log_id)
    if log is not None:
        log.outreach_message_id = message.id
        await session.flush()


# --- threads and messages -------------------------------------------------------------------


# --- project status and target -------------------------------------------------------------


class OutreachStopped(Conflict):
    """The project takes no outreach now (409)."""


class ProjectNotActive(OutreachStopped):
    code = "project_not_active"


class TargetThresholdReached(OutreachStopped):
    code = "target_threshold_reached"


def project_refusal(project: Project) -> ProjectNotActive | None:
    """Outreach of any kind (sends, automatic outreach, screening and its reminders) only for
    an ACTIVE project: a PAUSED one holds it until it resumes, a COMPLETED or ARCHIVED one is
    over."""
    if project.status == ProjectStatus.ACTIVE:
        return None
    return ProjectNotActive(
        f"project {project.id} is {project.status}: no outreach until it is ACTIVE",
        details={"projectId": str(project.id), "status": project.status},
    )


async def new_outreach_refusal(session: AsyncSession, project: Project) -> OutreachStopped | None:
    """New outreach (an operator's send, automatic outreach): only for an ACTIVE project
    (:func:`project_refusal`) that has fewer converted experts (a CONVERTED lead in it: they
    signed up) than its ``targetThreshold``."""
    refusal = project_refusal(project)
    if refusal is not None:
        return refusal
    converted = await repository.converted_experts(session, project.id)
    if converted < project.target_threshold:
        return None
    return TargetThresholdReached(
        f"project {project.id} reached its target of {project.target_threshold} converted "
        "experts: no new outreach",
        details={
            "projectId": str(project.id),
            "targetThreshold": project.target_threshold,
            "convertedExperts": converted,
        },
    )


def cancel_messages(
    session: AsyncSession,
    messages: Sequence[OutreachMessage],
    *,
    reason: str,
    actor: str,
    now: datetime,
) -> list[uuid.UUID]:
    """Queued messages CANCELLED (never to be sent; ``error`` says why), each audited
    (``outreach_message.cancelled``). Returns their ids."""
    for message in messages:
        message.delivery_status = DeliveryStatus.CANCELLED.value
        message.error = reason[:2000]
        message.failed_at = now
        session.add(
            SystemEvent(
                type="outreach_message.cancelled",
                entity_type="outreach_message",
                entity_id=message.id,
                actor=actor,
                correlation_id=correlation_id_var.get(),
                data={"threadId": str(message.thread_id), "reason": reason},
            )
        )
    return [message.id for message in messages]


async def cancel_queued_outreach(
    session: AsyncSession,
    project_id: uuid.UUID,
    *,
    project_status: str,
    actor: str,
    now: datetime,
) -> list[uuid.UUID]:
    """``project.closed.v1``: a COMPLETED or ARCHIVED project's messages still waiting for the
    outreach agent are CANCELLED. Applying it twice changes nothing."""
    messages = await repository.queued_messages(session, project_id=project_id)
    cancelled = cancel_messages(
        session, messages, reason=f"project {project_status}", actor=actor, now=now
    )
    await session.flush()
    return cancelled


class ThreadClosed(Exception):
    """The expert's thread for this project and channel is CLOSED or ARCHIVED."""

    def __init__(self, thread: OutreachThread) -> None:
        super().__init__(f"outreach thread {thread.id} is {thread.status}")
        self.thread = thread


async def open_thread(
    session: AsyncSession,
    *,
    project_id: uuid.UUID,
    expert_id: uuid.UUID,
    channel: Channel,
    recipient: str,
) -> OutreachThread:
    """The expert's OPEN thread for project + channel, created when missing (race-safe).

    Raises :class:`ThreadClosed` when the thread exists but was closed (no way back to OPEN).
    """
    thread = await repository.ensure_thread(
        session,
        project_id=project_id,
        expert_id=expert_id,
        channel=channel,
        recipient=recipient,
        status=OutreachThreadStatus.OPEN,
    )
    if thread.status != OutreachThreadStatus.OPEN.value:
        raise ThreadClosed(thread)
    thread.recipient = recipient
    return thread


async def queue_outbound_message(
    session: AsyncSession,
    *,
    thread: OutreachThread,
    body: str,
    purpose: MessagePurpose = MessagePurpose.OUTREACH,
    recipient: str | None = None,
    cooldown_overridden: bool = False,
    correlation_id: str | None = None,
    message_id: uuid.UUID | None = None,
) -> OutreachMessage:
    """A QUEUED outbound message in ``thread`` (the row the cooldown rule counts)."""
    new_id = message_id or uuid.uuid4()
    message = OutreachMessage(
        id=new_id,
        thread_id=thread.id,
        expert_id=thread.expert_id,
        job_id=str(new_id),
        direction=MessageDirection.OUTBOUND.value,
        purpose=purpose.value,
        recipient=recipient or thread.recipient,
        body=body,
        delivery_status=DeliveryStatus.QUEUED.value,
        attempts=0,
        cooldown_overridden=cooldown_overridden,
        correlation_id=correlation_id,
    )
    await repository.add(session, message)
    return message


@dataclass(frozen=True, slots=True)
class OutreachQueued:
    """What :func:`queue_outreach` did: the cooldown decision and, when allowed, the message."""

    decision: CooldownDecision
    message: OutreachMessage | None


async def queue_outreach(
    session: AsyncSession,
    *,
    project: Project,
    expert: Expert,
    channel: Channel,
    recipient: str,
    body: str,
    now: datetime,
    cooldown_days: int,
    actor: str,
    correlation_id: str | None,
    request_override: bool = False,
    subject: str | None = None,
    lead_actor: str | None = None,
) -> OutreachQueued:
    """Queue one outreach message (manual §4.7), from the endpoint or automatic outreach.

    Refuses new outreach the project does not take (:class:`OutreachStopped`, see
    :func:`new_outreach_refusal`), applies the cooldown (a refusal is logged and nothing is
    queued), opens the thread (:class:`ThreadClosed` when it was closed), queues the message,
    marks the expert's leads ``OUTREACH_PENDING`` and asks the outreach agent to deliver it.
    ``actor`` signs the cooldown log and, unless ``lead_actor`` is given, the lead transitions.
    """
    refusal = await new_outreach_refusal(session, project)
    if refusal is not None:
        raise refusal
    decision = await apply_cooldown(
        session,
        project_id=project.id,
        expert_id=expert.id,
        channel=channel,
        now=now,
        cooldown_days=cooldown_days,
        request_override=request_override,
        project_override=project.override_cooldown,
        actor=actor,
        correlation_id=correlation_id,
    )
    if not decision.allowed:
        return OutreachQueued(decision=decision, message=None)
    thread = await open_thread(
        session, project_id=project.id, expert_id=expert.id, channel=channel, recipient=recipient
    )
    message = await queue_outbound_message(
        session,
        thread=thread,
        body=body,
        recipient=recipient,
        cooldown_overridden=decision.in_cooldown,
        correlation_id=correlation_id,
    )
    await link_cooldown_log(session, decision, message)
    await mark_leads(
        session,
        project_id=project.id,
        expert_id=expert.id,
        from_status=LeadStatus.ENRICHED,
        to_status=LeadStatus.OUTREACH_PENDING,
        now=now,
        actor=lead_actor or actor,
    )
    await publish(
        session,
        OutreachSendRequested(
            message_id=message.id, expert_id=expert.id, project_id=project.id, subject=subject
        ),
    )
    return OutreachQueued(decision=decision, message=message)


DEFAULT_AUTO_TEMPLATE = (
    "Hi {first_name}, we are running a paid expert consultation for {project_name} and your "
    "experience as {title} at {company} would be valuable. Would you be open to a short call?"
)

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def render_template(template: str, *, expert: Expert, project: Project) -> str:
    """Fill ``{first_name}``, ``{full_name}``, ``{title}``, ``{company}``, ``{project_name}``;
    unknown placeholders stay as written (no attribute access: templates are operator input)."""
    fields = {
        "first_name": expert.first_name or expert.full_name.split(" ")[0],
        "full_name": expert.full_name,
        "last_name": expert.last_name or "",
        "title": expert.title or "your role",
        "company": expert.company_name or "your company",
        "project_name": project.name,
    }
    return _PLACEHOLDER.sub(lambda m: fields.get(m.group(1), m.group(0)), template)


LEAD_REASONS = {
    LeadStatus.OUTREACH_PENDING: "outreach message queued",
    LeadStatus.CONTACTED: "outreach message sent",
    LeadStatus.REPLIED: "the expert replied",
}


async def mark_leads(
    session: AsyncSession,
    *,
    project_id: uuid.UUID,
    expert_id: uuid.UUID,
    from_status: LeadStatus,
    to_status: LeadStatus,
    now: datetime,
    actor: str,
) -> int:
    """Move the expert's leads in the project from one status to the next (others untouched)."""
    leads = await repository.leads_in_status(
        session, project_id=project_id, expert_id=expert_id, status=from_status
    )
    for lead in leads:
        move(session, lead, to_status, actor=actor, reason=LEAD_REASONS[to_status], now=now)
        if to_status is LeadStatus.CONTACTED:
            lead.contacted_at = now
    await session.flush()
    return len(leads)


# --- screening ------------------------------------------------------------------------------

OPEN_STATUSES = (ScreeningResponseStatus.PENDING.value, ScreeningResponseStatus.IN_PROGRESS.value)

# UUIDv5 namespace of the follow-ups a sweep publishes (a constant: changing it re-sends a tick).
FOLLOW_UP_NAMESPACE = uuid.UUID("0b7c1f4e-3d2a-5e8b-9c61-7a4f2e9d0c35")


def render_screening_questions(prompts: Sequence[str], *, intro: str | None = None) -> str:
    """The text that carries the questions to the expert, numbered in display order."""
    lines = [intro or "Thank you for your interest. Please answer these screening questions:"]
    lines.extend(f"{index}. {prompt}" for index, prompt in enumerate(prompts, start=1))
    return "\n".join(lines)


def reminder_text(prompts: list[str], number: int) -> str:
    lines = [f"Reminder {number}: we are still waiting for your answers to:"]
    lines.extend(f"- {prompt}" for prompt in prompts)
    return "\n".join(lines)


def move_screening(
    session: AsyncSession,
    open_rows: Sequence[ScreeningResponse],
    status: ScreeningResponseStatus,
    *,
    actor: str,
    reason: str,
    now: datetime,
) -> None:
    """Move the open rows of one expert's screening to ``status`` together (rows already there
    stay); COMPLETE and ESCALATED also stamp ``completed_at`` / ``escalated_at``."""
    for row in open_rows:
        if row.status == status.value:
            continue
        move(session, row, status, actor=actor, reason=reason, now=now)
        if status is ScreeningResponseStatus.COMPLETE:
            row.completed_at = now
        elif status is ScreeningResponseStatus.ESCALATED:
            row.escalated_at = now


async def record_answer(
    session: AsyncSession,
    rows: Sequence[tuple[ScreeningResponse, ScreeningQuestion]],
    answered: ScreeningResponse,
    *,
    text: str,
    now: datetime,
    actor: str,
) -> int:
    """Store an answer and move the screening: ``IN_PROGRESS`` on the first answer,
    ``COMPLETE`` once every required question is answered. Returns the required questions
    still unanswered."""
    answered.response_text = text
    answered.answered_at = now
    answered.updated_at = now
    open_rows = [response for response, _ in rows if response.status in OPEN_STATUSES]
    move_screening(
        session,
        open_rows,
        ScreeningResponseStatus.IN_PROGRESS,
        actor=actor,
        reason="an answer arrived",
        now=now,
    )
    remaining = sum(1 for response, q in rows if q.required and response.answered_at is None)
    if remaining == 0:
        move_screening(
            session,
            open_rows,
            ScreeningResponseStatus.COMPLETE,
            actor=actor,
            reason="every required question answered",
            now=now,
        )
    await session.flush()
    return remaining


def follow_up_cutoff(now: datetime, idle_minutes: int) -> datetime:
    """A screening untouched since this moment is due a follow-up."""
    return now - timedelta(minutes=idle_minutes)


async def responses_due_follow_up(
    session: AsyncSession,
    *,
    now: datetime,
    idle_minutes: int = 15,
    limit: int = 500,
) -> list[uuid.UUID]:
    """One response id per open screening (project + expert) of an ACTIVE project (see
    :func:`project_refusal`) untouched for ``idle_minutes``.

    The id is the first open question's response in display order; oldest screenings first.
    """
    return await repository.idle_screening_responses(
        session, statuses=OPEN_STATUSES, cutoff=follow_up_cutoff(now, idle_minutes), limit=limit
    )


async def publish_due_follow_ups(
    session: AsyncSession,
    *,
    sweep: Envelope,
    requested_at: datetime,
    idle_minutes: int,
    limit: int,
) -> int:
    """One ``screening.follow-up.v1`` per screening due as of ``requested_at`` (keyed by
    expert id), with an envelope id derived from the sweep's and the response's: a
    redelivered sweep publishes the same ids, which the screening agent deduplicates."""
    due = await responses_due_follow_up(
        session, now=requested_at, idle_minutes=idle_minutes, limit=limit
    )
    experts = await repository.expert_ids_of_responses(session, due)
    for response_id in due:
        await publish(
            session,
            ScreeningFollowUpRequested(response_id=response_id, expert_id=experts[response_id]),
            correlation_id=sweep.correlation_id,
            envelope_id=str(uuid.uuid5(FOLLOW_UP_NAMESPACE, f"{sweep.id}:{response_id}")),
            occurred_at=requested_at,
        )
    return len(due)


# --- google sheets --------------------------------------------------------------------------

SHEET_HEADER = (
    "Expert ID",
    "Name",
    "Title",
    "Company",
    "Emails",
    "Phones",
    "Other contacts",
    "Lead status",
    "Ranking score",
    "Screening",
)


def tab_title(project: Project) -> str:
    """One tab per project: its name (characters Sheets ranges dislike removed) + short id."""
    name = re.sub(r"[\[\]\*\?/\\:'!]", " ", project.name).strip()[:80] or "Project"
    return f"{name} {str(project.id)[:8]}"


def screening_summary(rows: list[ScreeningResponse]) -> str:
    if not rows:
        return ""
    status = rows[0].status
    answered = sum(1 for row in rows if row.answered_at is not None)
    return f"{status} ({answered}/{len(rows)} answered)"


async def sheet_row(session: AsyncSession, project: Project, expert: Expert) -> list[str]:
    """The expert's row in the project's tab, in :data:`SHEET_HEADER` order. An email the
    region rule forbids and a suppressed address (:func:`usable_address`) are never written:
    whoever reads the sheet could use them. An erased expert's row is blank (their row is
    cleared, nothing of them is written again)."""
    if expert.erased_at is not None:
        return [""] * len(SHEET_HEADER)
    contacts = await repository.list_contacts(session, expert.id)
    suppressed = await suppressed_contacts(session, expert, contacts)
    by_type: dict[str, list[str]] = {}
    for contact in contacts:
        if not usable_address(expert, ContactType(contact.type), contact.value, suppressed):
            continue
        by_type.setdefault(contact.type, []).append(
            contact.value
            if contact.type != ContactType.HANDLE.value
            else f"{contact.channel or 'handle'}:{contact.value}"
        )
    leads = await repository.expert_leads(session, project_id=project.id, expert_id=expert.id)
    ranking = leads[0].ranking_score if leads and leads[0].ranking_score is not None else None
    if ranking is None:
        ranking = await repository.latest_ranking(
            session, project_id=project.id, expert_id=expert.id
        )
    screening = list(
        await repository.screening_statuses(session, project_id=project.id, expert_id=expert.id)
    )
    return [
        str(expert.id),
        expert.full_name,
        expert.title or "",
        expert.company_name or "",
        ", ".join(by_type.get(ContactType.EMAIL.value, [])),
        ", ".join(by_type.get(ContactType.PHONE.value, [])),
        ", ".join(
            by_type.get(ContactType.LINKEDIN.value, []) + by_type.get(ContactType.HANDLE.value, [])
        ),
        leads[0].status if leads else "",
        "" if ranking is None else f"{ranking:.4f}",
        screening_summary(screening),
    ]


# --- inbound channel events -----------------------------------------------------------------

# Phrases that make a reply an opt-out (whole words, any case, any spacing between words);
# ``INBOUND_STOP_PHRASES`` adds more. A plain word list: no attempt at reading intent.
STOP_PHRASES: Final = (
    "stop",
    "stopp",
    "unsubscribe",
    "remove me",
    "do not contact",
    "don't contact",
    "opt out",
    "opt-out",
    "optout",
    # French, Spanish, German, Italian, Portuguese, Dutch.
    "désabonner",
    "ne plus me contacter",
    "darme de baja",
    "no me contacten",
    "abmelden",
    "nicht mehr kontaktieren",
    "cancellami",
    "non contattarmi",
    "descadastrar",
    "afmelden",
)


def stop_phrase_pattern(extra: Sequence[str] = ()) -> re.Pattern[str]:
    """One case-insensitive, word-bounded pattern over :data:`STOP_PHRASES` and ``extra``."""
    phrases = {phrase.strip().lower() for phrase in (*STOP_PHRASES, *extra) if phrase.strip()}
    alternatives = sorted(
        (r"\s+".join(re.escape(word) for word in phrase.split()) for phrase in phrases),
        key=len,
        reverse=True,
    )
    return re.compile(rf"(?<!\w)(?:{'|'.join(alternatives)})(?!\w)", re.IGNORECASE)


def is_stop_request(text: str | None, pattern: re.Pattern[str]) -> bool:
    """Whether a reply asks not to be contacted again (see :func:`stop_phrase_pattern`)."""
    return bool(text) and pattern.search(text or "") is not None


# Which threads an event of a provider family may be about, when it names no channel.
PROVIDER_CHANNELS: Final = MappingProxyType(
    {
        "sendgrid": (Channel.EMAIL,),
        "twilio": (Channel.SMS, Channel.PHONE),
        "whatsapp": (Channel.WHATSAPP,),
        "unipile": (Channel.LINKEDIN,),
        "telegram": (Channel.TELEGRAM,),
    }
)


@dataclass(frozen=True, slots=True)
class InboundMatch:
    """The thread an inbound event is about and, when it names one, the outbound message."""

    thread: OutreachThread
    message: OutreachMessage | None


async def match_inbound(session: AsyncSession, event: InboundChannelEvent) -> InboundMatch | None:
    """The thread (and message) an event is about: the outbound message by its provider id,
    else the thread by the provider's conversation id, else the most recently active thread
    whose recipient is the event's address. None when nothing matches."""
    if event.provider_message_id:
        found = await repository.outbound_message_by_provider_id(session, event.provider_message_id)
        if found is not None:
            return InboundMatch(thread=found[1], message=found[0])
    channels = (event.channel,) if event.channel else PROVIDER_CHANNELS.get(event.provider, ())
    if not channels:
        return None
    thread = None
    if event.external_thread_id:
        thread = await repository.thread_by_external_id(session, event.external_thread_id, channels)
    if thread is None and event.address:
        phone = all(channel in _PHONE_CHANNELS for channel in channels)
        thread = await repository.thread_by_recipient(session, event.address, channels, phone=phone)
    if thread is None:
        return None
    message = None
    if event.kind in (InboundKind.DELIVERED, InboundKind.BOUNCED):
        message = await repository.latest_outbound_message(session, thread.id)
    return InboundMatch(thread=thread, message=message)


async def record_inbound(
    session: AsyncSession,
    event: InboundChannelEvent,
    *,
    now: datetime,
    stop_phrases: re.Pattern[str],
    correlation_id: str | None = None,
) -> str:
    """Apply one inbound channel event once (a replayed provider event id changes nothing);
    returns what was done, for the log.

    * ``REPLY``: an INBOUND message on the thread, the expert's leads of the project
      ``CONTACTED → REPLIED`` (``OUTREACH_PENDING`` passes through ``CONTACTED``: the reply
      proves the message arrived). The thread stays as it is: an OPEN thread is the
      conversation that goes on (screening, reminders), a closed one is not reopened. A reply
      containing a stop phrase is also an opt-out.
    * ``DELIVERED``: the outbound message DELIVERED (``delivered_at``).
    * ``BOUNCED``: hard, the message BOUNCED and the address suppressed (BOUNCED); soft, only
      recorded on the message and audited.
    * ``OPT_OUT``: :func:`record_opt_out`.

    An event that matches no thread is audited (``outreach.inbound_unmatched``); an opt-out or
    hard bounce naming an address still suppresses that address.
    """
    claimed = await repository.claim_inbound_event(
        session,
        source=f"{event.provider}-inbound",
        event_id=event.event_id,
        event_type=event.kind.value,
        received_at=event.received_at,
        correlation_id=correlation_id,
    )
    if not claimed:
        return "replay"
    outcome = await _apply_inbound(
        session, event, now=now, stop_phrases=stop_phrases, actor=f"inbound:{event.provider}"
    )
    await session.flush()
    return outcome


async def _apply_inbound(
    session: AsyncSession,
    event: InboundChannelEvent,
    *,
    now: datetime,
    stop_phrases: re.Pattern[str],
    actor: str,
) -> str:
    match = await match_inbound(session, event)
    if match is None:
        await _record_unmatched(session, event, now=now, actor=actor)
        return "unmatched"
    thread, message = match.thread, match.message
    if event.kind is InboundKind.REPLY:
        await record_reply(session, thread, event, now=now, actor=actor)
        if is_stop_request(event.text, stop_phrases):
            await record_opt_out(session, thread, event, now=now, actor=actor)
            return "reply with a stop phrase: opted out"
        return "reply"
    if event.kind is InboundKind.DELIVERED:
        if message is not None and message.delivery_status in _DELIVERABLE:
            message.delivery_status = DeliveryStatus.DELIVERED.value
            message.delivered_at = event.occurred_at
        return "delivered"
    if event.kind is InboundKind.BOUNCED:
        await record_bounce(session, thread, message, event, now=now, actor=actor)
        return "hard bounce" if event.hard_bounce else "soft bounce"
    await record_opt_out(session, thread, event, now=now, actor=actor)
    return "opted out"


# A delivery report moves only a message that left and has no later news.
_DELIVERABLE: Final = (DeliveryStatus.QUEUED.value, DeliveryStatus.SENT.value)


async def record_reply(
    session: AsyncSession,
    thread: OutreachThread,
    event: InboundChannelEvent,
    *,
    now: datetime,
    actor: str,
) -> OutreachMessage:
    """The expert's reply as an INBOUND message on ``thread``, and their leads REPLIED."""
    message = OutreachMessage(
        id=uuid.uuid4(),
        thread_id=thread.id,
        expert_id=thread.expert_id,
        job_id=f"{event.provider}:{event.event_id}"[:200],
        direction=MessageDirection.INBOUND.value,
        purpose=MessagePurpose.OUTREACH.value,
        recipient=event.address or thread.recipient,
        body=event.text or "",
        delivery_status=DeliveryStatus.DELIVERED.value,
        provider=event.provider,
        attempts=0,
        sent_at=event.occurred_at,
        delivered_at=event.received_at,
    )
    await repository.add(session, message)
    thread.last_message_at = max(thread.last_message_at or event.occurred_at, event.occurred_at)
    if event.external_thread_id and not thread.external_thread_id:
        thread.external_thread_id = event.external_thread_id
    for from_status, to_status in (
        (LeadStatus.OUTREACH_PENDING, LeadStatus.CONTACTED),
        (LeadStatus.CONTACTED, LeadStatus.REPLIED),
    ):
        await mark_leads(
            session,
            project_id=thread.project_id,
            expert_id=thread.expert_id,
            from_status=from_status,
            to_status=to_status,
            now=now,
            actor=actor,
        )
    return message


def _suppressible(
    channel: Channel, address: str | None
) -> tuple[SuppressedContactKind, str] | None:
    """The address an event names as a suppression of its kind, when the channel's addresses
    can be suppressed (a messenger handle cannot: only the person rule covers it)."""
    kind = suppressed_kind(channel)
    if kind is None or not address or normalize_suppressed_value(kind, address) is None:
        return None
    return kind, address


async def record_bounce(
    session: AsyncSession,
    thread: OutreachThread,
    message: OutreachMessage | None,
    event: InboundChannelEvent,
    *,
    now: datetime,
    actor: str,
) -> None:
    """A hard bounce marks the message BOUNCED and suppresses the address (BOUNCED: the address
    is dead, the person is not suppressed); a soft bounce is only recorded."""
    detail = event.detail or ("hard bounce" if event.hard_bounce else "soft bounce")
    if message is not None:
        message.error = detail[:2000]
        if event.hard_bounce:
            message.delivery_status = DeliveryStatus.BOUNCED.value
            message.failed_at = event.occurred_at
    thread.last_error, thread.last_error_at = detail[:2000], event.occurred_at
    address = event.address or (message.recipient if message else None) or thread.recipient
    target = _suppressible(Channel(thread.channel), address)
    if event.hard_bounce and target is not None:
        await add_suppression(
            session,
            kind=target[0],
            value=target[1],
            reason=SuppressionReason.BOUNCED,
            now=now,
            actor=actor,
            note=detail[:500],
            expert_id=thread.expert_id,
        )
        return
    await repository.add(
        session,
        SystemEvent(
            type="outreach.bounced",
            entity_type="outreach_message" if message else "outreach_thread",
            entity_id=message.id if message else thread.id,
            actor=actor,
            data={"hard": event.hard_bounce, "detail": detail, "eventId": event.event_id},
        ),
    )


async def record_opt_out(
    session: AsyncSession,
    thread: OutreachThread,
    event: InboundChannelEvent,
    *,
    now: datetime,
    actor: str,
) -> None:
    """The expert opted out: their address suppressed (OPT_OUT, naming the expert, so the
    person rule holds at once), what is queued for them cancelled, the thread CLOSED, and the
    allocation context asked to suppress the person (open call tasks cancelled)."""
    note = f"opt-out reported by {event.provider} (event {event.event_id})"
    target = _suppressible(Channel(thread.channel), event.address or thread.recipient)
    if target is not None:
        await add_suppression(
            session,
            kind=target[0],
            value=target[1],
            reason=SuppressionReason.OPT_OUT,
            now=now,
            actor=actor,
            note=note,
            expert_id=thread.expert_id,
        )
    await cancel_queued_messages(
        session, reason="the expert opted out", now=now, actor=actor, expert_id=thread.expert_id
    )
    if thread.status == OutreachThreadStatus.OPEN.value:
        move(
            session,
            thread,
            OutreachThreadStatus.CLOSED,
            actor=actor,
            reason="the expert opted out",
            now=now,
        )
    await publish(
        session,
        ExpertSuppressionRequested(
            expert_id=thread.expert_id, reason=SuppressionReason.OPT_OUT, actor=actor, note=note
        ),
        envelope_id=str(uuid.uuid5(OPT_OUT_NAMESPACE, f"{event.provider}:{event.event_id}")),
    )


# UUIDv5 namespace of the suppression requests an opt-out publishes (one per provider event).
OPT_OUT_NAMESPACE = uuid.UUID("5d0f3c1e-8a47-4b6e-a2d9-3f1c7e5b9a60")


async def _record_unmatched(
    session: AsyncSession, event: InboundChannelEvent, *, now: datetime, actor: str
) -> None:
    suppress = event.kind is InboundKind.OPT_OUT or (
        event.kind is InboundKind.BOUNCED and event.hard_bounce
    )
    channels = (event.channel,) if event.channel else PROVIDER_CHANNELS.get(event.provider, ())
    target = _suppressible(channels[0], event.address) if channels else None
    if suppress and target is not None:
        await add_suppression(
            session,
            kind=target[0],
            value=target[1],
            reason=(
                SuppressionReason.OPT_OUT
                if event.kind is InboundKind.OPT_OUT
                else SuppressionReason.BOUNCED
            ),
            now=now,
            actor=actor,
            note=f"reported by {event.provider} (event {event.event_id}); no thread matched",
        )
    await repository.add(
        session,
        SystemEvent(
            type="outreach.inbound_unmatched",
            entity_type="outreach_thread",
            actor=actor,
            data={
                "provider": event.provider,
                "eventId": event.event_id,
                "kind": event.kind.value,
                "channel": event.channel.value if event.channel else None,
                "providerMessageId": event.provider_message_id,
                "externalThreadId": event.external_thread_id,
            },
        ),
    )
