"""Never contact again: the one rule every context applies before reaching a person.

Two kinds of suppression:

- **a person** (``expert_suppressions``, or ``experts.suppressed_at``): a never-contact-again
  call outcome, an opt-out, an operator's decision. Nothing reaches them on any channel, no call
  task is made, a new lead of theirs is DISQUALIFIED.
- **an address** (``contact_suppressions``): an email, a phone number, a LinkedIn URL or a whole
  email domain, entered by an operator, reported by a channel (opt-out, hard bounce) or kept
  hashed by an erasure. Rows match by the SHA-256 of the normalised value, so an erased person
  is still recognised without their data. A suppressed LinkedIn URL names a person; a suppressed
  email names a person too unless it only bounced; phones and domains refuse that address only.

``address_refusal`` is the one question channels ask about an address: the region rule first
(a personal mailbox where only professional ones may be used), then the suppressions.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from sourcing.common.models import ContactSuppression, Expert, ExpertSuppression
from sourcing.common.models.enums import SuppressedContactKind, SuppressionReason
from sourcing.people.contacts import email_domain, region_refusal
from sourcing.people.identity import normalize_email, normalize_linkedin_url
from sourcing.people.phones import to_e164

# A bounce says the address is dead, not that its owner objected.
PERSON_REASONS: Final = tuple(
    reason.value for reason in SuppressionReason if reason is not SuppressionReason.BOUNCED
)
REGION_REFUSAL: Final = "REGION"


def normalize_suppressed_value(kind: SuppressedContactKind, value: str) -> str | None:
    """The form a suppression of ``kind`` is stored and matched in; None when ``value`` is not
    one (an email without ``@``, a number that is not a phone, a URL off linkedin.com)."""
    if kind is SuppressedContactKind.EMAIL:
        return normalize_email(value)
    if kind is SuppressedContactKind.PHONE:
        return to_e164(value)
    if kind is SuppressedContactKind.LINKEDIN_URL:
        return normalize_linkedin_url(value)
    domain = value.strip().lstrip("@").strip(".").lower()
    if domain.startswith("www."):
        domain = domain[4:]
    return domain if "." in domain and "@" not in domain and " " not in domain else None


def value_hash(normalized: str) -> str:
    """SHA-256 (hex) of a normalised value: what a suppression matches on."""
    return hashlib.sha256(normalized.encode()).hexdigest()


def _sql_hash(
    column: ColumnElement[str] | InstrumentedAttribute[str] | InstrumentedAttribute[str | None],
) -> ColumnElement[str]:
    """``value_hash`` computed by PostgreSQL for a stored, already normalised column."""
    return func.encode(func.sha256(func.convert_to(column, "UTF8")), "hex")


def _hash_of(kind: SuppressedContactKind, value: str | None) -> str | None:
    normalized = normalize_suppressed_value(kind, value) if value else None
    return value_hash(normalized) if normalized else None


def _contact_named(
    kind: SuppressedContactKind, hashed: ColumnElement[str] | str, *, person_only: bool
) -> ColumnElement[bool]:
    condition = and_(ContactSuppression.kind == kind.value, ContactSuppression.value_hash == hashed)
    if person_only:
        condition = and_(condition, ContactSuppression.reason.in_(PERSON_REASONS))
    return exists().where(condition)


def _identities_named(*, linkedin_url: str | None, email: str | None) -> list[ColumnElement[bool]]:
    """Suppressions that recognise the person behind a new lead's identities."""
    named: list[ColumnElement[bool]] = []
    linkedin = normalize_linkedin_url(linkedin_url)
    if linkedin is not None:
        named.append(exists().where(ExpertSuppression.linkedin_url_normalized == linkedin))
        named.append(
            _contact_named(
                SuppressedContactKind.LINKEDIN_URL, value_hash(linkedin), person_only=False
            )
        )
    address = normalize_email(email)
    if address is not None:
        named.append(exists().where(func.lower(ExpertSuppression.email) == address))
        named.append(
            _contact_named(SuppressedContactKind.EMAIL, value_hash(address), person_only=True)
        )
    return named


def _contact_names_expert() -> ColumnElement[bool]:
    """A person-level contact suppression names the ``Expert`` row of the query: by id, by
    LinkedIn URL or by primary email."""
    return and_(
        ContactSuppression.reason.in_(PERSON_REASONS),
        or_(
            ContactSuppression.expert_id == Expert.id,
            and_(
                ContactSuppression.kind == SuppressedContactKind.LINKEDIN_URL.value,
                ContactSuppression.value_hash == _sql_hash(Expert.linkedin_url_normalized),
            ),
            and_(
                ContactSuppression.kind == SuppressedContactKind.EMAIL.value,
                ContactSuppression.value_hash == _sql_hash(func.lower(Expert.primary_email)),
            ),
        ),
    )


def suppressed_expert() -> ColumnElement[bool]:
    """SQL truth of the person rule for the row of a query over ``Expert``."""
    return or_(
        Expert.suppressed_at.is_not(None),
        exists().where(ExpertSuppression.expert_id == Expert.id),
        exists().where(_contact_names_expert()),
    )


def suppressed_phone(
    column: InstrumentedAttribute[str] | InstrumentedAttribute[str | None],
) -> ColumnElement[bool]:
    """SQL truth for a stored E.164 number: may it not be dialled or texted?"""
    return _contact_named(SuppressedContactKind.PHONE, _sql_hash(column), person_only=False)


def suppressed(
    expert_id: uuid.UUID, *, linkedin_url: str | None = None, email: str | None = None
) -> ColumnElement[bool]:
    """SQL truth of the person rule for one expert and the identities a new lead brings."""
    own = exists(select(Expert.id).where(Expert.id == expert_id, suppressed_expert()))
    return or_(own, *_identities_named(linkedin_url=linkedin_url, email=email))


