"""From stored incidents to playbook runs: the automatic side of ``keywatch respond``.

Each tick reads the open incidents, tells people about new or escalated ones on Slack, starts
every automatic playbook whose trigger matches (one run per incident and playbook: the run id
derives from both, so a restart never starts a second one), advances runs whose retry, wait or
approval deadline has come, reverts containments whose timer ran out, and delivers the outbox.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

import detector
from detector.adapters.audit import Ledger
from detector.adapters.keys import load_backend
from detector.adapters.slack.notifier import SlackNotifier
from detector.adapters.store import Store
from detector.adapters.store.feedback import FeedbackRepository
from detector.config import Settings
from detector.domain.alerts import Alert, Severity
from detector.domain.catalog import KeyCatalog
from detector.domain.incidents import Incident, IncidentStatus
from detector.domain.keys import KeyBackend
from detector.domain.runs import SYSTEM
from detector.response.planning import Context, matches
from detector.response.playbook import Mode, Playbook, PlaybookError, load_playbook
from detector.response.runner import PlaybookRunner

log = logging.getLogger(__name__)
ACTIVE_STATUSES = (IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED)


def default_playbooks_dir() -> Path:
    """The ``playbooks/`` shipped beside the package (a source checkout or the container image)."""
    return Path(detector.__file__).resolve().parents[1] / "playbooks"


def load_library(directory: Path) -> list[Playbook]:
    """Every ``*.yaml`` playbook of a directory, validated; the first bad one raises PlaybookError."""
    files = sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))
    if not files:
        raise PlaybookError(f"no playbooks (*.yaml) in {directory}")
    return [load_playbook(f.read_text(encoding="utf-8"), str(f)) for f in files]


class BackendRouter:
    """Which backend holds a key: the catalog's ``backend``, else AWS for KMS ARNs, else the default."""

    def __init__(self, settings: Settings, catalog: KeyCatalog | None = None) -> None:
        """Backends are loaded (by entry point name) the first time a key needs them."""
        self.settings = settings
        self.catalog = catalog
        self.default = settings.response.default_backend
        self._loaded: dict[str, KeyBackend] = {}

    def name_for(self, key_id: str) -> str:
        """The backend name for a key id."""
        if self.catalog is not None:
            backend = getattr(self.catalog.lookup(key_id), "backend", "")
            if backend:
                return str(backend)
        if self.default == "auto":
            return "aws-kms" if key_id.startswith("arn:aws:kms:") else "pkcs11"
        return self.default

    def __call__(self, key_id: str) -> KeyBackend:
        """The backend object for a key id."""
        name = self.name_for(key_id)
        if name not in self._loaded:
            self._loaded[name] = load_backend(name, self.settings)
        return self._loaded[name]


class LedgerAuditor:
    """The runner's Auditor port on the audit ledger."""

    def __init__(self, ledger: Ledger) -> None:
        """Append through ``ledger`` (which needs its signing key)."""
        self.ledger = ledger

    def record(
        self, actor: str, action: str, target: str, details: dict[str, Any], *, conn: Connection | None = None
    ) -> None:
        """Append one record, inside ``conn``'s transaction when given."""
        if conn is None:
            self.ledger.append(actor, action, target, details)
        else:
            self.ledger.append_in(conn, actor, action, target, details)


def incident_context(store: Store, incident: Incident) -> Context:
    """What a playbook knows about an incident: its most severe alert, and who uses the key."""
    alerts = [a for a in (store.get_alert(i) for i in incident.alert_ids) if a is not None]
    top = max(alerts, key=lambda a: (int(a.severity), a.score)) if alerts else None
    key_id = top.key_id if top else (incident.key_ids[0] if incident.key_ids else "")
    callers = sorted({a.principal for a in store.list_alerts(key_id=key_id, limit=200) if a.principal})
    return Context(
        key_id=key_id,
        incident_id=incident.incident_id,
        principal=(top.principal if top else None) or "",
        detector=top.detector if top else "",
        severity=incident.severity.label,
        environment=top.environment if top else "unknown",
        classification=top.classification if top else "internal",
        reasons=tuple(r.text for r in (top.reasons if top else [])[:5]),
        recent_callers=tuple(callers),
        detectors=tuple(sorted({a.detector for a in alerts})),
    )


def run_id_for(incident_id: str, playbook: str) -> str:
    """The automatic run of one playbook for one incident (a restart finds it again)."""
    return hashlib.sha256(f"{incident_id}\x1f{playbook}".encode()).hexdigest()[:32]


@dataclass
class Responder:
    """Starts automatic runs for incidents and keeps runs and Slack moving."""

    store: Store
    runner: PlaybookRunner
    playbooks: Sequence[Playbook]
    mode: Mode
    notifier: SlackNotifier | None = None
    deliver: Callable[[], object] | None = None  # the Slack sender's deliver_due
    seen: dict[str, Severity] = field(default_factory=dict)
    muted: dict[str, int] = field(default_factory=dict)  # all-suppressed incidents: alert count seen

    def scan(self) -> list[str]:
        """Handle new or escalated incidents; return the runs started."""
        started = []
        for status in ACTIVE_STATUSES:
            for incident in self.store.list_incidents(status=status, limit=500):
                before = self.seen.get(incident.incident_id)
                if before is not None and before >= incident.severity:
                    continue
                if self.muted.get(incident.incident_id) == incident.alert_count:
                    continue
                full = self.store.get_incident(incident.incident_id) or incident
                if FeedbackRepository(self.store).all_suppressed(full.alert_ids):
                    self.muted[incident.incident_id] = incident.alert_count  # again when alerts join
                    log.info("incident %s: every alert is suppressed, no playbook", incident.incident_id)
                    continue
                self.seen[incident.incident_id] = incident.severity
                ctx = incident_context(self.store, full)
                for pb in self.playbooks:  # containment first, the announcement after
                    if pb.trigger.auto and matches(pb, ctx):
                        run_id = run_id_for(incident.incident_id, pb.name)
                        self.runner.start(pb, ctx, self.mode, SYSTEM, run_id=run_id)
                        started.append(run_id)
                if self.notifier is not None:
                    alerts: list[Alert] = [a for a in map(self.store.get_alert, full.alert_ids) if a]
                    self.notifier.incident(full, alerts, escalated_from=before)
        return started

    def tick(self) -> list[str]:
        """One round: incidents, due runs, Slack deliveries."""
        started = self.scan()
        self.runner.tick()
        if self.deliver is not None:
            try:
                self.deliver()
            except Exception:  # Slack trouble must never stop containment
                log.exception("delivering Slack messages failed; they stay in the outbox")
        return started

    def run_forever(self, stop: threading.Event, poll_seconds: float = 0.25) -> None:
        """Tick until ``stop`` is set; errors of one round are logged and the next round goes on."""
        while not stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("responder round failed; retrying")
            stop.wait(poll_seconds)
