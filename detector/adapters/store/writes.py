"""The write path of one batch: upsert alerts, group new ones into incidents, dead letters, checkpoints.

Every function here runs inside the caller's transaction and commits nothing itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from detector.adapters.store import tables as t
from detector.adapters.store.rows import (
    INCIDENT_AGGREGATES,
    Checkpoint,
    DeadLetter,
    alert_row,
    checkpoint_row,
    dead_letter_row,
    incident_from_row,
    incident_row,
    same_alert,
    timeline_row,
    to_dt,
)
from detector.domain.alerts import Alert
from detector.domain.incidents import Incident, IncidentStatus, absorb, plan_grouping

CHUNK = 500  # ids per IN (...) list, well under every backend's parameter limit


def chunks(items: Sequence[str], size: int = CHUNK) -> Iterator[Sequence[str]]:
    """``items`` in slices of at most ``size``."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def upsert_alerts(conn: Connection, alerts: Sequence[Alert], now: float) -> tuple[list[Alert], set[str]]:
    """Insert new alerts, update changed ones; return those (input order) and the ids inserted.

    An id given twice counts once, at its first place, with its last version.
    """
    latest = {a.alert_id: a for a in alerts}
    rows = {alert_id: alert_row(a) for alert_id, a in latest.items()}
    stored = _stored_alerts(conn, list(rows))
    stamp = to_dt(now)
    inserted = [r | {"created_at": stamp, "updated_at": stamp} for i, r in rows.items() if i not in stored]
    updated = [
        r | {"updated_at": stamp} for i, r in rows.items() if i in stored and not same_alert(stored[i], r)
    ]
    if inserted:
        conn.execute(t.alerts.insert(), inserted)
    update_many(conn, t.alerts, "alert_id", updated)
    touched = {r["alert_id"] for r in inserted} | {r["alert_id"] for r in updated}
    return [a for alert_id, a in latest.items() if alert_id in touched], {r["alert_id"] for r in inserted}


