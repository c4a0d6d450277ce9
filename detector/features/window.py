"""Event-time tumbling windows per key and per principal, and the features of a closed window."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from detector.domain.events import Event
from detector.domain.operations import OpClass, classify_cached
from detector.features.identity import ip_prefix, is_cloud_service, principal_identity
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


def principal_windows(windows: list[KeyWindow], max_evidence: int) -> dict[str, PrincipalWindow]:
    """Aggregate one period's key windows by principal identity."""
    out: dict[str, PrincipalWindow] = {}
    for win in windows:
        key_id = win.key_id
        for ev in win.events:
            ident = principal_identity(ev.principal)
            agg = out.get(ident)
            if agg is None:
                agg = out[ident] = PrincipalWindow(ident)
            agg.events += 1
            agg.keys.add(key_id)
            if ev.outcome == "denied":
                agg.denied += 1
                agg.denied_keys[key_id] = agg.denied_keys.get(key_id, 0) + 1
                if len(agg.denied_event_ids) < max_evidence:
                    agg.denied_event_ids.append(ev.event_id)
    return out


_ZERO_CLASSES = dict.fromkeys(OpClass, 0)
_ADMIN, _DESTRUCTIVE, _DATA = OpClass.ADMIN, OpClass.DESTRUCTIVE, OpClass.DATA  # enum lookups are slow


def window_features(
    win: KeyWindow,
    profiles: Profiles,
    by_principal: dict[str, PrincipalWindow],
    *,
    window_seconds: float,
    mature: bool,
    v4_bits: int = 24,
    v6_bits: int = 48,
) -> WindowFeatures:
    """Compute the features of a closed key window against the key's profile before it."""
    principals: dict[str, int] = {}
    countries: dict[str, int] = {}
    prefixes: dict[str, int] = {}
    agents: dict[str, int] = {}
    operations: dict[str, int] = {}
    classes = _ZERO_CLASSES.copy()
    ips: set[str] = set()
    privileged: list[tuple[Event, OpClass, str]] = []
    data_callers: dict[str, int] = {}
    places: dict[str, tuple[str, str]] = {}
    denied = errors = 0
    for ev in win.events:
        cls = classify_cached(ev.source, ev.operation)
        classes[cls] += 1
        ident = principal_identity(ev.principal)
        principals[ident] = principals.get(ident, 0) + 1
        operations[ev.operation] = operations.get(ev.operation, 0) + 1
        if ev.source_ip:
            ips.add(ev.source_ip)
            prefix = ip_prefix(ev.source_ip, v4_bits, v6_bits)
            prefixes[prefix] = prefixes.get(prefix, 0) + 1
            if ev.lat is not None and ev.lon is not None and prefix not in places:
                places[prefix] = (place_of(ev.lat, ev.lon), ident)
        if ev.country:
            countries[ev.country] = countries.get(ev.country, 0) + 1
        if ev.user_agent:
            agents[ev.user_agent] = agents.get(ev.user_agent, 0) + 1
        if ev.outcome != "success":
            if ev.outcome == "denied":
                denied += 1
            else:
                errors += 1
        if cls is _ADMIN or cls is _DESTRUCTIVE:
            privileged.append((ev, cls, ident))
        elif cls is _DATA and ev.outcome == "success":
            data_callers[ident] = data_callers.get(ident, 0) + 1
    profile = profiles.keys.get(win.key_id)
    n = len(win.events)
    base = profile.baseline(win.start, window_seconds) if profile else Baseline(0.0, 0.0, 0, "none")
    new_countries = _novel(countries, profile.countries if profile else {}, profile, "countries")
    new_principals = _novel(principals, profile.principals if profile else {}, profile, "principals")
    new_prefixes = _novel(prefixes, profile.prefixes if profile else {}, profile, "prefixes")
    new_agents = _novel(agents, profile.user_agents if profile else {}, profile, "user_agents")
    new_ops = _novel(operations, profile.operations if profile else {}, profile, "operations")
    admins = profile.admin_principals if profile else {}
    destroyers = profile.destructive_principals if profile else {}
    unusual_admin = sum(1 for _, c, p in privileged if c is OpClass.ADMIN and p not in admins)
    unusual_destr = sum(1 for _, c, p in privileged if c is OpClass.DESTRUCTIVE and p not in destroyers)
    hour_share = profile.hour_of_day_shares()[int(win.start // 3600) % 24] if profile else 1.0
    spread, denials = _principal_excess(principals, by_principal, profiles)
    recent = profile.recent_sources if profile else {}
    recent_events = max(
        sum(
            c
            for p, c in principals.items()
            if (p in new_principals or "p:" + p in recent) and not is_cloud_service(p)
        ),
        sum(c for n, c in prefixes.items() if "n:" + n in recent or _here(n, new_prefixes, places, profiles)),
    )
    values = {
        "events": float(n),
        "data_events": float(classes[OpClass.DATA]),
        "admin_events": float(classes[OpClass.ADMIN]),
        "destructive_events": float(classes[OpClass.DESTRUCTIVE]),
        "read_events": float(classes[OpClass.READ]),
        "rate_ratio": (n + 1.0) / (base.mean + 1.0),
        "rate_z": (n - base.mean) / (base.std + 1.0),
        "distinct_ips": float(len(ips)),
        "distinct_countries": float(len(countries)),
        "distinct_principals": float(len(principals)),
        "new_country_events": float(sum(countries[c] for c in new_countries)),
        "new_principal_events": float(sum(principals[p] for p in new_principals)),
        "new_prefix_events": float(sum(prefixes[p] for p in new_prefixes)),
        "new_user_agent_events": float(sum(agents[a] for a in new_agents)),
        "new_operation_events": float(sum(operations[o] for o in new_ops)),
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
        new_countries, new_principals, new_prefixes, privileged, denied, errors, hour_share, data_callers,
        places, recent_events,
    )  # fmt: skip


def _principal_excess(
    principals: dict[str, int], by_principal: dict[str, PrincipalWindow], profiles: Profiles
) -> tuple[int, int]:
    """Most keys touched and most denials by one caller this period beyond its own per-window record."""
    spread = denials = 0
    for ident in principals:
        pw = by_principal.get(ident)
        if pw is None:
            continue
        prof = profiles.principals.get(ident)
        spread = max(spread, len(pw.keys) - (prof.max_keys_window if prof else 0))
        denials = max(denials, pw.denied - (prof.max_denied_window if prof else 0))
    return spread, denials


@lru_cache(maxsize=65536)
def place_of(lat: float, lon: float) -> str:
    """A place, about 10 km across: coordinates rounded to a tenth of a degree.

    >>> place_of(51.5143, -0.0912)
    '51.5,-0.1'
    """
    return f"{lat:.1f},{lon:.1f}"


def _here(prefix: str, new: set[str], places: dict[str, tuple[str, str]], profiles: Profiles) -> bool:
    """A network new to the key, at a place its caller has long worked from."""
    return prefix in new and prefix in places and settled_place(profiles, *places[prefix])


def settled_place(profiles: Profiles, place: str, principal: str) -> bool:
    """A place the principal worked from, not only in the last ``recent_hours``."""
    prof = profiles.principals.get(principal)
    return prof is not None and place in prof.places and place not in prof.recent_places


def _novel(seen_now: dict[str, int], known: dict[str, int], profile: KeyProfile | None, dim: str) -> set[str]:
    """Values in this window the profile has never seen; nothing when the dimension is saturated."""
    if profile is not None and dim in profile.saturated:
        return set()
    return seen_now.keys() - known.keys()
