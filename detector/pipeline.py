"""Events in, alerts out: the one loop that replay, training and the streaming consumer share.

Events are assigned to event-time tumbling windows per key. A window closes when the watermark
(the largest event time seen minus the allowed lateness) passes its end; all keys' windows of one
period close together so per-principal aggregates span keys. A closed window is judged by the
rules at once and queued for the forest, which scores queued windows in micro-batches. The
window is then folded into the profiles, unless a rule found it severe enough to quarantine
(an attacker must not teach KeyWatch that the attack is normal). Late events (older than the
last closed window) are counted, then judged and learned as small late windows at the next
advance or flush: none vanish.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from detector.alertbook import AlertBook
from detector.config import DetectionSettings
from detector.domain.alerts import Alert, Finding, Severity
from detector.domain.catalog import KeyCatalog
from detector.domain.events import Event
from detector.features.geo import Enricher
from detector.features.identity import principal_identity
from detector.features.learning import learn_principal_window, learn_window
from detector.features.profiles import Profiles
from detector.features.schema import to_vector
from detector.features.travel import TravelTracker
from detector.features.window import KeyWindow, WindowFeatures, principal_windows, window_features
from detector.rules import KEY_RULES, PRINCIPAL_RULES, RuleContext
from detector.rules.base import top_principal
from detector.scoring.forest import ForestModel

FOREST = "isolation_forest"


@dataclass(slots=True)
class PipelineStats:
    """Counters a run reports at its end."""

    events: int = 0
    late: int = 0
    windows: int = 0
    mature_windows: int = 0
    quarantined_windows: int = 0
    evicted: int = 0
    findings: Counter[str] = field(default_factory=Counter)
    first_ts: float = math.inf
    last_ts: float = -math.inf


class Pipeline:
    """Stateful detector; feed it events in (roughly) event-time order."""

    def __init__(
        self,
        settings: DetectionSettings,
        *,
        profiles: Profiles | None = None,
        forest: ForestModel | None = None,
        catalog: KeyCatalog | None = None,
        enricher: Enricher | None = None,
        collect_rows: bool = False,
        trust_input: bool = False,
    ) -> None:
        self.settings = settings
        self.W = settings.window.seconds
        self.profiles = profiles if profiles is not None else Profiles()
        self.forest = forest if settings.forest.enabled else None
        self.enricher = enricher or Enricher(None)
        self.ctx = RuleContext(settings, self.profiles)
        self.travel = TravelTracker(settings.rules.impossible_travel.min_km)
        self.book = AlertBook(
            catalog or KeyCatalog.from_mapping(None, settings.severity.catalog_defaults.model_dump()),
            settings.severity,
            self.W,
            gap_windows=settings.alerts.merge_gap_windows,
            novelty_gap_seconds=settings.alerts.novelty_merge_hours * 3600,
            max_evidence=settings.window.max_evidence,
        )
        self.stats = PipelineStats()
        self.collect_rows = collect_rows
        self.trust_input = trust_input  # history for training: learn every window, quarantine none
        self.rows: list[list[float]] = []
        self.row_starts: list[float] = []
        self.open: dict[float, dict[str, KeyWindow]] = {}
        self.late: dict[float, dict[str, KeyWindow]] = {}
        self.max_ts = -math.inf
        self.closed_until = -math.inf
        self.next_close = math.inf
        self.last_evict = -math.inf
        self.pending: list[tuple[WindowFeatures, list[float]]] = []
        self.changed: dict[str, Alert] = {}
        self._quarantine = Severity.parse(settings.profile.quarantine_severity)

    def process(self, events: Iterable[Event]) -> None:
        """Add events; closes every window the watermark passes."""
        width, lateness = self.W, self.settings.window.allowed_lateness_seconds
        enrich, opened, stats = self.enricher.enrich, self.open, self.stats
        for ev in events:
            stats.events += 1
            if ev.country is None:  # sources that log geography skip the lookup
                enrich(ev)
            ts = ev.ts
            start = ts - ts % width
            if start < self.closed_until:
                self._late(ev)
                continue
            bucket = opened.get(start)
            if bucket is None:
                bucket = opened[start] = {}
                self.next_close = min(self.next_close, start + width)
            win = bucket.get(ev.key_id)
            if win is None:
                win = bucket[ev.key_id] = KeyWindow(ev.key_id, start, start + width)
            win.events.append(ev)
            if ev.lat is not None:
                hop = self.travel.observe(ev, principal_identity(ev.principal), self.profiles)
                if hop is not None and (win.travel is None or hop.kmh > win.travel.kmh):
                    win.travel = hop
            if ts > self.max_ts:
                self.max_ts = ts
                if ts - lateness >= self.next_close:
                    self._advance(ts - lateness)

    def finish(self) -> list[Alert]:
        """Close every open window (end of input) and score what is queued."""
        self._advance(math.inf)
        return self.flush()

    def flush(self) -> list[Alert]:
        """Score queued windows with the forest; return alerts created or changed since last call."""
        if self.late:
            self._close_late()
        if self.pending:
            self._score_pending()
        changed, self.changed = list(self.changed.values()), {}
        return changed

    def _late(self, ev: Event) -> None:
        """Hold an event whose window already closed; it is judged and learned as a late window."""
        self.stats.late += 1
        start = ev.ts - ev.ts % self.W
        bucket = self.late.setdefault(start, {})
        win = bucket.get(ev.key_id)
        if win is None:
            win = bucket[ev.key_id] = KeyWindow(ev.key_id, start, start + self.W)
        win.events.append(ev)

    def _advance(self, watermark: float) -> None:
        width = self.W
        for start in sorted(self.open):
            if start + width > watermark:
                break
            self._close_period(start, self.open.pop(start))
            self.closed_until = start + width
        self._close_late()
        self.next_close = min(self.open) + width if self.open else math.inf
        now = min(watermark, self.max_ts)
        if now - self.last_evict >= 3600:
            self._evict(now)

    def _close_late(self) -> None:
        late, self.late = self.late, {}
        for start in sorted(late):
            self._close_period(start, late[start])

    def _evict(self, now: float) -> None:
        self.last_evict = now
        idle = self.settings.window.idle_evict_seconds
        self.stats.evicted += self.profiles.evict_idle(now, idle)
        self.travel.evict(now - idle)
        for key in [k for k, (_, last) in self.ctx.drift.items() if last < now - idle]:
            del self.ctx.drift[key]
        hour = int(now // 3600)
        for slot in [s for s, (h, _, _) in self.ctx.hourly.items() if h < hour]:
            del self.ctx.hourly[slot]
        self.book.expire(now)

    def _close_period(self, start: float, bucket: dict[str, KeyWindow]) -> None:
        windows = list(bucket.values())
        by_principal = principal_windows(windows, self.settings.window.max_evidence)
        flagged_principals: set[str] = set()
        for win in windows:
            flagged_principals.update(self._close_window(win, by_principal))
        for pw in by_principal.values():
            for rule in PRINCIPAL_RULES.values():
                found = rule(pw, start, start + self.W, self.ctx)
                if found is not None:
                    self._record(found)
                    flagged_principals.add(pw.principal)
            if pw.principal not in flagged_principals:
                learn_principal_window(self.profiles, pw)

    def _close_window(self, win: KeyWindow, by_principal: dict) -> set[str]:  # type: ignore[type-arg]
        stats, p = self.stats, self.settings.profile
        stats.windows += 1
        stats.first_ts = min(stats.first_ts, win.start)
        stats.last_ts = max(stats.last_ts, win.end)
        prof = self.profiles.keys.get(win.key_id)
        if prof is not None:
            prof.last_seen = max(prof.last_seen, win.end)
        mature = prof is not None and prof.span_hours() >= p.min_history_hours and prof.events >= p.min_events
        f = window_features(win, self.profiles, by_principal, window_seconds=self.W, mature=mature,
                            v4_bits=p.ipv4_prefix, v6_bits=p.ipv6_prefix)  # fmt: skip
        quarantine = False
        flagged: set[str] = set()
        for rule in KEY_RULES.values():
            found = rule(f, self.ctx)
            if found is not None:
                self._record(found)
                quarantine = quarantine or (found.severity >= self._quarantine and not self.trust_input)
                if found.principal:
                    flagged.add(found.principal)
        if mature:
            stats.mature_windows += 1
            vector = to_vector(f.values)
            if self.collect_rows:
                self.rows.append(vector)
                self.row_starts.append(win.start)
            if self.forest is not None:
                self.pending.append((f, vector))
                if len(self.pending) >= self.settings.window.forest_batch_rows:
                    self._score_pending()
        if quarantine:
            stats.quarantined_windows += 1
        else:
            learn_window(self.profiles, f, p.max_values, p.recent_hours * 3600)
        return flagged if quarantine else set()

    def _score_pending(self) -> None:
        assert self.forest is not None  # noqa: S101 - pending is only filled when a forest exists
        batch, self.pending = self.pending, []
        rows = np.asarray([v for _, v in batch], dtype=float)
        scores = self.forest.score(rows)
        threshold = self.forest.threshold
        cap = self.settings.window.max_evidence
        novel_rows = self.forest.novel_rows(rows)
        for (f, _), row, score, novel in zip(batch, rows, scores, novel_rows, strict=True):
            if score < threshold and not novel:
                continue
            reasons = self.forest.explain(row, f.values)
            severity = Severity.HIGH if score >= threshold + 0.1 else Severity.MEDIUM
            w = f.window
            ids = [e.event_id for e in w.events[:cap]]
            self._record(Finding(FOREST, w.key_id, top_principal(f.principals), w.start, w.end,
                                 float(score), severity, reasons, ids))  # fmt: skip

    def _record(self, found: Finding) -> None:
        self.stats.findings[found.detector] += 1
        alert = self.book.add(found)
        self.changed[alert.alert_id] = alert
