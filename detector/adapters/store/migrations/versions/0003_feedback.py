"""Feedback: verdicts, suppressions, model versions, and ``alerts.suppressed_by``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

UTC_TIME = sa.DateTime(timezone=True)
HAS_MATCH = "key_id IS NOT NULL OR principal IS NOT NULL OR detector IS NOT NULL OR country IS NOT NULL"


def upgrade() -> None:
    """Create the feedback tables and mark suppressed alerts."""
    op.add_column("alerts", sa.Column("suppressed_by", sa.String(32)))
    op.create_table(
        "verdicts",
        sa.Column("alert_id", sa.String(64), sa.ForeignKey("alerts.alert_id"), primary_key=True),
        sa.Column("verdict", sa.String(32), nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("decided_at", UTC_TIME, nullable=False),
    )
    op.create_table(
        "suppressions",
        sa.Column("suppression_id", sa.String(32), primary_key=True),
        sa.Column("key_id", sa.Text),
        sa.Column("principal", sa.Text),
        sa.Column("detector", sa.String(64)),
        sa.Column("country", sa.String(8)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("expires_at", UTC_TIME, nullable=False, index=True),
        sa.Column("revoked_at", UTC_TIME),
        sa.CheckConstraint(HAS_MATCH, name="ck_suppressions_match"),
    )
    op.create_table(
        "model_versions",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("card", sa.JSON, nullable=False),
        sa.Column("registered_at", UTC_TIME, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index(
        "uq_model_versions_active",
        "model_versions",
        ["active"],
        unique=True,
        postgresql_where=sa.text("active"),
        sqlite_where=sa.text("active"),
    )


def downgrade() -> None:
    """Drop the feedback tables and the column."""
    op.drop_index("uq_model_versions_active", table_name="model_versions")
    for name in ("model_versions", "suppressions", "verdicts"):
        op.drop_table(name)
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("suppressed_by")
