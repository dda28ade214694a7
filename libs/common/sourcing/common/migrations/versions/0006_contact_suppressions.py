"""Contact suppressions (emails, phones, LinkedIn URLs, domains) and two more reasons.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

``contact_suppressions`` names an address rather than an expert: an operator's entry, an
opt-out or a hard bounce received from a channel, or the hashed identities an erasure keeps.
Rows match by ``value_hash`` so an erased person is still recognised. ``BOUNCED`` and
``ERASED`` join the suppression reasons (both tables share the list); an outreach message can
now be ``BOUNCED`` (hard bounce) or ``CANCELLED`` (never sent: suppressed while queued).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REASONS_BEFORE = ("NEVER_CONTACT_AGAIN", "OPT_OUT", "MANUAL")
REASONS = (*REASONS_BEFORE, "BOUNCED", "ERASED")
KINDS = ("EMAIL", "PHONE", "LINKEDIN_URL", "DOMAIN")
DELIVERY_BEFORE = ("QUEUED", "SENT", "DELIVERED", "READ", "FAILED")
DELIVERY = (*DELIVERY_BEFORE, "BOUNCED", "CANCELLED")


def one_of(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


def _expert_suppression_reasons(reasons: tuple[str, ...]) -> None:
    op.drop_constraint(op.f("ck_expert_suppressions_reason"), "expert_suppressions", type_="check")
    op.create_check_constraint(
        op.f("ck_expert_suppressions_reason"), "expert_suppressions", one_of("reason", reasons)
    )


def _delivery_statuses(statuses: tuple[str, ...]) -> None:
    op.drop_constraint(
        op.f("ck_outreach_messages_delivery_status"), "outreach_messages", type_="check"
    )
    op.create_check_constraint(
        op.f("ck_outreach_messages_delivery_status"),
        "outreach_messages",
        one_of("delivery_status", statuses),
    )


def upgrade() -> None:
    _expert_suppression_reasons(REASONS)
    _delivery_statuses(DELIVERY)
    op.create_table(
        "contact_suppressions",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value_hash", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("expert_id", sa.Uuid(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.CheckConstraint(one_of("kind", KINDS), name=op.f("ck_contact_suppressions_kind")),
        sa.CheckConstraint(one_of("reason", REASONS), name=op.f("ck_contact_suppressions_reason")),
        sa.ForeignKeyConstraint(
            ["expert_id"],
            ["experts.id"],
            name=op.f("fk_contact_suppressions_expert_id"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_suppressions")),
        sa.UniqueConstraint(
            "kind", "value_hash", name=op.f("uq_contact_suppressions_kind_value_hash")
        ),
    )
    op.create_index(
        "ix_contact_suppressions_expert_id", "contact_suppressions", ["expert_id"], unique=False
    )
    op.create_index(
        "ix_contact_suppressions_created_at", "contact_suppressions", ["created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_contact_suppressions_created_at", table_name="contact_suppressions")
    op.drop_index("ix_contact_suppressions_expert_id", table_name="contact_suppressions")
    op.drop_table("contact_suppressions")
    op.execute("DELETE FROM expert_suppressions WHERE reason IN ('BOUNCED', 'ERASED')")
    _expert_suppression_reasons(REASONS_BEFORE)
    op.execute(
        "UPDATE outreach_messages SET delivery_status = 'FAILED' "
        "WHERE delivery_status IN ('BOUNCED', 'CANCELLED')"
    )
    _delivery_statuses(DELIVERY_BEFORE)
