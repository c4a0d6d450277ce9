"""One caller using a key far beyond its own pattern there: its hours, its weekdays, its volume.

The key-wide test (:mod:`detector.rules.seasonal_volume`) misses a caller whose night or rest-day
use hides under other callers' routine traffic on a shared key (a backup job at night, another
service at the weekend). This rule runs the same sequential test per key and caller, against
what that caller does on that key by hour of day and day of week (learned as 31 counters per
caller, for up to ``profile.max_seasonal_callers`` callers a key), with the key's spread. A
caller that makes most of a key's calls is the key, judged by the key-wide test alone.
"""

from __future__ import annotations

from detector.config import SeasonalVolumeSettings
from detector.domain.alerts import Finding, Reason, Severity
from detector.features.seasonal import VolumeState, caller_expectation, run_tail
from detector.features.window import WindowFeatures
from detector.rules.base import RuleContext, evidence, finding, plural
from detector.rules.seasonal_volume import advance, hour_of_week_text, routine_visit, still_rising

NAME = "caller_volume"
_MAIN_SHARE = 0.8  # a caller making this share of a key's calls is judged with the key


def check(f: WindowFeatures, ctx: RuleContext) -> Finding | None:
    """Advance each known caller's run on this key; flag the most improbable one."""
    cfg = ctx.settings.rules.seasonal_volume
    if not ctx.settings.rules.caller_volume.enabled or not cfg.enabled or not f.mature:
        return None
    win = f.window
    profile = ctx.key_profile(win.key_id)
    key = ctx.seasonal.get(win.key_id)
    if profile is None or key is None:
        return None
    whole = ctx.volume.get(win.key_id)
    if whole is not None and whole.reported and whole.windows:
        return None  # the key-wide test has alarmed on this rise: one alert tells it
    width, hour = win.end - win.start, int(win.start // 3600)
    best: tuple[float, str, VolumeState, float, float] | None = None
    for ident, n in f.principals.items():
        counts = profile.caller_counts.get(ident)
        if counts is None or sum(counts[:24]) >= _MAIN_SHARE * profile.events:
            continue  # new to the key: new_principal's business; most of its calls: seasonal_volume's
        scope = f"{win.key_id}\x1f{ident}"
        state = ctx.volume.get(scope) or VolumeState(win.start - width)
        if win.start <= state.last:
            continue  # a late window (see seasonal_volume.advance)
        cached = ctx.seasonal.get(scope)
        if cached is None or cached[0] != hour:
            covered = ctx.profiles.org.hours_covered
            expect = caller_expectation(counts, profile.last_ts, win.start, width, cfg.prior_hours, covered,
                                        key[1])  # fmt: skip
            cached = ctx.seasonal[scope] = (hour, expect)
        ctx.volume[scope] = state
        mean = advance(state, float(n), cached[1], win.start, width, cfg)
        if mean is None or not still_rising(state, n, cached[1], mean) or routine_visit(ctx, ident, f):
            continue
        if not _news(
            state, cached[1].mean, counts, profile.last_ts, width, cfg.idle_share, cfg.familiar_minutes
        ):
            continue
        tail = run_tail(state.calls, state.expected, state.windows, cached[1], cfg.level_spread_floor)
        if tail <= cfg.max_p_value and (best is None or tail < best[0]):
            best = (tail, ident, state, mean, float(n))
    if best is None:
        return None
    best[2].reported = True
    peers = _rising_elsewhere(ctx, win.key_id, best[1], cfg)
    if peers and min(peers) < win.key_id:
        return None  # the caller rises on several keys at once: its first key speaks for all
    return _finding(f, ctx, *best, peers)


def _rising_elsewhere(ctx: RuleContext, key_id: str, ident: str, cfg: SeasonalVolumeSettings) -> list[str]:
    """Other keys on which the same caller is in a rise now (a service-wide surge)."""
    suffix = f"\x1f{ident}"
    now = ctx.volume[f"{key_id}{suffix}"].last
    own = f"{key_id}{suffix}"
    keys = [k[: -len(suffix)] for k, s in ctx.volume.items()
            if k.endswith(suffix) and k != own and s.windows and now - s.last <= cfg.peer_minutes * 60
            and s.calls >= cfg.min_ratio * s.expected]  # fmt: skip
    return keys if len(keys) + 1 >= cfg.peer_min_keys else []


def _news(
    state: VolumeState,
    mean: float,
    counts: list[float],
    last_ts: float,
    width: float,
    idle_share: float,
    familiar_minutes: float,
) -> bool:
    """At once at an hour the caller idles at on this key; otherwise once sustained."""
    windows = max((last_ts - counts[31]) / width, 1.0)
    if mean <= idle_share * sum(counts[:24]) / windows:
        return True
    return state.windows * width >= familiar_minutes * 60


def _finding(
    f: WindowFeatures,
    ctx: RuleContext,
    tail: float,
    ident: str,
    state: VolumeState,
    mean: float,
    n: float,
    peers: list[str],
) -> Finding:
    win = f.window
    ratio = (state.calls + 1.0) / (state.expected + 1.0)
    severity = Severity.HIGH if ratio >= ctx.settings.rules.seasonal_volume.high_ratio else Severity.MEDIUM
    if peers:
        severity = Severity.LOW
    when, minutes = hour_of_week_text(win.start), state.windows * (win.end - win.start) / 60
    text = (
        f"{ident} made {plural(state.calls, 'call')} on this key in the last {minutes:.0f} min where it "
        f"usually makes {state.expected:.1f} ({ratio:.1f}×; {mean:.2f} a window expected of it for {when}); "
        f"a run this large has a {tail:.0e} chance for this caller on this key"
    )
    if peers:
        text += f"; it rose on {plural(len(peers), 'other key')} at the same time (one notice for all)"
    reasons = [Reason("caller_ratio", round(ratio, 2), round(mean, 3), text)]
    ids = evidence(win.events, ctx.max_evidence, lambda e: e.principal.startswith(ident))
    found = finding(NAME, f, severity, round(ratio, 3), reasons, ids, ident)
    found.peers = tuple(peers)
    return found
