"""More calls than the key's seasonal pattern allows, at once or sustained for minutes to hours.

Each key carries a one-sided CUSUM of the evidence that its rate is ``rise`` times what the hour
of day and the day of week expect (empty windows count as evidence against). While the sum is
above zero a *run* is open: its calls and its expected calls add up. The run alarms when its
total is improbable for this key, ``max_p_value`` in a negative binomial whose spread is the
key's own, learned from how far its busy days and hours strayed from its pattern before, and
when it spans ``min_windows`` windows (one burst is the spike rule's business) and it holds at
least ``min_ratio`` times the expected (a statistically clear but small rise on a
very steady key is not worth an analyst's time). A
steady key alarms on a sustained rise of a few tens of percent; a bursty batch key only when it
goes well beyond what its batches ever did. Whoever calls, from wherever: familiar callers from
familiar places are judged too: new sources, or an hour at which the key idles, make the alert
come at once and more severe; a rise by familiar sources in working hours must be sustained.
"""

from __future__ import annotations

from detector.config import SeasonalVolumeSettings
from detector.domain.alerts import Finding, Reason, Severity
from detector.domain.events import format_ts
from detector.features.identity import network_block
from detector.features.profiles import KeyProfile
from detector.features.seasonal import (
    Expectation,
    VolumeState,
    expectation,
    rise_evidence,
    run_tail,
    window_tail,
)
from detector.features.window import WindowFeatures
from detector.rules.base import RuleContext, evidence, finding, plural, top_principal

