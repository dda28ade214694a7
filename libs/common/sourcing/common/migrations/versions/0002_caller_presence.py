"""Caller presence: ``callers.last_seen_at``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06

A caller is online while ``last_seen_at`` (their last task request or call event) is within
``CALLER_PRESENCE_TIMEOUT_SECONDS``; NULL once they went offline (or never asked for work).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("callers", sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("callers", "last_seen_at")
