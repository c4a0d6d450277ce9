"""Turns findings into alerts: weighs severity by the key catalog and merges repeated windows."""

from __future__ import annotations

from dataclasses import dataclass, field

from detector.config import DetectionSettings, SeveritySettings
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
# A volume rise (or a changed operation mix) that ebbs and comes back within hours is one story,
# whichever of these detectors tells it: one alert per key, carrying each detector's reasons.
RISES = frozenset({"seasonal_volume", "caller_volume", "rate_drift", "operation_mix", "volume_spike"})
RISE = "rise"


@dataclass(slots=True)
class AlertBook:
    """Open alert episodes; a finding within ``gap_windows`` of its episode's last window extends it.

    Novelty detectors (a new country, caller, operation, hop or administrator) extend their alert
    for ``novelty_gap_seconds``: the same novelty coming back an hour later is the same story. A
    principal's probe extends its alert over the span it is judged on (``probe_gap_seconds``).
    Volume and operation-mix detectors share one episode per key, extended for
    ``rise_gap_seconds``: a rise that ebbs and comes back is one rise, however many detectors see
    it. A shared surge (a finding naming ``peers``: the same callers rising on several keys at
    once) is one notice: a rise on any of its keys joins it while it lasts, unless it is high
    severity (new sources in it, or far beyond the surge).
    """

    catalog: KeyCatalog
    severity: SeveritySettings
    window_seconds: float
    gap_windows: int = 5
    novelty_gap_seconds: float = 86400.0
    probe_gap_seconds: float = 900.0  # a probe's span (denied_burst.probing_minutes): one probe, one alert
    rise_gap_seconds: float = 10800.0
    max_evidence: int = MAX_EVIDENCE
    open: dict[tuple[str, str], Alert] = field(default_factory=dict)
    surges: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> its surge notice's slot

    def add(self, finding: Finding) -> Alert:
        """Record a finding; return the new or updated alert."""
        severity = self._weigh(finding)
        slot = self._slot(finding, severity)
        current = self.open.get(slot)
        limit = self._limit(finding.detector)
        if (
            current is not None
            and current.first_window_start <= finding.window_start < current.window_end + limit
        ):
            return self._extend(current, finding, severity)
        scope = slot[0]
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

    def _slot(self, finding: Finding, severity: Severity) -> tuple[str, str]:
        """The episode a finding belongs to: (scope, detector or story)."""
        detector, principal = finding.detector, finding.principal
        if detector not in RISES:
            scoped = principal and (
                detector in PRINCIPAL_SCOPED or (detector in PERSON_SCOPED and is_human(principal))
            )
            return (f"principal:{principal}" if scoped else finding.key_id, detector)
        if finding.peers:  # joins a surge of its keys, or a rise of one of them, already told
            keys = (finding.key_id, *finding.peers)
            known = [self.surges[k] for k in keys if self.surges.get(k) in self.open]
            rises = [(k, RISE) for k in keys]
            known += [s for s in rises if (a := self.open.get(s)) and a.severity < Severity.HIGH]
            slot = known[0] if known else (f"surge:{min(keys)}", RISE)
            for key in keys:
                self.surges[key] = slot
            return slot
        surge = self.surges.get(finding.key_id)
        if surge is not None and surge in self.open and severity < Severity.HIGH:
            return surge
        return (finding.key_id, RISE)

    def _extend(self, alert: Alert, finding: Finding, severity: Severity) -> Alert:
        alert.count += finding.window_start != alert.window_start  # windows, not detectors, count
        alert.window_start = max(alert.window_start, finding.window_start)
        alert.window_end = max(alert.window_end, finding.window_end)
        stronger = finding.score > alert.score or severity > alert.severity
        reasons = {r.feature: r for r in alert.reasons}
        for r in finding.reasons:
            if stronger or r.feature not in reasons:
                reasons[r.feature] = r
        alert.reasons = list(reasons.values())
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
        if detector == "denied_probing":
            return max(self.probe_gap_seconds, base)
        if detector in RISES or detector == RISE:
            return max(self.rise_gap_seconds, base)
        return base

    def expire(self, now: float) -> None:
        """Forget episodes that can no longer be extended (keeps memory bounded)."""
        for slot in [s for s, a in self.open.items() if a.window_end + self._limit(s[1]) < now]:
            del self.open[slot]
        for key in [k for k, slot in self.surges.items() if slot not in self.open]:
            del self.surges[key]


def book_for(settings: DetectionSettings, catalog: KeyCatalog) -> AlertBook:
    """An empty alert book with the merge settings of ``settings``."""
    alerts = settings.alerts
    return AlertBook(
        catalog,
        settings.severity,
        settings.window.seconds,
        gap_windows=alerts.merge_gap_windows,
        novelty_gap_seconds=alerts.novelty_merge_hours * 3600,
        probe_gap_seconds=settings.rules.denied_burst.probing_minutes * 60,
        rise_gap_seconds=alerts.rise_merge_hours * 3600,
        max_evidence=settings.window.max_evidence,
    )
