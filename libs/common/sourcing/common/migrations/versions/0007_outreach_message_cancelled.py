"""An outreach message can be ``CANCELLED``: queued, never sent, its project closed.

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-06

When a project moves to COMPLETED or ARCHIVED, the outreach service cancels its messages still
waiting for the outreach agent (``delivery_status`` QUEUED): the status CHECK of
``outreach_messages`` gains ``CANCELLED``.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = "ck_outreach_messages_delivery_status"
BEFORE = ("QUEUED", "SENT", "DELIVERED", "READ", "FAILED")
AFTER = (*BEFORE, "CANCELLED")


def _check(statuses: Sequence[str]) -> str:
    return "delivery_status IN (" + ", ".join(f"'{status}'" for status in statuses) + ")"


def upgrade() -> None:
    op.drop_constraint(op.f(CONSTRAINT), "outreach_messages", type_="check")
    op.create_check_constraint(op.f(CONSTRAINT), "outreach_messages", _check(AFTER))


def downgrade() -> None:
    op.execute(
        "UPDATE outreach_messages SET delivery_status = 'FAILED' "
        "WHERE delivery_status = 'CANCELLED'"
    )
    op.drop_constraint(op.f(CONSTRAINT), "outreach_messages", type_="check")
    op.create_check_constraint(op.f(CONSTRAINT), "outreach_messages", _check(BEFORE))
