"""Factories of the outreach tests: reachable experts, enriched leads, screening questions."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import Expert, Lead, Project, ScreeningQuestion
from sourcing.common.models.enums import Channel, ContactSource, ContactType
from sourcing.common.statemachines import LeadStatus
from tests.factories import (
    create_expert,
    create_expert_contact,
    create_lead,
    create_screening_question,
)

# What each channel addresses (accepted by the sandbox's vendors).
RECIPIENTS: dict[Channel, str] = {
    Channel.PHONE: "+14155550100",
    Channel.EMAIL: "dana@example.com",
    Channel.LINKEDIN: "ACoAAAdana",
    Channel.WHATSAPP: "+14155550100",
    Channel.RESPONDIO: "+14155550100",
    Channel.SMS: "+14155550100",
    Channel.IMESSAGE: "+14155550100",
    Channel.LINE: "U4af4980629d1a2b3c4d5e6f7a8b9c0d1",
    Channel.WECHAT: "oDF3iY9ffA-hqb2vVvbr7qxf6A0Q",
    Channel.VIBER: "01234567890A=",
    Channel.TELEGRAM: "123456789",
    Channel.KAKAOTALK: "abcdefgh0123456789",
    Channel.VOICEMAIL: "+14155550100",
}


async def create_reachable_expert(
    session: AsyncSession,
    *,
    email: str | None = "dana@example.com",
    phone: str | None = None,
    **overrides: Any,
) -> Expert:
    """An expert with a professional email (and a phone) contact."""
    expert = await create_expert(session, **overrides)
    if email:
        await create_expert_contact(
            session, expert=expert, value=email, value_normalized=email.lower()
        )
    if phone:
        await create_expert_contact(
            session,
            expert=expert,
            type=ContactType.PHONE.value,
            value=phone,
            value_normalized=phone,
            is_professional=None,
            source=ContactSource.ENRICHMENT.value,
        )
    return expert


async def create_enriched_lead(session: AsyncSession, *, project: Project, expert: Expert) -> Lead:
    return await create_lead(
        session, project=project, expert=expert, status=LeadStatus.ENRICHED.value
    )


async def create_questions(
    session: AsyncSession, *, project: Project, required: tuple[bool, ...] = (True, True, False)
) -> list[ScreeningQuestion]:
    """Questions in display order 1..n (created in reverse to prove the ordering)."""
    questions = [
        await create_screening_question(
            session,
            project=project,
            prompt=f"Question {index}?",
            display_order=index,
            required=flag,
        )
        for index, flag in reversed(list(enumerate(required, start=1)))
    ]
    return sorted(questions, key=lambda q: q.display_order)


# --- a throw-away RSA key for the Google service-account tests --------------------------------


def rsa_test_key() -> tuple[str, str]:
    """A fresh PKCS#8 PEM private key and its PEM public key (tests only)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public
