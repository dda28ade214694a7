"""Retention: time indexes for the scheduler's pruning of audit events and snapshots.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

The retention step deletes the oldest ``system_events`` and ``caller_performance_metrics``
rows in batches; these indexes let each batch read the oldest rows instead of the table.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_system_events_created_at", "system_events", ["created_at"])
    op.create_index(
        "ix_caller_performance_metrics_computed_at", "caller_performance_metrics", ["computed_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_caller_performance_metrics_computed_at", "caller_performance_metrics")
    op.drop_index("ix_system_events_created_at", "system_events")
