"""Event-time tumbling windows per key and per principal, and the features of a closed window."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from operator import attrgetter

from detector.domain.events import Event
from detector.domain.operations import _CACHE as _CLASS_CACHE  # what classify_cached() reads
from detector.domain.operations import OpClass, classify
from detector.features.identity import ip_prefix, is_cloud_service, network_block, principal_identity
from detector.features.profiles import Baseline, KeyProfile, Profiles


@dataclass(slots=True)
class TravelHop:
    """Two consecutive located events of one principal and the speed they imply."""

    principal: str
    kmh: float
    km: float
    minutes: float
    from_country: str
    to_country: str
    event_ids: tuple[str, str]


@dataclass(slots=True)
class KeyWindow:
    """Events of one key in one tumbling window, as they arrive."""

    key_id: str
    start: float
    end: float
    events: list[Event] = field(default_factory=list)
    travel: TravelHop | None = None


@dataclass(slots=True)
class PrincipalWindow:
    """What one principal did across all keys in one window."""

    principal: str
    events: int = 0
    keys: set[str] = field(default_factory=set)
    denied: int = 0
    denied_keys: dict[str, int] = field(default_factory=dict)
    denied_event_ids: list[str] = field(default_factory=list)
    resources: set[str] = field(default_factory=set)  # objects it opened (encryption context)
    resource_event_ids: list[str] = field(default_factory=list)
    networks: dict[str, str] = field(default_factory=dict)  # network prefix -> country ("" unknown)
    network_event_ids: dict[str, str] = field(default_factory=dict)  # network prefix -> its first event
    recent_objects: int = 0  # distinct objects it opened over the object horizon, this window included
    recent_denied_keys: int = 0  # distinct keys it was denied on over the probing horizon, this one included
    new_denied_keys: int = 0  # of those, keys first denied within the horizon in this window
    sessions: dict[str, list[str]] = field(default_factory=dict)  # session name -> network prefixes it used


@dataclass(slots=True)
class WindowFeatures:
    """A closed key window: feature values plus the detail rules need to explain themselves."""

    window: KeyWindow
    values: dict[str, float]
    baseline: Baseline
    mature: bool
    principals: dict[str, int]
    countries: dict[str, int]
    prefixes: dict[str, int]
    user_agents: dict[str, int]
    operations: dict[str, int]
    classes: dict[OpClass, int]
    new_countries: set[str]
    new_principals: set[str]
    new_prefixes: set[str]
    privileged: list[tuple[Event, OpClass, str]]  # admin/destructive events with principal identity
    denied: int
    errors: int
    hour_share: float
    data_callers: dict[str, int] = field(default_factory=dict)  # successful data calls per caller
    places: dict[str, tuple[str, str]] = field(default_factory=dict)  # prefix -> (place, caller) of 1st call
    # Calls by callers new to the key (or within a day), or from networks new to it at places where
    # their caller long works from. New networks at new places look like a deployment to a new region.
    recent_source_events: int = 0
    tally: WindowTally | None = None  # the pass over the events these features came from
    caller_ops: dict[str, dict[str, int]] | None = None  # data calls per caller and operation, when asked


@dataclass(slots=True)
class WindowTally:
    """What one pass over a key window's events counts; features, rules and learning read it.

    Every dict is in order of first occurrence in the window, as a count event by event gives.
    """

    principals: dict[str, int]  # principal identity -> events
    operations: dict[str, int]
    countries: dict[str, int]
    prefixes: dict[str, int]
    user_agents: dict[str, int]
    classes: dict[OpClass, int]
    distinct_ips: int
    privileged: list[tuple[Event, OpClass, str]]
    data_callers: dict[str, int]
    places: dict[str, tuple[str, str]]
    denied: int
    errors: int
    denied_ids: list[tuple[str, str]]  # (principal identity, event id) of each denied call, in order
    located: dict[tuple[str, str, float | None, float | None], int]  # (identity, country, lat, lon)
    last_ts: float
    # (identity, network prefix) -> (country, first event id), in order of first occurrence
    sources: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    resources: list[tuple[str, str, str]] = field(default_factory=list)  # (identity, object, event id)
    # (session, network prefix) -> identity, for principals that carry a session name
    sessions: dict[tuple[str, str], str] = field(default_factory=dict)


_ADMIN, _DESTRUCTIVE, _DATA = OpClass.ADMIN, OpClass.DESTRUCTIVE, OpClass.DATA  # enum lookups are slow
_READ = OpClass.READ
_TS = attrgetter("ts")


def tally_window(events: list[Event], v4_bits: int = 24, v6_bits: int = 48) -> WindowTally:
    """Count a window's events once, for everything its features, rules and learning need.

    >>> from detector.domain.events import Event
    >>> ev = Event("e1", 60.0, "k", "Decrypt", "alice", "198.51.100.7", "denied", "aws-kms", "US", 1.0, 2.0)
    >>> t = tally_window([ev, ev])
    >>> t.principals, t.prefixes, t.denied, t.located, t.last_ts
    ({'alice': 2}, {'198.51.100.0/24': 2}, 2, {('alice', 'US', 1.0, 2.0): 2}, 60.0)
    """
    principals: dict[str, int] = {}
    operations: dict[str, int] = {}
    countries: dict[str, int] = {}
    prefixes: dict[str, int] = {}
    agents: dict[str, int] = {}
    prefix_of: dict[str, str] = {}  # each distinct address of the window -> its network prefix
    privileged: list[tuple[Event, OpClass, str]] = []
    data_callers: dict[str, int] = {}
    places: dict[str, tuple[str, str]] = {}
    denied_ids: list[tuple[str, str]] = []
    located: dict[tuple[str, str, float | None, float | None], int] = {}
    sources: dict[tuple[str, str], tuple[str, str]] = {}
    resources: list[tuple[str, str, str]] = []
    sessions: dict[tuple[str, str], str] = {}
    data = admin = destructive = read = errors = 0
    # classify_cached(), inline: a call per event costs more than the lookup it makes.
    identity, cached_class = principal_identity, _CLASS_CACHE.get
    for ev in events:
        op, outcome, country, lat = ev.operation, ev.outcome, ev.country, ev.lat
        cls = cached_class((ev.source, op)) or classify(ev.source, op)
        ident = identity(ev.principal)
        principals[ident] = principals.get(ident, 0) + 1
        operations[op] = operations.get(op, 0) + 1
        if ip := ev.source_ip:
            prefix = prefix_of.get(ip)
            if prefix is None:
                prefix = prefix_of[ip] = ip_prefix(ip, v4_bits, v6_bits)
            prefixes[prefix] = prefixes.get(prefix, 0) + 1
            if lat is not None and ev.lon is not None and prefix not in places:
                places[prefix] = (place_of(lat, ev.lon), ident)
            pair = (ident, prefix)
            if pair not in sources:
                sources[pair] = (country or "", ev.event_id)
            if ev.principal != ident:
                sessions[ev.principal, prefix] = ident
        if country:
            countries[country] = countries.get(country, 0) + 1
        if agent := ev.user_agent:
            agents[agent] = agents.get(agent, 0) + 1
        if (resource := ev.resource) is not None:
            resources.append((ident, resource, ev.event_id))
        if cls is _DATA:
            data += 1
            if outcome == "success":
                data_callers[ident] = data_callers.get(ident, 0) + 1
        elif cls is _READ:
            read += 1
        else:
            if cls is _ADMIN:
                admin += 1
            else:
                destructive += 1
            privileged.append((ev, cls, ident))
        if outcome != "success":
            if outcome == "denied":
                denied_ids.append((ident, ev.event_id))
            else:
                errors += 1
        if country or lat is not None:
            spot = (ident, country or "", lat, ev.lon)
            located[spot] = located.get(spot, 0) + 1
    classes = {_DATA: data, _ADMIN: admin, _DESTRUCTIVE: destructive, _READ: read}  # OpClass order
    last = max(map(_TS, events)) if events else -math.inf
    return WindowTally(
        principals, operations, countries, prefixes, agents, classes, len(prefix_of), privileged,
        data_callers, places, len(denied_ids), errors, denied_ids, located, last, sources, resources,
        sessions,
    )  # fmt: skip


def principal_windows(
    windows: list[KeyWindow], max_evidence: int, tallies: list[WindowTally] | None = None
) -> dict[str, PrincipalWindow]:
    """Aggregate one period's key windows by principal identity (from their tallies, if given)."""
    out: dict[str, PrincipalWindow] = {}
    if tallies is None:
        tallies = [tally_window(win.events) for win in windows]
    for win, tally in zip(windows, tallies, strict=True):
        key_id = win.key_id
        for ident, count in tally.principals.items():
            agg = out.get(ident)
            if agg is None:
                agg = out[ident] = PrincipalWindow(ident, count, {key_id}, 0, {}, [])
                continue
            agg.events += count
            agg.keys.add(key_id)
        for ident, event_id in tally.denied_ids:
            agg = out[ident]
            agg.denied += 1
            agg.denied_keys[key_id] = agg.denied_keys.get(key_id, 0) + 1
            if len(agg.denied_event_ids) < max_evidence:
                agg.denied_event_ids.append(event_id)
        for (ident, prefix), (country, event_id) in tally.sources.items():
            agg = out[ident]
            if prefix not in agg.networks:
                agg.networks[prefix] = country
                agg.network_event_ids[prefix] = event_id
        for (session, prefix), ident in tally.sessions.items():
            used = out[ident].sessions.setdefault(session, [])
            if prefix not in used:
                used.append(prefix)
        for ident, resource, event_id in tally.resources:
            agg = out[ident]
            if resource not in agg.resources:
                agg.resources.add(resource)
                if len(agg.resource_event_ids) < max_evidence:
                    agg.resource_event_ids.append(event_id)
    return out


