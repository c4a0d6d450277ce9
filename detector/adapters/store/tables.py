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
