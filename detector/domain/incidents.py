"""Incidents: alerts about one key, or one principal across keys, grouped into one story to work.

An alert joins the most recent incident that is not closed (resolved or false positive), that
shares its key or its principal, and whose alerts are within ``span_seconds`` of it; otherwise it
opens a new incident whose id derives from the alert's id, so a replay rebuilds the same incidents.

Status transitions (anything else raises :class:`TransitionError`; setting the current status
again is a no-op):

* ``open`` -> ``acknowledged``, ``contained``, ``resolved``, ``false_positive``
* ``acknowledged`` -> ``open`` (handed back), ``contained``, ``resolved``, ``false_positive``
* ``contained`` -> ``open`` (containment undone), ``resolved``, ``false_positive``
* ``resolved``, ``false_positive`` -> ``open`` (reopened)

Closed incidents never take new alerts: a reopened one does again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from detector.domain.alerts import Alert, Severity
from detector.domain.errors import KeyWatchError
from detector.domain.events import format_ts

SYSTEM_ACTOR = "keywatch"
ALERT_ADDED = "alert added"
STATUS_CHANGED = "status changed"
ASSIGNED = "assigned"
NOTE = "note"


class IncidentError(KeyWatchError):
    """An incident operation that cannot be done; the message says why."""


class TransitionError(IncidentError):
    """A status change the incident workflow does not allow."""


class UnknownIncidentError(IncidentError):
    """No incident has the given id."""


class IncidentStatus(StrEnum):
    """Where an incident stands; ``resolved`` and ``false_positive`` are closed."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CONTAINED = "contained"
    RESOLVED = "resolved"
    FALSE_POSITIVE = "false_positive"

    @property
    def closed(self) -> bool:
        """True for resolved and false positive: such incidents take no new alerts."""
        return self in (IncidentStatus.RESOLVED, IncidentStatus.FALSE_POSITIVE)

    def can_become(self, new: IncidentStatus) -> bool:
        """Whether the workflow allows going from this status to ``new``.

        >>> IncidentStatus.RESOLVED.can_become(IncidentStatus.OPEN)
        True
        >>> IncidentStatus.RESOLVED.can_become(IncidentStatus.CONTAINED)
        False
        """
        return new in TRANSITIONS[self]

    @classmethod
    def parse(cls, text: str) -> IncidentStatus:
        """Parse a status name (``false-positive`` and any case accepted)."""
        try:
            return cls(text.strip().lower().replace("-", "_"))
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown incident status {text!r} (expected one of {names})") from None


_S = IncidentStatus
TRANSITIONS: dict[IncidentStatus, frozenset[IncidentStatus]] = {
    _S.OPEN: frozenset({_S.ACKNOWLEDGED, _S.CONTAINED, _S.RESOLVED, _S.FALSE_POSITIVE}),
    _S.ACKNOWLEDGED: frozenset({_S.OPEN, _S.CONTAINED, _S.RESOLVED, _S.FALSE_POSITIVE}),
    _S.CONTAINED: frozenset({_S.OPEN, _S.RESOLVED, _S.FALSE_POSITIVE}),
    _S.RESOLVED: frozenset({_S.OPEN}),
    _S.FALSE_POSITIVE: frozenset({_S.OPEN}),
}


@dataclass(slots=True, frozen=True)
class TimelineEntry:
    """One thing that happened to an incident: when (epoch seconds), who, what kind, in words."""

    at: float
    actor: str
    kind: str
    text: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"at": format_ts(self.at), "actor": self.actor, "kind": self.kind, "text": self.text}


@dataclass(slots=True, frozen=True)
class Incident:
    """Alerts grouped into one story; ``severity`` is the highest of its alerts.

    ``first_seen`` is the earliest first window start of its alerts and ``last_seen`` the latest
    window end. ``alert_ids`` and ``timeline`` are empty unless loaded (the store loads the timeline
    for one incident only).
    """

    incident_id: str
    title: str
    status: IncidentStatus
    severity: Severity
    assignee: str | None
    first_seen: float
    last_seen: float
    key_ids: tuple[str, ...]
    principals: tuple[str, ...]
    alert_count: int
    alert_ids: tuple[str, ...] = ()
    timeline: tuple[TimelineEntry, ...] = ()

    @property
    def closed(self) -> bool:
        """True when resolved or a false positive."""
        return self.status.closed

    def to_dict(self) -> dict[str, Any]:
        """JSON form, timestamps in RFC 3339; ``timeline`` only when loaded."""
        return {
            "incident_id": self.incident_id,
            "title": self.title,
            "status": self.status.value,
            "severity": self.severity.label,
            "assignee": self.assignee,
            "first_seen": format_ts(self.first_seen),
            "last_seen": format_ts(self.last_seen),
            "key_ids": list(self.key_ids),
            "principals": list(self.principals),
            "alert_count": self.alert_count,
            "alert_ids": list(self.alert_ids),
        } | ({"timeline": [t.to_dict() for t in self.timeline]} if self.timeline else {})


def incident_id_for(alert: Alert) -> str:
    """Id of the incident an alert opens: derived from the alert id, so replays agree.

    >>> len(incident_id_for_id("a" * 32))
    32
    """
    return incident_id_for_id(alert.alert_id)


def incident_id_for_id(alert_id: str) -> str:
    """:func:`incident_id_for` from an alert id alone."""
    return hashlib.sha256(f"incident\x1f{alert_id}".encode()).hexdigest()[:32]


