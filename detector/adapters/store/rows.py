"""Conversions between domain objects and table rows, and the records only the store knows."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from detector.domain.alerts import Alert, Reason, Severity
from detector.domain.incidents import Incident, IncidentStatus, TimelineEntry

# What a redelivered alert is compared on: everything but its id and the store's own times.
ALERT_FIELDS = (
    "key_id", "principal", "detector", "severity", "score", "window_start", "window_end",
    "first_window_start", "count", "environment", "classification", "reasons", "event_ids",
)  # fmt: skip
INCIDENT_AGGREGATES = ("severity", "first_seen", "last_seen", "key_ids", "principals", "alert_count")


@dataclass(slots=True, frozen=True)
class Checkpoint:
    """Where a consumer group stands on one partition: the next offset and its opaque state."""

    group: str
    topic: str
    partition: int
    offset: int
    state: bytes
    saved_at: float = field(default_factory=time.time)


@dataclass(slots=True, frozen=True)
class DeadLetter:
    """A record that could not be processed; ``topic/partition/offset`` make a replay idempotent."""

    error: str
    raw: bytes
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    received_at: float = field(default_factory=time.time)


def to_dt(ts: float) -> datetime:
    """Epoch seconds to an aware UTC datetime (microsecond precision, as stored)."""
    return datetime.fromtimestamp(ts, UTC)


def to_ts(value: datetime) -> float:
    """Aware datetime to epoch seconds."""
    return value.timestamp()


NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def _json_safe(value: Any) -> Any:
    """JSON columns reject NaN and infinities (PostgreSQL): keep them as their names."""
    return repr(value) if isinstance(value, float) and not math.isfinite(value) else value


def _from_json(value: Any) -> Any:
    """Inverse of :func:`_json_safe`."""
    return NON_FINITE.get(value, value) if isinstance(value, str) else value


def alert_row(alert: Alert) -> dict[str, Any]:
    """Row of the alerts table (without the store's own times)."""
    reasons = [{k: _json_safe(v) for k, v in r.to_dict().items()} for r in alert.reasons]
    return {
        "alert_id": alert.alert_id,
        "key_id": alert.key_id,
        "principal": alert.principal,
        "detector": alert.detector,
        "severity": int(alert.severity),
        "score": float(alert.score),
        "window_start": to_dt(alert.window_start),
        "window_end": to_dt(alert.window_end),
        "first_window_start": to_dt(alert.first_window_start),
        "count": alert.count,
        "environment": alert.environment,
        "classification": alert.classification,
        "reasons": reasons,
        "event_ids": list(alert.event_ids),
    }


def same_alert(stored: Mapping[Any, Any], row: Mapping[str, Any]) -> bool:
    """True when nothing in ``row`` differs from the stored row (NaN equals NaN)."""
    return all(_equal(stored[name], row[name]) for name in ALERT_FIELDS)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def alert_from_row(row: Mapping[Any, Any]) -> Alert:
    """Inverse of :func:`alert_row`."""
    return Alert(
        alert_id=row["alert_id"],
        key_id=row["key_id"],
        principal=row["principal"],
        detector=row["detector"],
        severity=Severity(row["severity"]),
        score=row["score"],
        window_start=to_ts(row["window_start"]),
        window_end=to_ts(row["window_end"]),
        first_window_start=to_ts(row["first_window_start"]),
        reasons=[Reason(**{k: _from_json(v) for k, v in r.items()}) for r in row["reasons"]],
        event_ids=list(row["event_ids"]),
        count=row["count"],
        environment=row["environment"],
        classification=row["classification"],
    )


def incident_row(incident: Incident) -> dict[str, Any]:
    """Row of the incidents table (without the store's own times)."""
    return {
        "incident_id": incident.incident_id,
        "title": incident.title,
        "status": incident.status.value,
        "severity": int(incident.severity),
        "assignee": incident.assignee,
        "first_seen": to_dt(incident.first_seen),
        "last_seen": to_dt(incident.last_seen),
        "key_ids": list(incident.key_ids),
        "principals": list(incident.principals),
        "alert_count": incident.alert_count,
    }


def incident_from_row(
    row: Mapping[Any, Any], alert_ids: tuple[str, ...] = (), timeline: tuple[TimelineEntry, ...] = ()
) -> Incident:
    """Inverse of :func:`incident_row`, with the alert ids and timeline when loaded."""
    return Incident(
        incident_id=row["incident_id"],
        title=row["title"],
        status=IncidentStatus(row["status"]),
        severity=Severity(row["severity"]),
        assignee=row["assignee"],
        first_seen=to_ts(row["first_seen"]),
        last_seen=to_ts(row["last_seen"]),
        key_ids=tuple(row["key_ids"]),
        principals=tuple(row["principals"]),
        alert_count=row["alert_count"],
        alert_ids=alert_ids,
        timeline=timeline,
    )


def timeline_row(incident_id: str, entry: TimelineEntry) -> dict[str, Any]:
    """Row of the incident_timeline table."""
    return {
        "incident_id": incident_id,
        "at": to_dt(entry.at),
        "actor": entry.actor,
        "kind": entry.kind,
        "text": entry.text,
    }


def entry_from_row(row: Mapping[Any, Any]) -> TimelineEntry:
    """Inverse of :func:`timeline_row`."""
    return TimelineEntry(at=to_ts(row["at"]), actor=row["actor"], kind=row["kind"], text=row["text"])


def dead_letter_row(letter: DeadLetter) -> dict[str, Any]:
    """Row of the dead_letters table."""
    return {
        "error": letter.error,
        "raw": bytes(letter.raw),
        "topic": letter.topic,
        "partition": letter.partition,
        "offset": letter.offset,
        "received_at": to_dt(letter.received_at),
    }


def dead_letter_from_row(row: Mapping[Any, Any]) -> DeadLetter:
    """Inverse of :func:`dead_letter_row`."""
    return DeadLetter(
        error=row["error"],
        raw=bytes(row["raw"]),
        topic=row["topic"],
        partition=row["partition"],
        offset=row["offset"],
        received_at=to_ts(row["received_at"]),
    )


def checkpoint_row(checkpoint: Checkpoint) -> dict[str, Any]:
    """Row of the checkpoints table."""
    return {
        "group": checkpoint.group,
        "topic": checkpoint.topic,
        "partition": checkpoint.partition,
        "offset": checkpoint.offset,
        "state": bytes(checkpoint.state),
        "saved_at": to_dt(checkpoint.saved_at),
    }


def checkpoint_from_row(row: Mapping[Any, Any]) -> Checkpoint:
    """Inverse of :func:`checkpoint_row`."""
    return Checkpoint(
        group=row["group"],
        topic=row["topic"],
        partition=row["partition"],
        offset=row["offset"],
        state=bytes(row["state"]),
        saved_at=to_ts(row["saved_at"]),
    )