async def is_suppressed(
    session: AsyncSession,
    expert_id: uuid.UUID,
    *,
    linkedin_url: str | None = None,
    email: str | None = None,
) -> bool:
    """Whether the expert (or one of the given identities) must never be contacted again."""
    return bool(
        await session.scalar(select(suppressed(expert_id, linkedin_url=linkedin_url, email=email)))
    )


async def erased_expert_id(
    session: AsyncSession, *, linkedin_url: str | None, email: str | None
) -> uuid.UUID | None:
    """The erased expert (a tombstone) these identities belonged to, or None. An erasure keeps
    the hash of each identity in a contact suppression pointing at the tombstone."""
    named = [
        and_(ContactSuppression.kind == kind.value, ContactSuppression.value_hash == hashed)
        for kind, value in (
            (SuppressedContactKind.LINKEDIN_URL, linkedin_url),
            (SuppressedContactKind.EMAIL, email),
        )
        if (hashed := _hash_of(kind, value)) is not None
    ]
    if not named:
        return None
    return await session.scalar(
        select(Expert.id)
        .join(ContactSuppression, ContactSuppression.expert_id == Expert.id)
        .where(Expert.erased_at.is_not(None), or_(*named))
        .order_by(Expert.erased_at, Expert.id)
        .limit(1)
    )


async def suppression_reason(session: AsyncSession, expert_id: uuid.UUID) -> str | None:
    """Why the expert must never be contacted again (a ``SuppressionReason`` value), or None."""
    reason = await session.scalar(
        select(ExpertSuppression.reason).where(ExpertSuppression.expert_id == expert_id)
    )
    if reason is not None:
        return reason
    reason = await session.scalar(
        select(ContactSuppression.reason)
        .where(Expert.id == expert_id, _contact_names_expert())
        .order_by(ContactSuppression.created_at)
        .limit(1)
    )
    if reason is not None:
        return reason
    stamped = await session.scalar(select(Expert.suppressed_at).where(Expert.id == expert_id))
    return SuppressionReason.MANUAL.value if stamped is not None else None


@dataclass(frozen=True, slots=True)
class AddressRefusal:
    """Why an address may not be used: ``reason`` is ``REGION`` or a ``SuppressionReason``."""

    reason: str
    message: str

    @property
    def suppressed(self) -> bool:
        return self.reason != REGION_REFUSAL


async def suppressed_addresses(
    session: AsyncSession, kind: SuppressedContactKind, addresses: Iterable[str]
) -> dict[str, str]:
    """The given addresses a suppression names, each with its reason (an email also by its
    domain). Addresses that do not normalise are not suppressed by this rule."""
    keys: dict[str, list[tuple[SuppressedContactKind, str]]] = {}
    for address in addresses:
        normalized = normalize_suppressed_value(kind, address)
        if normalized is None:
            continue
        named = [(kind, value_hash(normalized))]
        domain = email_domain(normalized) if kind is SuppressedContactKind.EMAIL else None
        if domain is not None:
            named.append((SuppressedContactKind.DOMAIN, value_hash(domain)))
        keys[address] = named
    if not keys:
        return {}
    wanted = {key for named in keys.values() for key in named}
    rows = await session.execute(
        select(ContactSuppression.kind, ContactSuppression.value_hash, ContactSuppression.reason)
        .where(ContactSuppression.value_hash.in_([h for _, h in wanted]))
        .order_by(ContactSuppression.created_at)
    )
    reasons: dict[tuple[str, str], str] = {}
    for row_kind, row_hash, row_reason in rows:
        reasons.setdefault((row_kind, row_hash), row_reason)
    found: dict[str, str] = {}
    for address, named in keys.items():
        matched = [reasons[(k.value, h)] for k, h in named if (k.value, h) in reasons]
        if matched:
            found[address] = matched[0]
    return found


async def address_refusal(
    session: AsyncSession,
    *,
    country_iso: str | None,
    kind: SuppressedContactKind | None,
    address: str,
) -> AddressRefusal | None:
    """Whether ``address`` may be used to reach an expert in ``country_iso``: the region rule
    for emails, then the address suppressions. ``kind`` None (a messenger handle) is only
    subject to the person rule, which callers check on the expert."""
    if kind is SuppressedContactKind.EMAIL:
        region = region_refusal(country_iso, address)
        if region is not None:
            return AddressRefusal(REGION_REFUSAL, region)
    if kind is None:
        return None
    reason = (await suppressed_addresses(session, kind, [address])).get(address)
    if reason is None:
        return None
    return AddressRefusal(reason, f"{address} is suppressed ({reason}): it must not be used again")


async def suppress_contact(
    session: AsyncSession,
    kind: SuppressedContactKind,
    normalized: str,
    *,
    reason: SuppressionReason,
    actor: str,
    expert_id: uuid.UUID | None = None,
    note: str | None = None,
    correlation_id: str | None = None,
) -> tuple[ContactSuppression, bool]:
    """Suppress one normalised value (idempotent on kind and value). Returns the row and whether
    it is new; an existing row keeps its first reason."""
    hashed = value_hash(normalized)
    inserted = await session.scalar(
        pg_insert(ContactSuppression)
        .values(
            kind=kind.value,
            value_hash=hashed,
            value=normalized,
            reason=reason.value,
            note=note,
            expert_id=expert_id,
            actor=actor,
            correlation_id=correlation_id,
        )
        .on_conflict_do_nothing(index_elements=["kind", "value_hash"])
        .returning(ContactSuppression.id)
    )
    row = (
        await session.scalars(
            select(ContactSuppression).where(
                ContactSuppression.kind == kind.value, ContactSuppression.value_hash == hashed
            )
        )
    ).one()
    return row, inserted is not None
