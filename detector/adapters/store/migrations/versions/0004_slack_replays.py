"""Slack request signatures already accepted, so a replay is refused by every API process, restarts included.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``slack_replays``."""
    op.create_table(
        "slack_replays",
        sa.Column("signature", sa.String(128), primary_key=True),
        sa.Column("request_ts", sa.BigInteger, nullable=False, index=True),
    )


def downgrade() -> None:
    """Drop ``slack_replays``."""
    op.drop_table("slack_replays")
