"""Generated documents kept in the database: ``documentation_jobs.documents``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

The scheduler writes the documents to its ``DOCS_OUTPUT_DIR`` and now also into the job row
(name → content), so the gateway serves the latest of each (``GET /documentation/{name}``)
whatever container wrote the files. Jobs before this revision keep an empty object.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "documentation_jobs",
        sa.Column(
            "documents",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.drop_column("documentation_jobs", "documents")
