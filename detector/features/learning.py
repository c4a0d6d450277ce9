"""Folding closed windows (and late events) into the long-lived profiles."""

from __future__ import annotations

from detector.domain.operations import OpClass
from detector.features.identity import is_human, network_block
from detector.features.mix import caller_data_ops, learn_mix
from detector.features.profiles import (
    HOURS_PER_WEEK,
    WEEK_OFFSET_HOURS,
    KeyProfile,
    PrincipalProfile,
    Profiles,
    bump,
)
from detector.features.window import (
    KeyWindow,
    PrincipalWindow,
    WindowFeatures,
    WindowTally,
    place_of,
    settled_place,
    tally_window,
)


def _remember_recent(
    profiles: Profiles, prof: KeyProfile, f: WindowFeatures, now: float, keep_seconds: float
) -> None:
    """Note callers, and networks at known places, first seen after maturity; forget them later."""
    recent = prof.recent_sources
    for value in f.new_principals:
        recent.setdefault("p:" + value, now)
    for value in f.new_prefixes:
        if value in f.places and settled_place(profiles, *f.places[value], value):
            recent.setdefault("n:" + value, now)
    for value in [v for v, first in recent.items() if first < now - keep_seconds]:
        del recent[value]


def learn_window(
    profiles: Profiles,
    f: WindowFeatures,
    cap: int,
    recent_seconds: float = 86400.0,
    *,
    seasonal_count: float | None = None,
    caller_cap: int = 16,
    mix_busy: int = 30,
    mix_settled: int = 0,
    mix_step: float = 1.0,
) -> None:
    """Add a closed window's counts to its key profile and its callers' principal profiles.

    ``seasonal_count`` stands in for the window's call count in the seasonal counters (a rise
    being judged is learned as what the season expected, not as itself). A caller's clock hour
    with at least ``mix_busy`` data calls on the key is one busy hour of its operation mix; once a
    caller has ``mix_settled`` of them, an hour raises its largest shares by ``mix_step`` at most.
    """
    win = f.window
    tally = f.tally if f.tally is not None else tally_window(win.events)
    prof = profiles.keys.get(win.key_id)
    last = tally.last_ts
    if prof is None:
        prof = profiles.keys[win.key_id] = KeyProfile(first_ts=win.start, last_ts=last)
    if last > prof.last_ts:
        prof.last_ts = last
    n = len(win.events)
    prof.events += n
    prof.windows += 1
    seasonal = n if seasonal_count is None else seasonal_count
    how = int((win.start // 3600 + WEEK_OFFSET_HOURS) % HOURS_PER_WEEK)  # hour_of_week, inline
    prof.how_counts[how] += seasonal
    prof.how_sumsq[how] += seasonal * seasonal
    hod = how % 24
    if seasonal > prof.hod_max[hod]:
        prof.hod_max[hod] = round(seasonal)
    if f.mature and (f.new_principals or f.new_prefixes or prof.recent_sources):
        _remember_recent(profiles, prof, f, win.start, recent_seconds)
    for dim, store, seen in (
        ("operations", prof.operations, f.operations),
        ("countries", prof.countries, f.countries),
        ("principals", prof.principals, f.principals),
        ("prefixes", prof.prefixes, f.prefixes),
        ("user_agents", prof.user_agents, f.user_agents),
    ):
        for value, c in seen.items():  # bump(), inline; a value refused for the cap saturates
            if value in store:
                store[value] += c
            elif len(store) < cap:
                store[value] = c
            elif dim not in prof.saturated:
                prof.saturated.append(dim)
    if f.values["data_events"]:
        learn_mix(prof.caller_mix, caller_data_ops(f), int(win.start // 3600), mix_busy, caller_cap,
                  mix_settled, mix_step)  # fmt: skip
    users = prof.data_principals
    for ident, c in f.data_callers.items():
        if ident in users:  # bump(), inline
            users[ident] += c
        elif len(users) < cap:
            users[ident] = c
    for _, cls, ident in f.privileged:
        bump(prof.admin_principals, ident, 1, cap)
        if cls is OpClass.DESTRUCTIVE:
            bump(prof.destructive_principals, ident, 1, cap)
    if f.denied > prof.max_denied_window:
        prof.max_denied_window = f.denied
    org = profiles.org
    if f.countries:
        known = org.countries
        for country, c in f.countries.items():
            known[country] = known.get(country, 0) + c
    org.events += n
    org.cover(win.start, win.end - win.start)
    _learn_callers(profiles, prof, win, f, tally, cap, recent_seconds, caller_cap)


def _learn_callers(
    profiles: Profiles,
    key_prof: KeyProfile,
    win: KeyWindow,
    f: WindowFeatures,
    tally: WindowTally,
    cap: int,
    recent_seconds: float,
    caller_cap: int,
) -> None:
    key_id, known = win.key_id, profiles.principals
    # Windows sit inside one UTC hour (their length divides an hour), so per-caller counts
    # stand for per-event updates; the window's last event time stands for each caller's.
    first, last, hour = win.events[0].ts, tally.last_ts, int(win.start // 3600)
    hod = hour % 24
    people = key_prof.people_hours
    seasonal = key_prof.caller_counts
    dow = 24 + int((win.start // 86400 + 3) % 7)  # Monday = 0 (1970-01-01 was a Thursday)
    for ident, c in f.principals.items():
        counts = seasonal.get(ident)
        if counts is None and len(seasonal) < caller_cap:
            counts = seasonal[ident] = [0.0] * 31 + [win.start]
        if counts is not None:
            counts[hod] += c
            counts[dow] += c
        pp = known.get(ident)
        if pp is None:
            pp = known[ident] = PrincipalProfile(first_ts=first, last_ts=first)
        pp.events += c
        keys = pp.keys
        if key_id in keys:  # bump(), inline
            keys[key_id] += c
        elif len(keys) < cap:
            keys[key_id] = c
        pp.hod_counts[hod] += c
        pp.count_key_hour(key_id, hour, c)
        if last > pp.last_ts:
            pp.last_ts = last
        if is_human(ident):
            hours = people.get(ident)
            if hours is None and len(people) < cap:
                hours = people[ident] = [0] * 24
            if hours is not None:
                hours[hod] += c
    start = win.start
    for (ident, country, lat, lon), c in tally.located.items():
        pp = known[ident]
        if lat is not None and lon is not None:
            _learn_place(pp, place_of(lat, lon), start, cap, recent_seconds, c)
        if country:
            bump(pp.countries, country, c, cap)
    for _, cls, ident in f.privileged:
        pp = known[ident]
        bump(pp.admin_keys, key_id, 1, cap)
        if cls is OpClass.DESTRUCTIVE:
            pp.destructive_events += 1


def learn_principal_window(
    profiles: Profiles,
    pw: PrincipalWindow,
    start: float,
    cap: int,
    *,
    judged: bool = False,
    history: bool = True,
) -> None:
    """Remember a principal's largest denials, key spread and object count, and its networks.

    A principal a rule flagged in this window (``judged``) keeps its records as they were, but its
    networks are learned: a network is news once. The most keys it was denied on over the probing
    span is learned from ``history`` (training) only: a slow probe grows a key at a time, and
    learning while it grows would teach it its own size.
    """
    pp = profiles.principals.get(pw.principal)
    if pp is None:
        return
    if not judged:
        pp.max_denied_window = max(pp.max_denied_window, pw.denied)
        pp.max_keys_window = max(pp.max_keys_window, len(pw.keys))
        pp.max_objects = max(pp.max_objects, pw.recent_objects)
        if history:
            pp.max_denied_keys = max(pp.max_denied_keys, pw.recent_denied_keys)
    pp.windows += 1
    if not pw.networks:
        return
    known, org = pp.networks, profiles.org.networks
    blocks = {network_block(prefix) for prefix in pw.networks}
    if not blocks <= known.keys() and start - pp.first_ts >= 86400:
        pp.network_changes += 1
    for block in blocks:
        bump(known, block, 1, cap)
        bump(org, block, 1, cap * 8)
    if pw.sessions:
        learn_sessions(pp, pw.sessions, start, cap)


SESSION_SECONDS = 86400.0  # how long a session name is remembered after its last call


def learn_sessions(pp: PrincipalProfile, sessions: dict[str, list[str]], ts: float, cap: int) -> None:
    """Remember which network blocks each session called from, for a day after its last call.

    An instance, task or function keeps its session name while its credentials refresh; that name
    turning up in another provider block is its credentials used elsewhere.

    >>> pp = PrincipalProfile(0.0, 0.0)
    >>> learn_sessions(pp, {"role/i-1": ["3.8.1.0/24"]}, 10.0, 8)
    >>> learn_sessions(pp, {"role/i-2": ["3.9.1.0/24"]}, 90000.0, 8)
    >>> pp.session_blocks, pp.session_seen
    ({'role/i-2': ['3.9.0.0/16']}, {'role/i-2': 90000.0})
    """
    blocks_of, seen = pp.session_blocks, pp.session_seen
    for session, prefixes in sessions.items():
        blocks = blocks_of.pop(session, [])
        seen.pop(session, None)
        for block in map(network_block, prefixes):
            if block not in blocks and len(blocks) < 4:
                blocks.append(block)
        blocks_of[session], seen[session] = blocks, ts
    while seen:  # least recently seen first
        session = next(iter(seen))
        if seen[session] >= ts - SESSION_SECONDS and len(seen) <= cap:
            break
        del seen[session], blocks_of[session]


def _learn_place(
    pp: PrincipalProfile, place: str, ts: float, cap: int, recent_seconds: float, count: int = 1
) -> None:
    """Count a place; one first seen after a day of history stays "recent" for ``recent_seconds``."""
    places = pp.places
    if place in places:  # bump(), inline
        places[place] += count
    else:
        if ts - pp.first_ts >= 86400:
            pp.recent_places[place] = ts
        if len(places) < cap:
            places[place] = count
    if pp.recent_places:
        for old in [p for p, first in pp.recent_places.items() if first < ts - recent_seconds]:
            del pp.recent_places[old]
