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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    Uuid,
    and_,
    any_,
    bindparam,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.selectable import TableValuedAlias

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


def _contact_named(
    kind: SuppressedContactKind, hashed: ColumnElement[str] | str, *, person_only: bool
) -> ColumnElement[bool]:
    condition = and_(ContactSuppression.kind == kind.value, ContactSuppression.value_hash == hashed)
    if person_only:
        condition = and_(condition, ContactSuppression.reason.in_(PERSON_REASONS))
    return exists().where(condition)


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


def _people_rows() -> TableValuedAlias:
    """The people a check is about, one row each (``ord`` is the 1-based position): arrays bound
    as parameters, so one statement serves any number of people and is compiled once."""
    return (
        func.unnest(
            bindparam("expert_ids", type_=ARRAY(Uuid())),
            bindparam("linkedin_urls", type_=ARRAY(Text())),
            bindparam("linkedin_hashes", type_=ARRAY(Text())),
            bindparam("emails", type_=ARRAY(Text())),
            bindparam("email_hashes", type_=ARRAY(Text())),
        )
        .table_valued(
            "expert_id",
            "linkedin_url",
            "linkedin_hash",
            "email",
            "email_hash",
            with_ordinality="ord",
        )
        .render_derived(name="person")
    )


def _suppressed_people_statement() -> Select[Any]:
    """The positions of the people the person rule names: their expert row (when they have
    one), or a suppression of one of the identities their new lead brings."""
    person = _people_rows()
    return (
        select(person.c.ord)
        .select_from(person.outerjoin(Expert, Expert.id == person.c.expert_id))
        .where(
            or_(
                suppressed_expert(),
                exists().where(ExpertSuppression.linkedin_url_normalized == person.c.linkedin_url),
                _contact_named(
                    SuppressedContactKind.LINKEDIN_URL,
                    person.c.linkedin_hash,
                    person_only=False,
                ),
                exists().where(func.lower(ExpertSuppression.email) == person.c.email),
                _contact_named(SuppressedContactKind.EMAIL, person.c.email_hash, person_only=True),
            )
        )
    )


def _erased_people_statement() -> Select[Any]:
    """Per position, the erased expert (a tombstone) whose identity hashes match: the earliest
    erased when several do. An erasure keeps the hash of each identity in a contact
    suppression pointing at the tombstone."""
    person = _people_rows()
    named = or_(
        and_(
            ContactSuppression.kind == SuppressedContactKind.LINKEDIN_URL.value,
            ContactSuppression.value_hash == person.c.linkedin_hash,
        ),
        and_(
            ContactSuppression.kind == SuppressedContactKind.EMAIL.value,
            ContactSuppression.value_hash == person.c.email_hash,
        ),
    )
    return (
        select(person.c.ord, Expert.id)
        .select_from(person)
        .join(ContactSuppression, named)
        .join(Expert, Expert.id == ContactSuppression.expert_id)
        .where(Expert.erased_at.is_not(None))
        .ext(distinct_on(person.c.ord))
        .order_by(person.c.ord, Expert.erased_at, Expert.id)
    )


_SUPPRESSED_PEOPLE = _suppressed_people_statement()
_ERASED_PEOPLE = _erased_people_statement()


@dataclass(frozen=True, slots=True)
class Person:
    """Whom a check is about: their expert row (if any) and the identities a lead brings."""

    expert_id: uuid.UUID | None = None
    linkedin_url: str | None = None
    email: str | None = None


def _people_parameters(people: Sequence[Person]) -> dict[str, list[Any]]:
    linkedin_urls = [normalize_linkedin_url(person.linkedin_url) for person in people]
    emails = [normalize_email(person.email) for person in people]
    return {
        "expert_ids": [person.expert_id for person in people],
        "linkedin_urls": linkedin_urls,
        "linkedin_hashes": [value_hash(url) if url else None for url in linkedin_urls],
        "emails": emails,
        "email_hashes": [value_hash(email) if email else None for email in emails],
    }


async def suppressed_people(session: AsyncSession, people: Sequence[Person]) -> list[bool]:
    """For each person, in order: must they never be contacted again? One statement for all."""
    if not people:
        return []
    named = set((await session.execute(_SUPPRESSED_PEOPLE, _people_parameters(people))).scalars())
    return [position in named for position in range(1, len(people) + 1)]


async def is_suppressed(
    session: AsyncSession,
    expert_id: uuid.UUID,
    *,
    linkedin_url: str | None = None,
    email: str | None = None,
) -> bool:
    """Whether the expert (or one of the given identities) must never be contacted again."""
    (answer,) = await suppressed_people(
        session, [Person(expert_id, linkedin_url=linkedin_url, email=email)]
    )
    return answer


async def erased_expert_ids(
    session: AsyncSession, people: Sequence[Person]
) -> list[uuid.UUID | None]:
    """For each person, in order: the erased expert (a tombstone) their identities belonged
    to, or None. One statement for all."""
    if not people:
        return []
    rows = await session.execute(_ERASED_PEOPLE, _people_parameters(people))
    erased: dict[int, uuid.UUID] = {position: expert_id for position, expert_id in rows}
    return [erased.get(position) for position in range(1, len(people) + 1)]


async def erased_expert_id(
    session: AsyncSession, *, linkedin_url: str | None, email: str | None
) -> uuid.UUID | None:
    """The erased expert (a tombstone) these identities belonged to, or None."""
    (erased,) = await erased_expert_ids(session, [Person(linkedin_url=linkedin_url, email=email)])
    return erased


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


_SUPPRESSIONS_OF_HASHES = (
    select(ContactSuppression.kind, ContactSuppression.value_hash, ContactSuppression.reason)
    .where(ContactSuppression.value_hash == any_(bindparam("hashes", type_=ARRAY(Text()))))
    .order_by(ContactSuppression.created_at)
)


async def suppressed_addresses(
    session: AsyncSession, addresses: Mapping[SuppressedContactKind, Iterable[str]]
) -> dict[str, str]:
    """The given addresses (by kind) a suppression names, each with its reason (an email also
    by its domain), in one query. Addresses that do not normalise are not suppressed by this
    rule."""
    keys: dict[str, list[tuple[SuppressedContactKind, str]]] = {}
    for kind, values in addresses.items():
        for address in values:
            normalized = normalize_suppressed_value(kind, address)
            if normalized is None:
                continue
            named = [(kind, value_hash(normalized))]
            domain = email_domain(normalized) if kind is SuppressedContactKind.EMAIL else None
            if domain is not None:
                named.append((SuppressedContactKind.DOMAIN, value_hash(domain)))
            keys.setdefault(address, []).extend(named)
    if not keys:
        return {}
    wanted = {key for named in keys.values() for key in named}
    rows = await session.execute(_SUPPRESSIONS_OF_HASHES, {"hashes": [h for _, h in wanted]})
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
    reason = (await suppressed_addresses(session, {kind: [address]})).get(address)
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