def _stored_alerts(conn: Connection, ids: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for part in chunks(ids):
        for row in conn.execute(sa.select(t.alerts).where(t.alerts.c.alert_id.in_(part))).mappings():
            found[row["alert_id"]] = row
    return found


def update_many(conn: Connection, table: sa.Table, key: str, rows: Sequence[dict[str, Any]]) -> None:
    """UPDATE ``table`` by primary key ``key``, one executemany for rows of the same columns."""
    if not rows:
        return
    columns = [name for name in rows[0] if name != key]
    stmt = (
        table.update()
        .where(table.c[key] == sa.bindparam(f"b_{key}"))
        .values({name: sa.bindparam(f"b_{name}") for name in columns})
    )
    conn.execute(stmt, [{f"b_{name}": row[name] for name in (key, *columns)} for row in rows])


def attach_new(conn: Connection, alerts: Sequence[Alert], span_seconds: float, now: float) -> None:
    """Group newly inserted alerts into incidents and record links and timeline entries."""
    if not alerts:
        return
    plan = plan_grouping(alerts, candidate_incidents(conn, alerts, span_seconds), span_seconds, at=now)
    stamp = to_dt(now)
    opened = set(plan.opened)
    fresh = [incident_row(i) | {"created_at": stamp, "updated_at": stamp} for i in plan.incidents.values()
             if i.incident_id in opened]  # fmt: skip
    if fresh:
        conn.execute(t.incidents.insert(), fresh)
    _write_aggregates(conn, [i for i in plan.incidents.values() if i.incident_id not in opened], now)
    conn.execute(t.incident_alerts.insert(), [{"alert_id": a, "incident_id": i} for a, i in plan.links])
    conn.execute(t.incident_timeline.insert(), [timeline_row(i, entry) for i, entry in plan.timeline])


def candidate_incidents(conn: Connection, alerts: Sequence[Alert], span_seconds: float) -> list[Incident]:
    """Stored incidents not closed that share a key or principal with ``alerts`` and are near them."""
    keys = sorted({a.key_id for a in alerts})
    principals = sorted({a.principal for a in alerts if a.principal})
    subject: sa.ColumnElement[bool] = t.alerts.c.key_id.in_(keys)
    if principals:
        subject = sa.or_(subject, t.alerts.c.principal.in_(principals))
    linked = (
        sa.select(t.incident_alerts.c.incident_id)
        .join(t.alerts, t.alerts.c.alert_id == t.incident_alerts.c.alert_id)
        .where(subject)
    )
    earliest = min(a.window_start for a in alerts) - span_seconds
    latest = max(a.window_end for a in alerts) + span_seconds
    query = sa.select(t.incidents).where(
        t.incidents.c.incident_id.in_(linked),
        t.incidents.c.status.not_in([s.value for s in IncidentStatus if s.closed]),
        t.incidents.c.last_seen >= to_dt(earliest),
        t.incidents.c.first_seen <= to_dt(latest),
    )
    return [incident_from_row(row) for row in conn.execute(query).mappings()]


def refresh_changed(conn: Connection, alerts: Sequence[Alert], now: float) -> None:
    """Widen the incidents holding alerts that changed (later window end, higher severity)."""
    if not alerts:
        return
    links: dict[str, str] = {}
    for part in chunks([a.alert_id for a in alerts]):
        query = sa.select(t.incident_alerts).where(t.incident_alerts.c.alert_id.in_(part))
        links.update((row.alert_id, row.incident_id) for row in conn.execute(query))
    incidents = load_incidents(conn, sorted(set(links.values())))
    before = dict(incidents)
    for alert in alerts:
        incident_id = links.get(alert.alert_id)
        if incident_id in incidents:
            incidents[incident_id] = absorb(incidents[incident_id], alert, new=False)
    _write_aggregates(conn, [i for key, i in incidents.items() if i != before[key]], now)


def load_incidents(conn: Connection, ids: Sequence[str]) -> dict[str, Incident]:
    """Incidents by id (without alert ids or timeline)."""
    found: dict[str, Incident] = {}
    for part in chunks(ids):
        query = sa.select(t.incidents).where(t.incidents.c.incident_id.in_(part))
        found.update((row["incident_id"], incident_from_row(row)) for row in conn.execute(query).mappings())
    return found


def linked_alert_ids(conn: Connection, incident_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Alert ids of each incident, in event-time order."""
    link, alert = t.incident_alerts.c, t.alerts.c
    found: dict[str, list[str]] = {}
    for part in chunks(incident_ids):
        query = (
            sa.select(link.incident_id, link.alert_id)
            .join(t.alerts, alert.alert_id == link.alert_id)
            .where(link.incident_id.in_(part))
            .order_by(alert.window_start, alert.alert_id)
        )
        for row in conn.execute(query):
            found.setdefault(row.incident_id, []).append(row.alert_id)
    return {incident_id: tuple(ids) for incident_id, ids in found.items()}


def _write_aggregates(conn: Connection, incidents: Iterable[Incident], now: float) -> None:
    rows = []
    for incident in incidents:
        row = incident_row(incident)
        rows.append({"incident_id": incident.incident_id, "updated_at": to_dt(now)}
                    | {name: row[name] for name in INCIDENT_AGGREGATES})  # fmt: skip
    update_many(conn, t.incidents, "incident_id", rows)


def _insert(conn: Connection, table: sa.Table) -> Any:
    """A dialect INSERT that knows ON CONFLICT."""
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table)


def insert_dead_letters(conn: Connection, letters: Sequence[DeadLetter]) -> None:
    """Insert dead letters; one already stored at the same topic position is skipped."""
    if not letters:
        return
    rows: dict[object, dict[str, Any]] = {}
    for n, letter in enumerate(letters):
        positioned = None not in (letter.topic, letter.partition, letter.offset)
        rows.setdefault(
            (letter.topic, letter.partition, letter.offset) if positioned else n, dead_letter_row(letter)
        )
    stmt = _insert(conn, t.dead_letters).on_conflict_do_nothing(
        index_elements=["topic", "partition", "offset"]
    )
    conn.execute(stmt, list(rows.values()))


def upsert_checkpoints(conn: Connection, checkpoints: Sequence[Checkpoint]) -> None:
    """Insert or replace checkpoints by (group, topic, partition); the last one given wins."""
    if not checkpoints:
        return
    rows = {(c.group, c.topic, c.partition): checkpoint_row(c) for c in checkpoints}
    stmt = _insert(conn, t.checkpoints)
    stmt = stmt.on_conflict_do_update(
        index_elements=["group", "topic", "partition"],
        set_={name: stmt.excluded[name] for name in ("offset", "state", "saved_at")},
    )
    conn.execute(stmt, list(rows.values()))
