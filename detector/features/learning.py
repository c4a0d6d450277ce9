"""Folding closed windows (and late events) into the long-lived profiles."""

from __future__ import annotations

from detector.domain.events import Event
from detector.domain.operations import OpClass
from detector.features.identity import is_human, principal_identity
from detector.features.profiles import (
    KeyProfile,
    PrincipalProfile,
    Profiles,
    bump,
    hour_of_week,
)
from detector.features.window import PrincipalWindow, WindowFeatures, place_of, settled_place

_DIMENSIONS = ("operations", "countries", "principals", "prefixes", "user_agents")


def _remember_recent(
    profiles: Profiles, prof: KeyProfile, f: WindowFeatures, now: float, keep_seconds: float
) -> None:
    """Note callers, and networks at known places, first seen after maturity; forget them later."""
    recent = prof.recent_sources
    for value in f.new_principals:
        recent.setdefault("p:" + value, now)
    for value in f.new_prefixes:
        if value in f.places and settled_place(profiles, *f.places[value]):
            recent.setdefault("n:" + value, now)
    for value in [v for v, first in recent.items() if first < now - keep_seconds]:
        del recent[value]


def learn_window(profiles: Profiles, f: WindowFeatures, cap: int, recent_seconds: float = 86400.0) -> None:
    """Add a closed window's counts to its key profile and its callers' principal profiles."""
    win = f.window
    prof = profiles.keys.get(win.key_id)
    last = max(e.ts for e in win.events)
    if prof is None:
        prof = profiles.keys[win.key_id] = KeyProfile(first_ts=win.start, last_ts=last)
    prof.last_ts = max(prof.last_ts, last)
    n = len(win.events)
    prof.events += n
    prof.windows += 1
    how = hour_of_week(win.start)
    prof.how_counts[how] += n
    prof.how_sumsq[how] += n * n
    hod = how % 24
    prof.hod_max[hod] = max(prof.hod_max[hod], n)
    seen = (f.operations, f.countries, f.principals, f.prefixes, f.user_agents)
    if f.mature:
        _remember_recent(profiles, prof, f, win.start, recent_seconds)
    for dim, counts in zip(_DIMENSIONS, seen, strict=True):
        store = getattr(prof, dim)
        for value, c in counts.items():
            if not bump(store, value, c, cap) and dim not in prof.saturated:
                prof.saturated.append(dim)
    for ident, c in f.data_callers.items():
        bump(prof.data_principals, ident, c, cap)
    for _, cls, ident in f.privileged:
        bump(prof.admin_principals, ident, 1, cap)
        if cls is OpClass.DESTRUCTIVE:
            bump(prof.destructive_principals, ident, 1, cap)
    prof.max_denied_window = max(prof.max_denied_window, f.denied)
    for country, c in f.countries.items():
        profiles.org.countries[country] = profiles.org.countries.get(country, 0) + c
    profiles.org.events += n
    _learn_callers(profiles, win.key_id, win.events, f, cap, recent_seconds)


def _learn_callers(
    profiles: Profiles, key_id: str, events: list[Event], f: WindowFeatures, cap: int, recent_seconds: float
) -> None:
    for ident, c in f.principals.items():
        pp = _principal(profiles, ident, events[0].ts)
        pp.events += c
        bump(pp.keys, key_id, c, cap)
    key_prof = profiles.keys[key_id]
    # Windows sit inside one UTC hour (their length divides an hour), so per-caller counts
    # stand for per-event updates; the window's last event time stands for each caller's.
    hod, last = int(f.window.start // 3600) % 24, max(e.ts for e in events)
    for ident, c in f.principals.items():
        pp = profiles.principals[ident]
        pp.hod_counts[hod] += c
        pp.last_ts = max(pp.last_ts, last)
        if is_human(ident):
            hours = key_prof.people_hours.get(ident)
            if hours is None and len(key_prof.people_hours) < cap:
                hours = key_prof.people_hours[ident] = [0] * 24
            if hours is not None:
                hours[hod] += c
    located: dict[tuple[str, str, float | None, float | None], int] = {}
    for ev in events:
        if ev.country or ev.lat is not None:
            spot = (principal_identity(ev.principal), ev.country or "", ev.lat, ev.lon)
            located[spot] = located.get(spot, 0) + 1
    for (ident, country, lat, lon), c in located.items():
        pp = profiles.principals[ident]
        if lat is not None and lon is not None:
            _learn_place(pp, place_of(lat, lon), f.window.start, cap, recent_seconds, c)
        if country:
            bump(pp.countries, country, c, cap)
    for _, cls, ident in f.privileged:
        pp = profiles.principals[ident]
        bump(pp.admin_keys, key_id, 1, cap)
        if cls is OpClass.DESTRUCTIVE:
            pp.destructive_events += 1


def learn_principal_window(profiles: Profiles, pw: PrincipalWindow) -> None:
    """Remember the largest denial count and key spread a principal has shown in one window."""
    pp = profiles.principals.get(pw.principal)
    if pp is None:
        return
    pp.max_denied_window = max(pp.max_denied_window, pw.denied)
    pp.max_keys_window = max(pp.max_keys_window, len(pw.keys))


def _learn_place(
    pp: PrincipalProfile, place: str, ts: float, cap: int, recent_seconds: float, count: int = 1
) -> None:
    """Count a place; one first seen after a day of history stays "recent" for ``recent_seconds``."""
    if place not in pp.places and ts - pp.first_ts >= 86400:
        pp.recent_places[place] = ts
    bump(pp.places, place, count, cap)
    if pp.recent_places:
        for old in [p for p, first in pp.recent_places.items() if first < ts - recent_seconds]:
            del pp.recent_places[old]


def _principal(profiles: Profiles, ident: str, ts: float) -> PrincipalProfile:
    pp = profiles.principals.get(ident)
    if pp is None:
        pp = profiles.principals[ident] = PrincipalProfile(first_ts=ts, last_ts=ts)
    return pp
