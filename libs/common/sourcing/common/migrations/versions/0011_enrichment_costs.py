"""Enrichment costs: credits per attempt, a project's enrichment budget, provider circuits.

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-07

``enrichment_attempts.credits`` is what a lookup cost (as the provider reported it, else its
declared cost per lookup; attempts before this revision count 0).
``projects.enrichment_budget_credits`` caps what enrichment spends on a project (NULL:
unlimited). ``provider_circuits`` holds each enrichment process's circuit breaker per provider
as it last changed, for ``GET /api/v1/providers``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "enrichment_attempts",
        sa.Column("credits", sa.Double(), server_default=sa.text("0"), nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_enrichment_attempts_credits_not_negative"), "enrichment_attempts", "credits >= 0"
    )
    op.add_column("projects", sa.Column("enrichment_budget_credits", sa.Double(), nullable=True))
    op.create_check_constraint(
        op.f("ck_projects_enrichment_budget_not_negative"),
        "projects",
        "enrichment_budget_credits IS NULL OR enrichment_budget_credits >= 0",
    )
    op.create_table(
        "provider_circuits",
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("instance", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("failures", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("open_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "state IN ('CLOSED', 'HALF_OPEN', 'OPEN')", name=op.f("ck_provider_circuits_state")
        ),
        sa.PrimaryKeyConstraint("provider", "instance", name=op.f("pk_provider_circuits")),
    )


def downgrade() -> None:
    op.drop_table("provider_circuits")
    op.drop_constraint(
        op.f("ck_projects_enrichment_budget_not_negative"), "projects", type_="check"
    )
    op.drop_column("projects", "enrichment_budget_credits")
    op.drop_constraint(
        op.f("ck_enrichment_attempts_credits_not_negative"), "enrichment_attempts", type_="check"
    )
    op.drop_column("enrichment_attempts", "credits")
