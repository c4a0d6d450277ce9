"""Initial schema: alerts, incidents, their links and timeline, dead letters, checkpoints.

Revision ID: 0001
Revises:
Create Date: 2024-05-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create every table."""
    _alerts()
    _incidents()
    _dead_letters()
    _checkpoints()


def _alerts() -> None:
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.String(64), primary_key=True),
        sa.Column("key_id", sa.Text, nullable=False),
        sa.Column("principal", sa.Text),
        sa.Column("detector", sa.String(64), nullable=False),
        sa.Column("severity", sa.Integer, nullable=False),
        sa.Column("score", sa.Double, nullable=False),
        sa.Column("window_start", UTC_TIME, nullable=False),
        sa.Column("window_end", UTC_TIME, nullable=False),
        sa.Column("first_window_start", UTC_TIME, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("environment", sa.Text, nullable=False),
        sa.Column("classification", sa.Text, nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("event_ids", sa.JSON, nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
    )
    for column in ("key_id", "principal", "detector", "window_end"):
        op.create_index(f"ix_alerts_{column}", "alerts", [column])


def _incidents() -> None:
    op.create_table(
        "incidents",
        sa.Column("incident_id", sa.String(64), primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("severity", sa.Integer, nullable=False),
        sa.Column("assignee", sa.Text),
        sa.Column("first_seen", UTC_TIME, nullable=False),
        sa.Column("last_seen", UTC_TIME, nullable=False),
        sa.Column("key_ids", sa.JSON, nullable=False),
        sa.Column("principals", sa.JSON, nullable=False),
        sa.Column("alert_count", sa.Integer, nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
    )
    op.create_index("ix_incidents_status", "incidents", ["status"])
    op.create_index("ix_incidents_last_seen", "incidents", ["last_seen"])
    op.create_table(
        "incident_alerts",
        sa.Column("alert_id", sa.String(64), sa.ForeignKey("alerts.alert_id"), primary_key=True),
        sa.Column("incident_id", sa.String(64), sa.ForeignKey("incidents.incident_id"), nullable=False),
    )
    op.create_index("ix_incident_alerts_incident_id", "incident_alerts", ["incident_id"])
    op.create_table(
        "incident_timeline",
        sa.Column("entry_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.String(64), sa.ForeignKey("incidents.incident_id"), nullable=False),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_index("ix_incident_timeline_incident_id", "incident_timeline", ["incident_id"])


def _dead_letters() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("letter_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("raw", sa.LargeBinary, nullable=False),
        sa.Column("topic", sa.Text),
        sa.Column("partition", sa.Integer),
        sa.Column("offset", sa.BigInteger),
        sa.Column("received_at", UTC_TIME, nullable=False),
        sa.UniqueConstraint("topic", "partition", "offset", name="uq_dead_letters_position"),
    )


def _checkpoints() -> None:
    op.create_table(
        "checkpoints",
        sa.Column("group", sa.Text, primary_key=True),
        sa.Column("topic", sa.Text, primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("state", sa.LargeBinary, nullable=False),
        sa.Column("saved_at", UTC_TIME, nullable=False),
    )


def downgrade() -> None:
    """Drop every table."""
    for table in (
        "checkpoints",
        "dead_letters",
        "incident_timeline",
        "incident_alerts",
        "incidents",
        "alerts",
    ):
        op.drop_table(table)
