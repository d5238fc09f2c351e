"""Jobs remember when their queue message was sent and how often, so lost messages are found.

Revision ID: 0003_job_enqueue
Revises: 0002_jobs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_job_enqueue"
down_revision = "0002_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot ALTER a table in place (no-op elsewhere).
    with op.batch_alter_table("jobs") as batch:
        # NULL = no message is known to exist (never sent, or put back by a stopping worker).
        batch.add_column(sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("enqueue_count", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("enqueue_count")
        batch.drop_column("enqueued_at")
