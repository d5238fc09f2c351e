"""Jobs, model versions and predictions.

Revision ID: 0002_jobs
Revises: 0001_core
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_jobs"
down_revision = "0001_core"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # jobs.model_version_id and model_versions.job_id reference each other: SQLite accepts a
    # foreign key to a table created later; elsewhere the constraint is added once both exist.
    job_model_fk = (
        [
            sa.ForeignKeyConstraint(
                ["model_version_id"],
                ["model_versions.id"],
                name="fk_jobs_model_version_id",
                ondelete="SET NULL",
            )
        ]
        if sqlite
        else []
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "project_id",
            sa.Integer(),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=True),
        sa.Column("progress", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column(
            "created_by",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("worker", sa.String(255), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("started_at", _TS, nullable=True),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("heartbeat_at", _TS, nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        *job_model_fk,
    )
    op.create_index("ix_jobs_project_id", "jobs", ["project_id"])
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_index("ix_jobs_project_status", "jobs", ["project_id", "status"])

    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "project_id",
            sa.Integer(),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "job_id", sa.Integer(), sa.ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column(
            "parent_id",
            sa.Integer(),
            sa.ForeignKey("model_versions.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("checkpoint_key", sa.String(255), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("class_names", sa.JSON(), nullable=False),
        sa.Column("epochs", sa.Integer(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("project_id", "version", name="uq_model_versions_number"),
    )
    op.create_index("ix_model_versions_project_id", "model_versions", ["project_id"])
    if not sqlite:
        op.create_foreign_key(
            "fk_jobs_model_version_id",
            "jobs",
            "model_versions",
            ["model_version_id"],
            ["id"],
            ondelete="SET NULL",
        )

    op.create_table(
        "predictions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "image_id",
            sa.Integer(),
            sa.ForeignKey("images.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "model_version_id",
            sa.Integer(),
            sa.ForeignKey("model_versions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "job_id", sa.Integer(), sa.ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("mask_key", sa.String(255), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("image_id", "model_version_id", name="uq_predictions_image_model"),
    )
    op.create_index("ix_predictions_image_id", "predictions", ["image_id"])
    op.create_index("ix_predictions_model_version_id", "predictions", ["model_version_id"])


def downgrade() -> None:
    op.drop_table("predictions")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("fk_jobs_model_version_id", "jobs", type_="foreignkey")
    op.drop_table("model_versions")
    op.drop_table("jobs")
