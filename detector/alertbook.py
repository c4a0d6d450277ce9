"""Turns findings into alerts: weighs severity by the key catalog and merges repeated windows."""

from __future__ import annotations

from dataclasses import dataclass, field

from detector.config import SeveritySettings
from detector.domain.alerts import MAX_EVIDENCE, Alert, Finding, Severity, alert_id_for
from detector.domain.catalog import KeyCatalog
from detector.features.identity import is_human

PRINCIPAL_SCOPED = frozenset({"denied_probing", "impossible_travel"})
# Scoped by principal when the principal is a person: one person up at night is one story,
# however many keys they touch (a workload on a key that idles at night is that key's story).
PERSON_SCOPED = frozenset({"off_hours"})
# The same novelty coming back is the same story: it extends its alert for much longer.
NOVELTIES = frozenset(
    {"new_geography", "new_principal", "new_operation", "impossible_travel", "unusual_admin"}
)
# A volume rise (or a changed operation mix) that ebbs and comes back within hours is one story.
RISES = frozenset({"seasonal_volume", "caller_volume", "rate_drift", "operation_mix"})


@dataclass(slots=True)
class AlertBook:
    """Open alert episodes; a finding within ``gap_windows`` of its episode's last window extends it.

    Novelty detectors (a new country, caller, operation, hop or administrator) extend their alert
    for ``novelty_gap_seconds``: the same novelty coming back an hour later is the same story.
    Sustained-volume detectors extend theirs for ``rise_gap_seconds``: a rise that ebbs and
    comes back is one rise.
    """

    catalog: KeyCatalog
    severity: SeveritySettings
    window_seconds: float
    gap_windows: int = 5
    novelty_gap_seconds: float = 86400.0
    rise_gap_seconds: float = 10800.0
    max_evidence: int = MAX_EVIDENCE
    open: dict[tuple[str, str], Alert] = field(default_factory=dict)

    def add(self, finding: Finding) -> Alert:
        """Record a finding; return the new or updated alert."""
        principal_scoped = finding.principal and (
            finding.detector in PRINCIPAL_SCOPED
            or (finding.detector in PERSON_SCOPED and is_human(finding.principal))
        )
        scope = f"principal:{finding.principal}" if principal_scoped else finding.key_id
        slot = (scope, finding.detector)
        current = self.open.get(slot)
        severity = self._weigh(finding)
        limit = self._limit(finding.detector)
        if (
            current is not None
            and current.first_window_start <= finding.window_start < current.window_end + limit
        ):
            return self._extend(current, finding, severity)
        info = self.catalog.lookup(finding.key_id)
        alert = Alert(
            alert_id=alert_id_for(scope, finding.detector, finding.principal, finding.window_start),
            key_id=finding.key_id,
            principal=finding.principal,
            detector=finding.detector,
            severity=severity,
            score=finding.score,
            window_start=finding.window_start,
            window_end=finding.window_end,
            first_window_start=finding.window_start,
            reasons=finding.reasons,
            event_ids=finding.event_ids[: self.max_evidence],
            environment=info.environment,
            classification=info.classification,
        )
        self.open[slot] = alert
        return alert

    def _extend(self, alert: Alert, finding: Finding, severity: Severity) -> Alert:
        alert.window_start = max(alert.window_start, finding.window_start)
        alert.window_end = max(alert.window_end, finding.window_end)
        alert.count += 1
        if finding.score > alert.score or severity > alert.severity:
            alert.reasons = finding.reasons
        alert.score = max(alert.score, finding.score)
        alert.severity = max(alert.severity, severity)
        room = self.max_evidence - len(alert.event_ids)
        if room > 0:
            seen = set(alert.event_ids)
            alert.event_ids.extend([e for e in finding.event_ids if e not in seen][:room])
        return alert

    def _weigh(self, finding: Finding) -> Severity:
        info = self.catalog.lookup(finding.key_id)
        shift = self.severity.environment_shift.get(info.environment, 0)
        shift += self.severity.classification_shift.get(info.classification, 0)
        return finding.severity.shift(shift)

    def _limit(self, detector: str) -> float:
        base = (self.gap_windows + 1) * self.window_seconds
        if detector in NOVELTIES:
            return max(self.novelty_gap_seconds, base)
        if detector in RISES:
            return max(self.rise_gap_seconds, base)
        return base

    def expire(self, now: float) -> None:
        """Forget episodes that can no longer be extended (keeps memory bounded)."""
        for slot in [s for s, a in self.open.items() if a.window_end + self._limit(s[1]) < now]:
            del self.open[slot]
