"""Reviews belong to a model version: accepting v1's mask says nothing about v2's.

Revision ID: 0004_review_model_version
Revises: 0003_job_enqueue
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_review_model_version"
down_revision = "0003_job_enqueue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot ALTER a table in place (no-op elsewhere).
    with op.batch_alter_table("reviews") as batch:
        # NULL = a decision made before reviews had a version (or with no prediction at all).
        batch.add_column(sa.Column("model_version_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_reviews_model_version_id",
            "model_versions",
            ["model_version_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index("ix_reviews_image_version", ["image_id", "model_version_id"])


def downgrade() -> None:
    with op.batch_alter_table("reviews") as batch:
        batch.drop_index("ix_reviews_image_version")
        batch.drop_constraint("fk_reviews_model_version_id", type_="foreignkey")
        batch.drop_column("model_version_id")