def title_for(alert: Alert) -> str:
    """Short title from the alert that opens an incident."""
    by = f" by {alert.principal}" if alert.principal else ""
    return f"{alert.detector} on {alert.key_id}{by}"


def open_incident(alert: Alert) -> Incident:
    """A new open incident holding only ``alert``."""
    return Incident(
        incident_id=incident_id_for(alert),
        title=title_for(alert),
        status=IncidentStatus.OPEN,
        severity=alert.severity,
        assignee=None,
        first_seen=alert.first_window_start,
        last_seen=alert.window_end,
        key_ids=(alert.key_id,),
        principals=(alert.principal,) if alert.principal else (),
        alert_count=1,
    )


def absorb(incident: Incident, alert: Alert, *, new: bool = True) -> Incident:
    """``incident`` widened by ``alert``; ``new=False`` for an alert it already holds that changed."""
    keys = incident.key_ids if alert.key_id in incident.key_ids else (*incident.key_ids, alert.key_id)
    principals = incident.principals
    if alert.principal and alert.principal not in principals:
        principals = (*principals, alert.principal)
    return replace(
        incident,
        severity=max(incident.severity, alert.severity),
        first_seen=min(incident.first_seen, alert.first_window_start),
        last_seen=max(incident.last_seen, alert.window_end),
        key_ids=keys,
        principals=principals,
        alert_count=incident.alert_count + (1 if new else 0),
    )


def shares_subject(incident: Incident, alert: Alert) -> bool:
    """True when the incident holds the alert's key, or its principal (across keys)."""
    return alert.key_id in incident.key_ids or bool(
        alert.principal and alert.principal in incident.principals
    )


def gap_seconds(incident: Incident, alert: Alert) -> float:
    """Time between the alert and the incident's span (0 when they overlap); late alerts count too."""
    return max(alert.window_start - incident.last_seen, incident.first_seen - alert.window_end, 0.0)


def choose_incident(alert: Alert, incidents: Iterable[Incident], span_seconds: float) -> Incident | None:
    """The incident ``alert`` joins, or None when it opens a new one.

    Among the incidents that are not closed, share the alert's key or principal and lie within
    ``span_seconds`` of it, the most recent (latest ``last_seen``; ties by id) wins.
    """
    fits = [
        inc
        for inc in incidents
        if not inc.closed and shares_subject(inc, alert) and gap_seconds(inc, alert) <= span_seconds
    ]
    return max(fits, key=lambda inc: (inc.last_seen, inc.incident_id), default=None)


@dataclass(slots=True)
class GroupingPlan:
    """What grouping decided: incidents to write, which are new, links and timeline entries."""

    incidents: dict[str, Incident] = field(default_factory=dict)
    opened: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # (alert_id, incident_id)
    timeline: list[tuple[str, TimelineEntry]] = field(default_factory=list)


def plan_grouping(
    alerts: Sequence[Alert], incidents: Iterable[Incident], span_seconds: float, *, at: float
) -> GroupingPlan:
    """Attach new ``alerts`` (in event-time order) to ``incidents`` or to incidents they open.

    ``incidents`` are the candidates already stored; an alert may also join an incident opened by
    an earlier alert of the same batch. Every attachment adds an ``alert added`` timeline entry.
    """
    plan = GroupingPlan()
    pool = {inc.incident_id: inc for inc in incidents}
    for alert in sorted(alerts, key=lambda a: (a.window_start, a.alert_id)):
        chosen = choose_incident(alert, pool.values(), span_seconds)
        if chosen is None:
            updated = open_incident(alert)
            plan.opened.append(updated.incident_id)
        else:
            updated = absorb(chosen, alert)
        pool[updated.incident_id] = plan.incidents[updated.incident_id] = updated
        plan.links.append((alert.alert_id, updated.incident_id))
        text = f"alert {alert.alert_id} ({alert.detector}, {alert.severity.label}) on {alert.key_id}"
        plan.timeline.append((updated.incident_id, TimelineEntry(at, SYSTEM_ACTOR, ALERT_ADDED, text)))
    return plan


def change_status(
    incident: Incident, new: IncidentStatus, actor: str, *, at: float, note: str | None = None
) -> tuple[Incident, TimelineEntry | None]:
    """``incident`` in status ``new`` and the timeline entry saying so; None when already there."""
    if incident.status == new:
        return incident, None
    if not incident.status.can_become(new):
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[incident.status]))
        raise TransitionError(
            f"incident {incident.incident_id} cannot go from {incident.status.value} to {new.value} "
            f"(allowed: {allowed})"
        )
    text = f"{incident.status.value} -> {new.value}" + (f": {note}" if note else "")
    return replace(incident, status=new), TimelineEntry(at, actor, STATUS_CHANGED, text)


def assign(
    incident: Incident, assignee: str | None, actor: str, *, at: float
) -> tuple[Incident, TimelineEntry]:
    """``incident`` assigned to ``assignee`` (None: unassigned) and the timeline entry."""
    text = f"assigned to {assignee}" if assignee else "unassigned"
    return replace(incident, assignee=assignee or None), TimelineEntry(at, actor, ASSIGNED, text)


def note_entry(actor: str, text: str, *, at: float) -> TimelineEntry:
    """A free-text note on the timeline."""
    if not text.strip():
        raise IncidentError("a note needs some text")
    return TimelineEntry(at, actor, NOTE, text)
