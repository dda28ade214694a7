"""Phones in E.164: ``expert_contacts.is_dialable``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06

A phone contact whose ``value_normalized`` is E.164 is dialable; one that could not be read is
kept as given and flagged ``false`` (never dialled). Existing phone rows are marked by the
shape of their stored value; other contact types stay NULL.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("expert_contacts", sa.Column("is_dialable", sa.Boolean(), nullable=True))
    op.execute(
        "UPDATE expert_contacts SET is_dialable = (value_normalized ~ '^\\+[1-9][0-9]{6,14}$')"
        " WHERE type = 'PHONE'"
    )


def downgrade() -> None:
    op.drop_column("expert_contacts", "is_dialable")
