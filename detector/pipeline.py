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

from detector.alertbook import book_for
from detector.config import DetectionSettings
from detector.domain.alerts import Alert, Finding, Severity
from detector.domain.catalog import KeyCatalog
from detector.domain.events import Event
from detector.features.geo import Enricher
from detector.features.identity import principal_identity
from detector.features.learning import learn_principal_window, learn_window
from detector.features.objects import ObjectTracker
from detector.features.profiles import Profiles
from detector.features.schema import to_vector
from detector.features.travel import TravelTracker
from detector.features.window import (
    KeyWindow,
    PrincipalWindow,
    WindowFeatures,
    WindowTally,
    principal_windows,
    tally_window,
    window_features,
)
from detector.rules import KEY_RULES, PRINCIPAL_RULES, RuleContext, seasonal_volume
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
        keep_findings: bool = False,
        trust_input: bool = False,
    ) -> None:
        self.settings = settings
        self.W = settings.window.seconds
        self.profiles = profiles if profiles is not None else Profiles()
        self.forest = forest if settings.forest.enabled else None
        self.enricher = enricher or Enricher(None)
        self.ctx = RuleContext(settings, self.profiles)
        self.travel = TravelTracker(settings.rules.impossible_travel.min_km)
        harvest = settings.rules.object_harvest
        self.objects = ObjectTracker(harvest.horizon_minutes * 60, harvest.max_tracked)
        probing = settings.rules.denied_burst.probing_minutes * 60
        self.denied_keys = ObjectTracker(probing, harvest.max_tracked)  # keys each principal was denied on
        defaults = settings.severity.catalog_defaults.model_dump()
        self.book = book_for(settings, catalog or KeyCatalog.from_mapping(None, defaults))
        self.stats = PipelineStats()
        self.collect_rows = collect_rows
        self.trust_input = trust_input  # history for training: learn every window, quarantine none
        self.rows: list[list[float]] = []  # with collect_rows: each mature window's feature vector,
        self.row_starts: list[float] = []  # its start,
        self.row_keys: list[str] = []  # its key,
        self.found: list[Finding] = []  # and every finding of every window (also with keep_findings)
        self.keep_findings = keep_findings or collect_rows
        self.open: dict[float, dict[str, KeyWindow]] = {}
        self.late: dict[float, dict[str, KeyWindow]] = {}
        self.max_ts = -math.inf
        self.closed_until = -math.inf
        self.next_close = math.inf
        self.last_evict = -math.inf
        self.pending: list[tuple[WindowFeatures, list[float]]] = []
        self.changed: dict[str, Alert] = {}
        self._quarantine = Severity.parse(settings.profile.quarantine_severity)
        # Settings the per-window path reads, looked up once.
        profile = settings.profile
        self._prefix_bits = (profile.ipv4_prefix, profile.ipv6_prefix)
        self._min_history_hours, self._min_events = profile.min_history_hours, profile.min_events
        self._max_values, self._recent_seconds = profile.max_values, profile.recent_hours * 3600
        self._batch_rows = settings.window.forest_batch_rows
        self._seasonal_callers = profile.max_seasonal_callers
        mix = settings.rules.operation_mix
        # Online, an hour moves a caller's largest operation shares a quarter of the alarming shift at
        # most, so a change cannot teach itself away; training history is trusted and learned as it is.
        self._mix_busy, self._mix_settled = mix.busy_calls, mix.min_busy_hours
        self._mix_step = 1.0 if trust_input else mix.min_shift / 4

    def process(self, events: Iterable[Event]) -> None:
        """Add events; closes every window the watermark passes."""
        width, lateness = self.W, self.settings.window.allowed_lateness_seconds
        enrich, opened, observe = self.enricher.enrich, self.open, self.travel.observe
        identity, profiles = principal_identity, self.profiles
        # The bucket of the last event's period: consecutive events mostly share it. Only _advance
        # closes buckets (and moves closed_until), so the cache is dropped after each advance.
        cur_start, bucket = -math.inf, {}
        max_ts, next_close = self.max_ts, self.next_close
        count = 0
        try:
            for ev in events:
                count += 1
                if ev.country is None:  # sources that log geography skip the lookup
                    enrich(ev)
                ts = ev.ts
                start = ts - ts % width
                if start != cur_start:
                    if start < self.closed_until:
                        self._late(ev)
                        continue
                    found = opened.get(start)
                    if found is None:
                        found = opened[start] = {}
                        if start + width < next_close:
                            next_close = self.next_close = start + width
                    cur_start, bucket = start, found
                key_id = ev.key_id
                win = bucket.get(key_id)
                if win is None:
                    win = bucket[key_id] = KeyWindow(key_id, start, start + width, [ev])
                else:
                    win.events.append(ev)
                if ev.lat is not None:
                    hop = observe(ev, identity(ev.principal), profiles)
                    if hop is not None and (win.travel is None or hop.kmh > win.travel.kmh):
                        win.travel = hop
                if ts > max_ts:
                    max_ts = self.max_ts = ts
                    if ts - lateness >= next_close:
                        self._advance(ts - lateness)
                        next_close, cur_start = self.next_close, -math.inf
        finally:
            self.stats.events += count

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
        self.objects.evict(now - idle)
        self.denied_keys.evict(now - idle)
        ctx = self.ctx
        for key in [k for k, (_, last) in ctx.drift.items() if last < now - idle]:
            del ctx.drift[key]
        for key in [k for k, state in ctx.volume.items() if state.last < now - idle]:
            del ctx.volume[key]
        hour = int(now // 3600)
        for slot in [s for s, (h, _, _) in ctx.hourly.items() if h < hour]:
            del ctx.hourly[slot]
        for key in [k for k, (h, _) in ctx.seasonal.items() if h < hour]:
            del ctx.seasonal[key]
        self.book.expire(now)

    def _close_period(self, start: float, bucket: dict[str, KeyWindow]) -> None:
        windows = list(bucket.values())
        v4, v6 = self._prefix_bits
        tallies = [tally_window(win.events, v4, v6) for win in windows]
        by_principal = principal_windows(windows, self.settings.window.max_evidence, tallies)
        self.ctx.period = by_principal
        stats = self.stats
        if windows:  # every window of a period spans [start, start + W)
            stats.windows += len(windows)
            stats.first_ts = min(stats.first_ts, start)
            stats.last_ts = max(stats.last_ts, start + self.W)
        flagged_principals: set[str] = set()
        for win, tally in zip(windows, tallies, strict=True):
            flagged = self._close_window(win, by_principal, tally)
            if flagged is not None:
                flagged_principals.update(flagged)
        for pw in by_principal.values():
            if pw.resources:
                objects = sorted(pw.resources)  # a set's order differs between processes
                pw.recent_objects = self.objects.observe(pw.principal, objects, start + self.W)
            if pw.denied_keys:  # a dict, not a set: its order reaches checkpoints
                denied = pw.denied_keys.keys()
                pw.new_denied_keys = self.denied_keys.fresh(pw.principal, denied)
                pw.recent_denied_keys = self.denied_keys.observe(pw.principal, denied, start + self.W)
            for rule in PRINCIPAL_RULES.values():
                found = rule(pw, start, start + self.W, self.ctx)
                if found is not None:
                    self._record(found)
                    flagged_principals.add(pw.principal)
            learn_principal_window(self.profiles, pw, start, self._max_values,
                                   judged=pw.principal in flagged_principals,
                                   history=self.trust_input)  # fmt: skip

    def _close_window(
        self, win: KeyWindow, by_principal: dict[str, PrincipalWindow], tally: WindowTally
    ) -> set[str] | None:
        """Judge, queue and learn one closed window; the principals to keep from learning, if any."""
        stats = self.stats
        prof = self.profiles.keys.get(win.key_id)
        mature = False
        if prof is not None:
            if win.end > prof.last_seen:
                prof.last_seen = win.end
            span_hours = int(prof.last_ts // 3600) - int(prof.first_ts // 3600) + 1
            mature = span_hours >= self._min_history_hours and prof.events >= self._min_events
        f = window_features(
            win, self.profiles, by_principal, window_seconds=self.W, mature=mature, tally=tally
        )
        quarantine = False
        flagged: set[str] | None = None
        ctx = self.ctx
        for rule in KEY_RULES.values():
            found = rule(f, ctx)
            if found is not None:
                self._record(found)
                quarantine = quarantine or (found.severity >= self._quarantine and not self.trust_input)

                if found.principal:
                    if flagged is None:
                        flagged = set()
                    flagged.add(found.principal)
        if mature:
            stats.mature_windows += 1
            vector = to_vector(f.values)
            if self.collect_rows:
                self.rows.append(vector)
                self.row_starts.append(win.start)
                self.row_keys.append(win.key_id)
            if self.forest is not None:
                self.pending.append((f, vector))
                if len(self.pending) >= self._batch_rows:
                    self._score_pending()
        if quarantine:
            stats.quarantined_windows += 1
            return flagged
        # A rise under judgement is learned as what the season expected (the rest as it is).
        seasonal = (
            None if self.trust_input else seasonal_volume.seasonal_count(ctx, win.key_id, len(win.events))
        )
        learn_window(self.profiles, f, self._max_values, self._recent_seconds, seasonal_count=seasonal,
                     caller_cap=self._seasonal_callers, mix_busy=self._mix_busy,
                     mix_settled=self._mix_settled, mix_step=self._mix_step)  # fmt: skip
        return None

    def _score_pending(self) -> None:
        assert self.forest is not None  # noqa: S101 - pending is only filled when a forest exists
        batch, self.pending = self.pending, []
        forest = self.forest
        rows = np.asarray([v for _, v in batch], dtype=float)
        novel_rows = forest.novel_rows(rows)
        scores = forest.score_above(rows, novel_rows)  # exact wherever a finding uses it
        threshold = forest.threshold
        cap = self.settings.window.max_evidence
        # Rows that are neither at the threshold (NaN counts as not below it) nor novel pass quietly.
        for i in np.flatnonzero(~(scores < threshold) | novel_rows).tolist():
            f, row, score = batch[i][0], rows[i], scores[i]
            reasons = forest.explain(row, f.values)
            severity = Severity.HIGH if score >= threshold + 0.1 else Severity.MEDIUM
            w = f.window
            ids = [e.event_id for e in w.events[:cap]]
            self._record(Finding(FOREST, w.key_id, top_principal(f.principals), w.start, w.end,
                                 float(score), severity, reasons, ids))  # fmt: skip

    def _record(self, found: Finding) -> None:
        self.stats.findings[found.detector] += 1
        if self.keep_findings:
            self.found.append(found)
        alert = self.book.add(found)
        self.changed[alert.alert_id] = alert
