"""Erased experts: ``experts.erased_at`` and an identity rule that lets a tombstone go without one.

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-06

An erasure (``POST /experts/{id}/erasure``) keeps the expert's row as a tombstone, so call
tasks, call logs and callers' statistics keep their ids, and clears every personal field,
the LinkedIn URL and the primary email included: an erased row needs no identity.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IDENTITY = "linkedin_url_normalized IS NOT NULL OR primary_email IS NOT NULL"


def _identity_rule(condition: str) -> None:
    op.drop_constraint(op.f("ck_experts_has_identity"), "experts", type_="check")
    op.create_check_constraint(op.f("ck_experts_has_identity"), "experts", condition)


def upgrade() -> None:
    op.add_column("experts", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    _identity_rule(f"{IDENTITY} OR erased_at IS NOT NULL")


def downgrade() -> None:
    # A tombstone gets a placeholder identity (never a person's), so its call tasks stay.
    op.execute(
        "UPDATE experts SET primary_email = 'erased-' || id || '@erased.invalid' "
        "WHERE erased_at IS NOT NULL AND linkedin_url_normalized IS NULL AND primary_email IS NULL"
    )
    _identity_rule(IDENTITY)
    op.drop_column("experts", "erased_at")
