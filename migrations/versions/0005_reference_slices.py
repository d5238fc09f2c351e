"""Reference masks may label only some slices: the slices corrected in Review.

Revision ID: 0005_reference_slices
Revises: 0004_review_model_version
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_reference_slices"
down_revision = "0004_review_model_version"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reference_masks") as batch:
        # NULL = every slice is labelled (an uploaded label volume); a list = only those slices.
        batch.add_column(sa.Column("slices", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reference_masks") as batch:
        batch.drop_column("slices")