_EMPTY: dict[str, int] = {}  # a profile's value counts when there is no profile; never written


def window_features(
    win: KeyWindow,
    profiles: Profiles,
    by_principal: dict[str, PrincipalWindow],
    *,
    window_seconds: float,
    mature: bool,
    v4_bits: int = 24,
    v6_bits: int = 48,
    tally: WindowTally | None = None,
) -> WindowFeatures:
    """Compute the features of a closed key window against the key's profile before it."""
    t = tally if tally is not None else tally_window(win.events, v4_bits, v6_bits)
    principals, countries, prefixes, places = t.principals, t.countries, t.prefixes, t.places
    agents, operations, classes = t.user_agents, t.operations, t.classes
    profile = profiles.keys.get(win.key_id)
    n = len(win.events)
    if profile is not None:
        base = profile.baseline(win.start, window_seconds)
        saturated = profile.saturated
        hour_share = profile.hour_of_day_shares()[int(win.start // 3600) % 24]
        recent = profile.recent_sources
        known: KeyProfile | _NoProfile = profile
    else:
        base = Baseline(0.0, 0.0, 0, "none")
        saturated, hour_share, recent, known = [], 1.0, {}, _NO_PROFILE
    # Values this window has and the profile never saw; none for a dimension the cap saturated.
    # Most windows bring nothing new: a subset test answers that without building a set.
    new_countries = _novel(countries, known.countries, saturated, "countries")
    new_principals = _novel(principals, known.principals, saturated, "principals")
    new_prefixes = _novel(prefixes, known.prefixes, saturated, "prefixes")
    new_agents = _novel(agents, known.user_agents, saturated, "user_agents")
    new_ops = _novel(operations, known.operations, saturated, "operations")
    unusual_admin = unusual_destr = 0
    for _, c, p in t.privileged:
        if c is _ADMIN:
            unusual_admin += p not in known.admin_principals
        elif c is _DESTRUCTIVE:
            unusual_destr += p not in known.destructive_principals
    spread, denials = _principal_excess(principals, by_principal, profiles)
    recent_events = 0
    if new_principals or new_prefixes or recent:
        recent_events = _recent_source_events(principals, prefixes, places, new_principals, new_prefixes,
                                              recent, profiles)  # fmt: skip
    denied, errors = t.denied, t.errors
    values = {
        "events": float(n),
        "data_events": float(classes[_DATA]),
        "admin_events": float(classes[_ADMIN]),
        "destructive_events": float(classes[_DESTRUCTIVE]),
        "read_events": float(classes[_READ]),
        "rate_ratio": (n + 1.0) / (base.mean + 1.0),
        "rate_z": (n - base.mean) / (base.std + 1.0),
        "distinct_ips": float(t.distinct_ips),
        "distinct_countries": float(len(countries)),
        "distinct_principals": float(len(principals)),
        "new_country_events": float(sum([countries[v] for v in new_countries])) if new_countries else 0.0,
        "new_principal_events": float(sum([principals[v] for v in new_principals]))
        if new_principals
        else 0.0,
        "new_prefix_events": float(sum([prefixes[v] for v in new_prefixes])) if new_prefixes else 0.0,
        "new_user_agent_events": float(sum([agents[v] for v in new_agents])) if new_agents else 0.0,
        "new_operation_events": float(sum([operations[v] for v in new_ops])) if new_ops else 0.0,
        "max_travel_kmh": win.travel.kmh if win.travel else 0.0,
        "denied_share": denied / n,
        "error_share": errors / n,
        "unusual_admin_events": float(unusual_admin),
        "unusual_destructive_events": float(unusual_destr),
        "hour_share": hour_share,
        "principal_keys_excess": float(spread),
        "principal_denied_excess": float(denials),
    }
    return WindowFeatures(
        win, values, base, mature, principals, countries, prefixes, agents, operations, classes,
        new_countries, new_principals, new_prefixes, t.privileged, denied, errors, hour_share,
        t.data_callers, places, recent_events, t,
    )  # fmt: skip


def _recent_source_events(
    principals: dict[str, int],
    prefixes: dict[str, int],
    places: dict[str, tuple[str, str]],
    new_principals: set[str],
    new_prefixes: set[str],
    recent: dict[str, float],
    profiles: Profiles,
) -> int:
    """Calls by callers new to the key (or lately), or from new networks at their callers' settled places."""
    by_callers = sum(
        c
        for p, c in principals.items()
        if (p in new_principals or "p:" + p in recent) and not is_cloud_service(p)
    )
    by_networks = sum(
        c for n, c in prefixes.items() if "n:" + n in recent or _here(n, new_prefixes, places, profiles)
    )
    return max(by_callers, by_networks)


class _NoProfile:
    """Stands for a key without a profile: it knows no value of any dimension."""

    countries = principals = prefixes = user_agents = operations = _EMPTY
    admin_principals = destructive_principals = _EMPTY


_NO_PROFILE = _NoProfile()


def _principal_excess(
    principals: dict[str, int], by_principal: dict[str, PrincipalWindow], profiles: Profiles
) -> tuple[int, int]:
    """Most keys touched and most denials by one caller this period beyond its own per-window record."""
    spread = denials = 0
    known = profiles.principals
    for ident in principals:
        pw = by_principal.get(ident)
        if pw is None:
            continue
        prof = known.get(ident)
        if prof is None:
            spread = max(spread, len(pw.keys))
            denials = max(denials, pw.denied)
        else:
            spread = max(spread, len(pw.keys) - prof.max_keys_window)
            denials = max(denials, pw.denied - prof.max_denied_window)
    return spread, denials


@lru_cache(maxsize=65536)
def place_of(lat: float, lon: float) -> str:
    """A place, about 10 km across: coordinates rounded to a tenth of a degree.

    >>> place_of(51.5143, -0.0912)
    '51.5,-0.1'
    """
    return f"{lat:.1f},{lon:.1f}"


def _here(prefix: str, new: set[str], places: dict[str, tuple[str, str]], profiles: Profiles) -> bool:
    """A network new to the key, at a place its caller has long worked from, outside its own blocks."""
    return prefix in new and prefix in places and settled_place(profiles, *places[prefix], prefix)


def settled_place(profiles: Profiles, place: str, principal: str, prefix: str) -> bool:
    """A place the principal worked from, not only in the last ``recent_hours``, with a network
    ``prefix`` outside the provider blocks it already calls from: more addresses of its own
    provider (autoscaling, a new NAT gateway) are not somewhere else.
    """
    prof = profiles.principals.get(principal)
    if prof is None or place not in prof.places or place in prof.recent_places:
        return False
    return network_block(prefix) not in prof.networks


def _novel(seen_now: dict[str, int], known: dict[str, int], saturated: list[str], dim: str) -> set[str]:
    """Values in this window the profile has never seen; nothing when the dimension is saturated."""
    if dim in saturated or seen_now.keys() <= known.keys():
        return set()
    return seen_now.keys() - known.keys()
