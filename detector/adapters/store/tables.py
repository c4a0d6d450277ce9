"""The alert store's tables, for queries; the migrations in ``migrations/`` create them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps them naive, in UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Store in UTC; naive values are taken as UTC."""
        if value is None:
            return None
        utc = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Always aware, in UTC."""
        if value is None:
            return None
        stamp: datetime = value
        return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


metadata = sa.MetaData()

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("alert_id", sa.String(64), primary_key=True),
    sa.Column("key_id", sa.Text, nullable=False, index=True),
    sa.Column("principal", sa.Text, index=True),
    sa.Column("detector", sa.String(64), nullable=False, index=True),
    sa.Column("severity", sa.Integer, nullable=False),
    sa.Column("score", sa.Double, nullable=False),
    sa.Column("window_start", UTCDateTime, nullable=False),
    sa.Column("window_end", UTCDateTime, nullable=False, index=True),
    sa.Column("first_window_start", UTCDateTime, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("environment", sa.Text, nullable=False),
    sa.Column("classification", sa.Text, nullable=False),
    sa.Column("reasons", sa.JSON, nullable=False),
    sa.Column("event_ids", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("suppressed_by", sa.String(32)),  # the suppression that silenced it (issue 5)
)

incidents = sa.Table(
    "incidents",
    metadata,
    sa.Column("incident_id", sa.String(64), primary_key=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("status", sa.String(32), nullable=False, index=True),
    sa.Column("severity", sa.Integer, nullable=False),
    sa.Column("assignee", sa.Text),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("last_seen", UTCDateTime, nullable=False, index=True),
    sa.Column("key_ids", sa.JSON, nullable=False),
    sa.Column("principals", sa.JSON, nullable=False),
    sa.Column("alert_count", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# One row per alert: an alert belongs to exactly one incident, so re-saving never links twice.
incident_alerts = sa.Table(
    "incident_alerts",
    metadata,
    sa.Column("alert_id", sa.String(64), sa.ForeignKey("alerts.alert_id"), primary_key=True),
    sa.Column(
        "incident_id", sa.String(64), sa.ForeignKey("incidents.incident_id"), nullable=False, index=True
    ),
)

incident_timeline = sa.Table(
    "incident_timeline",
    metadata,
    sa.Column("entry_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "incident_id", sa.String(64), sa.ForeignKey("incidents.incident_id"), nullable=False, index=True
    ),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
)

# NULLs are distinct in unique constraints: letters without a topic position are always kept.
dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("letter_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("raw", sa.LargeBinary, nullable=False),
    sa.Column("topic", sa.Text),
    sa.Column("partition", sa.Integer),
    sa.Column("offset", sa.BigInteger),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("topic", "partition", "offset", name="uq_dead_letters_position"),
)

checkpoints = sa.Table(
    "checkpoints",
    metadata,
    sa.Column("group", sa.Text, primary_key=True),
    sa.Column("topic", sa.Text, primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True),
    sa.Column("offset", sa.BigInteger, nullable=False),
    sa.Column("state", sa.LargeBinary, nullable=False),
    sa.Column("saved_at", UTCDateTime, nullable=False),
)

# -- response (issue 4): users, playbook runs and steps, approvals, Slack outbox, audit ledger --

users = sa.Table(
    "users",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("role", sa.String(32), nullable=False),  # analyst | responder | admin
    sa.Column("slack_user_id", sa.String(64), unique=True),
    sa.Column("token_hash", sa.String(128), unique=True),  # API bearer token, hashed (issue 5)
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
)

playbook_runs = sa.Table(
    "playbook_runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("playbook", sa.String(128), nullable=False),
    sa.Column("playbook_digest", sa.String(64), nullable=False),  # sha256 of the YAML it ran
    sa.Column("incident_id", sa.String(64), index=True),
    sa.Column("mode", sa.String(16), nullable=False),  # dry-run | staged | active
    sa.Column("status", sa.String(32), nullable=False, index=True),
    sa.Column("requested_by", sa.String(128), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),  # key_id, principal, ... the run acts on
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("revert_at", UTCDateTime),  # timed auto-revert of a containment
    sa.Column("error", sa.Text),
)

playbook_steps = sa.Table(
    "playbook_steps",
    metadata,
    sa.Column("run_id", sa.String(64), sa.ForeignKey("playbook_runs.run_id"), primary_key=True),
    sa.Column("step_index", sa.Integer, primary_key=True),
    sa.Column("step_id", sa.String(128), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column(
        "status", sa.String(32), nullable=False
    ),  # pending|running|waiting|done|skipped|failed|rolled_back
    sa.Column("idempotency_key", sa.String(128), nullable=False, unique=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("result", sa.JSON),
    sa.Column("error", sa.Text),
    sa.Column("started_at", UTCDateTime),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("next_attempt_at", UTCDateTime),
)

approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column("run_id", sa.String(64), sa.ForeignKey("playbook_runs.run_id"), primary_key=True),
    sa.Column("step_index", sa.Integer, primary_key=True),
    sa.Column("approver", sa.String(128), primary_key=True),
    sa.Column("decision", sa.String(16), nullable=False),  # approve | deny
    sa.Column("comment", sa.Text),
    sa.Column("decided_at", UTCDateTime, nullable=False),
)

slack_outbox = sa.Table(
    "slack_outbox",
    metadata,
    sa.Column("message_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dedupe_key", sa.String(200), nullable=False, unique=True),
    sa.Column("method", sa.String(64), nullable=False),  # chat.postMessage | chat.update
    sa.Column("channel", sa.String(128), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),  # text, blocks, thread_ts, ...
    sa.Column("status", sa.String(16), nullable=False, index=True),  # pending | sent | failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("slack_ts", sa.String(64)),  # the message's ts once Slack accepted it
    sa.Column("created_at", UTCDateTime, nullable=False),
)

audit_records = sa.Table(
    "audit_records",
    metadata,
    sa.Column(
        "seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=False
    ),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

audit_checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column(
        "seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=False
    ),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("signature", sa.Text, nullable=False),  # base64 Ed25519 signature over seq and hash
    sa.Column("key_fingerprint", sa.String(64), nullable=False),  # sha256 of the raw public key
    sa.Column("signed_at", UTCDateTime, nullable=False),
)

# -- feedback (issue 5): verdicts on alerts, suppressions, registered model versions --

verdicts = sa.Table(
    "verdicts",
    metadata,
    sa.Column("alert_id", sa.String(64), sa.ForeignKey("alerts.alert_id"), primary_key=True),
    sa.Column("verdict", sa.String(32), nullable=False),  # true_positive | false_positive
    sa.Column("comment", sa.Text),
    sa.Column("author", sa.String(128), nullable=False),
    sa.Column("decided_at", UTCDateTime, nullable=False),
)

SUPPRESSION_HAS_MATCH = (
    "key_id IS NOT NULL OR principal IS NOT NULL OR detector IS NOT NULL OR country IS NOT NULL"
)
suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("suppression_id", sa.String(32), primary_key=True),
    sa.Column("key_id", sa.Text),
    sa.Column("principal", sa.Text),
    sa.Column("detector", sa.String(64)),
    sa.Column("country", sa.String(8)),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("author", sa.String(128), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False, index=True),
    sa.Column("revoked_at", UTCDateTime),
    sa.CheckConstraint(SUPPRESSION_HAS_MATCH, name="ck_suppressions_match"),
)

# At most one active row (a partial unique index); activation flips it in one transaction.
model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("card", sa.JSON, nullable=False),
    sa.Column("registered_at", UTCDateTime, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, default=False),
)
sa.Index(
    "uq_model_versions_active",
    model_versions.c.active,
    unique=True,
    postgresql_where=model_versions.c.active,
    sqlite_where=model_versions.c.active,
)

# Signatures of Slack requests already accepted (within Slack's 5-minute window): replays refused
# by every API process, across restarts.
slack_replays = sa.Table(
    "slack_replays",
    metadata,
    sa.Column("signature", sa.String(128), primary_key=True),
    sa.Column("request_ts", sa.BigInteger, nullable=False, index=True),
)
