"""Response: users, playbook runs and steps, approvals, Slack outbox, audit ledger.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

UTC_TIME = sa.DateTime(timezone=True)
SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    """Create the response tables."""
    op.create_table(
        "users",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("slack_user_id", sa.String(64), unique=True),
        sa.Column("token_hash", sa.String(128), unique=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "playbook_runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("playbook", sa.String(128), nullable=False),
        sa.Column("playbook_digest", sa.String(64), nullable=False),
        sa.Column("incident_id", sa.String(64), index=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("status", sa.String(32), nullable=False, index=True),
        sa.Column("requested_by", sa.String(128), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.Column("revert_at", UTC_TIME),
        sa.Column("error", sa.Text),
    )
    op.create_table(
        "playbook_steps",
        sa.Column("run_id", sa.String(64), sa.ForeignKey("playbook_runs.run_id"), primary_key=True),
        sa.Column("step_index", sa.Integer, primary_key=True),
        sa.Column("step_id", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False, unique=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("result", sa.JSON),
        sa.Column("error", sa.Text),
        sa.Column("started_at", UTC_TIME),
        sa.Column("finished_at", UTC_TIME),
        sa.Column("next_attempt_at", UTC_TIME),
    )
    op.create_table(
        "approvals",
        sa.Column("run_id", sa.String(64), sa.ForeignKey("playbook_runs.run_id"), primary_key=True),
        sa.Column("step_index", sa.Integer, primary_key=True),
        sa.Column("approver", sa.String(128), primary_key=True),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("decided_at", UTC_TIME, nullable=False),
    )
    op.create_table(
        "slack_outbox",
        sa.Column("message_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dedupe_key", sa.String(200), nullable=False, unique=True),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(128), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTC_TIME, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("slack_ts", sa.String(64)),
        sa.Column("created_at", UTC_TIME, nullable=False),
    )
    op.create_table(
        "audit_records",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=False),
        sa.Column("recorded_at", UTC_TIME, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("key_fingerprint", sa.String(64), nullable=False),
        sa.Column("signed_at", UTC_TIME, nullable=False),
    )


def downgrade() -> None:
    """Drop the response tables."""
    for name in ("audit_checkpoints", "audit_records", "slack_outbox", "approvals", "playbook_steps",
                 "playbook_runs", "users"):  # fmt: skip
        op.drop_table(name)