NAME = "seasonal_volume"
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def check(f: WindowFeatures, ctx: RuleContext) -> Finding | None:
    """Advance the key's run by this window (and the empty windows before it); flag an improbable run.

    The seasonal expectation is scaled by the key's recent level (calls over the last half day
    or so against what the season expected then, never below 1): a key that has grown this week
    is judged against its new level (multiplicative Holt-Winters), while one quiet day does not
    make it more sensitive. Windows of a run do not move the level.
    """
    cfg = ctx.settings.rules.seasonal_volume
    profile = ctx.key_profile(f.window.key_id)
    if not cfg.enabled or not f.mature or profile is None:
        return None
    win = f.window
    width = win.end - win.start
    state = ctx.volume.get(win.key_id) or VolumeState(win.start - width)
    if win.start <= state.last:
        return None  # a late window: see advance()
    hour = int(win.start // 3600)
    cached = ctx.seasonal.get(win.key_id)
    if cached is None or cached[0] != hour:
        covered = ctx.profiles.org.hours_covered
        cached = ctx.seasonal[win.key_id] = (
            hour,
            expectation(profile, win.start, width, cfg.prior_hours, covered),
        )
    expect = cached[1]
    ctx.volume[win.key_id] = state
    n = f.values["data_events"] + f.values["read_events"]  # key administration is judged elsewhere
    mean = advance(state, n, expect, win.start, width, cfg)
    if mean is None:
        return None
    state.caller = top_principal(f.principals) or state.caller
    if not _news(f, profile, expect, state, cfg) or not still_rising(state, n, expect, mean):
        return None
    tail = run_tail(state.calls, state.expected, state.windows, expect, cfg.level_spread_floor)
    if tail > cfg.max_p_value:
        return None
    if routine_visit(ctx, state.caller, f):
        return None
    peers = _peers_rising(ctx, win.key_id, set(profile.principals), f)
    state.reported = True
    if peers and min(peers) < win.key_id:
        return None  # the first key of a shared surge speaks for all of them
    return _finding(f, ctx, expect, mean, tail, state, peers)


def still_rising(state: VolumeState, n: float, expect: Expectation, mean: float) -> bool:
    """Whether a window may (re)alarm: any window of a fresh run; once reported, only a clearly busy one.

    A run that has alarmed stays open while its evidence lasts; its quiet tail (a call now and
    then where hardly any is expected) must not raise the alert again.
    """
    return not state.reported or window_tail(n, expect, mean) <= _BUSY_WINDOW


_BUSY_WINDOW = 0.001


def advance(
    state: VolumeState, n: float, expect: Expectation, start: float, width: float, cfg: SeasonalVolumeSettings
) -> float | None:
    """Add a window of ``n`` calls to a run; the expected mean when the run is large enough to judge.

    Empty windows since the last one count against the rise. A run ends when its evidence is
    gone; one that holds ``min_windows``, ``min_evidence``, ``min_ratio`` and ``min_excess`` (also
    per hour) is judged by its tail. Callers pass no late window (one that starts no later than
    the last window judged: stragglers closed on their own): which stragglers gather in one
    depends on when a batch ended, and the run must not.
    """
    gap = max(round((start - state.last) / width) - 1, 0)
    state.last = start
    mean = expect.mean * state.level(cfg.level_min_expected)
    if state.score <= 0.0 and n <= mean:  # the usual case: no rise can start (its evidence is < 0)
        if state.windows:
            state.close()
        state.learn(n, expect.mean, gap, cfg.level_half_life_windows)
        return None
    if state.score > 0.0 and gap:
        state.score += gap * rise_evidence(0, mean, expect.dispersion, cfg.rise)
        state.expected += gap * mean
        state.windows += gap
    step = rise_evidence(n, mean, expect.dispersion, cfg.rise)
    if max(state.score, 0.0) + step <= 0.0:
        state.close()
        state.learn(n, expect.mean, gap, cfg.level_half_life_windows)
        return None
    if state.score <= 0.0:
        state.close()
    state.score = min(state.score + step, cfg.max_evidence)
    state.calls += n
    state.expected += mean
    state.windows += 1
    excess = max(cfg.min_excess, cfg.min_excess_per_hour * state.windows * width / 3600)
    if state.score < cfg.min_evidence or not n or state.windows < cfg.min_windows:
        return None
    if state.calls - state.expected < excess or state.calls < cfg.min_ratio * state.expected:
        return None
    return mean


def routine_visit(ctx: RuleContext, ident: str, f: WindowFeatures) -> bool:
    """Whether an organisation-wide identity makes no more calls on this key this hour than it routinely
    makes on one key.

    Backup, key-administration and deployment automation works through many keys, each in a
    burst; its burst on a key it visits rarely is that key's rise, but it is the identity's
    routine (``org_wide_keys`` keys or more, and no more calls on this key this hour than it
    made on one key in any earlier hour), from networks it always works from. Doing elsewhere
    what it always does is not news.
    """
    pp = ctx.profiles.principals.get(ident)
    if pp is None or len(pp.keys) < ctx.settings.rules.seasonal_volume.org_wide_keys:
        return False
    now = ctx.period.get(ident)
    if now is None or any(network_block(n) not in pp.networks for n in now.networks):
        return False
    key_id, hour = f.window.key_id, int(f.window.start // 3600)
    so_far = pp.key_hour.get(key_id, 0) if pp.hour == hour else 0
    return so_far + f.principals.get(ident, 0) <= pp.max_key_hour


def hour_of_week_text(ts: float) -> str:
    """The weekday and UTC hour of ``ts``.

    >>> hour_of_week_text(0.0)
    'Thursday 00:00 UTC'
    """
    return f"{_DAYS[int((ts // 86400 + 3) % 7)]} {format_ts(ts)[11:13]}:00 UTC"


def _peers_rising(ctx: RuleContext, key_id: str, callers: set[str], f: WindowFeatures) -> list[str]:
    """Other keys in a rise now whose main caller also calls this key: a shared surge of familiar sources.

    A sale, a campaign or a release moves every key a service uses at once; one notice says so.
    A rise with unfamiliar sources in it is never explained away by its peers.
    """
    cfg = ctx.settings.rules.seasonal_volume
    if f.recent_source_events >= 0.2 * f.values["events"]:
        return []
    now = f.window.start
    horizon = cfg.peer_minutes * 60
    rising = [k for k, s in ctx.volume.items()
              if k != key_id and s.caller in callers and s.windows and now - s.last <= horizon
              and s.calls >= cfg.min_ratio * s.expected]  # fmt: skip
    return rising if len(rising) + 1 >= cfg.peer_min_keys else []


def seasonal_count(ctx: RuleContext, key_id: str, calls: float) -> float | None:
    """What the seasonal baseline should learn for a window in a rise: what the season expected.

    A rise that the baseline learned while it was still being judged would explain itself away;
    learning nothing would make the hours of the rise look idle. None outside a rise.
    """
    state = ctx.volume.get(key_id)
    cfg = ctx.settings.rules.seasonal_volume
    if state is None or not state.windows or state.calls < cfg.min_ratio * state.expected:
        return None
    cached = ctx.seasonal.get(key_id)
    return min(calls, cached[1].mean) if cached is not None else None


def _news(
    f: WindowFeatures,
    profile: KeyProfile,
    expect: Expectation,
    state: VolumeState,
    cfg: SeasonalVolumeSettings,
) -> bool:
    """Whether a rise is news yet: at once from new sources or at an hour the key idles, else sustained.

    Familiar callers surge for ordinary reasons (a month-end batch, a sale, a cache rebuilt after
    a restart) for minutes to an hour; a stolen workload credential read through the service's
    own paths keeps going. So a rise by familiar sources in the key's working hours must last
    ``familiar_minutes``.
    """
    if f.recent_source_events >= 0.2 * f.values["events"]:
        return True
    if expect.mean <= cfg.idle_share * profile.events / max(profile.windows, 1):
        return True
    return state.windows * (f.window.end - f.window.start) >= cfg.familiar_minutes * 60


def _finding(
    f: WindowFeatures,
    ctx: RuleContext,
    expect: Expectation,
    mean: float,
    tail: float,
    state: VolumeState,
    peers: list[str],
) -> Finding:
    cfg = ctx.settings.rules.seasonal_volume
    win = f.window
    n = f.values["events"]
    ratio = (state.calls + 1.0) / (state.expected + 1.0)
    unfamiliar = f.recent_source_events >= 0.2 * n
    severity = Severity.HIGH if unfamiliar or ratio >= cfg.high_ratio else Severity.MEDIUM
    if peers:
        severity = Severity.LOW
    level = f", recent level {mean / expect.mean:.1f}× the season" if mean > expect.mean * 1.05 else ""
    when, minutes = hour_of_week_text(win.start), state.windows * (win.end - win.start) / 60
    text = (
        f"{plural(state.calls, 'call')} in the last {minutes:.0f} min where {state.expected:.1f} are usual "
        f"({ratio:.1f}×; {plural(n, 'call')} in this window against {mean:.2f} expected for {when}, "
        f"{expect.describe()}{level}); a run this large has a {tail:.0e} chance on this key, "
        f"limit {cfg.max_p_value:.0e}"
    )
    if peers:
        text += (f"; {plural(len(peers), 'other key')} of the same callers rose with it at the same time "
                 "(a shared surge: one notice for all)")  # fmt: skip
    reasons = [Reason("seasonal_ratio", round(ratio, 2), round(expect.mean, 3), text)]
    if unfamiliar:
        reasons.append(Reason("recent_source_events", f.recent_source_events, 0,
                              "much of it from callers or networks new to this key"))  # fmt: skip
    ids = evidence(win.events, ctx.max_evidence)
    found = finding(NAME, f, severity, round(ratio, 3), reasons, ids, top_principal(f.principals))
    found.peers = tuple(peers)
    return found
