"""Long-lived profiles learned from history: per key, per principal, and for the organisation.

Profiles are plain counters, so they keep learning as events arrive and serialise to JSON.
Every value set is capped (``max_values``); once full, a dimension stops reporting novelty
for that profile (it cannot tell new from forgotten) and says so through ``saturated``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

HOURS_PER_WEEK = 168
WEEK_OFFSET_HOURS = 72  # 1970-01-01 was a Thursday: shift so that index 0 is Monday 00:00 UTC


def hour_of_week(ts: float) -> int:
    """Index 0..167 of the UTC hour of the week, Monday 00:00 = 0.

    >>> hour_of_week(0.0)  # Thursday 00:00
    72
    """
    return int((ts // 3600 + WEEK_OFFSET_HOURS) % HOURS_PER_WEEK)


def hours_in_bucket(start_h: int, end_h: int, period: int, bucket: int) -> int:
    """How many absolute hours h in [start_h, end_h) fall in ``bucket`` of a ``period``-hour cycle.

    >>> hours_in_bucket(0, 48, 24, 5), hours_in_bucket(0, 5, 24, 5), hours_in_bucket(3, 6, 24, 5)
    (2, 0, 1)
    """
    if end_h <= start_h:
        return 0
    return (end_h - 1 - bucket) // period - (start_h - 1 - bucket) // period


def usual_share(hod_counts: list[float], hour: int) -> float:
    """Activity in ``hour`` and its two neighbours relative to the busiest such span (0..1).

    >>> usual_share([0.0] * 8 + [10.0] * 10 + [0.0] * 6, 3), usual_share([1.0] * 24, 3)
    (0.0, 1.0)
    """
    c = hod_counts
    spans = [c[h - 1] + c[h] + c[(h + 1) % 24] for h in range(24)]
    peak = max(spans)
    return spans[hour] / peak if peak else 1.0


def bump(counter: dict[str, int], value: str, by: int, cap: int) -> bool:
    """Add ``by`` to ``counter[value]``; refuse new values once ``cap`` are held. True if counted."""
    if value in counter:
        counter[value] += by
        return True
    if len(counter) >= cap:
        return False
    counter[value] = by
    return True


@dataclass(slots=True)
class Baseline:
    """Expected events per window at one time of week, with its spread and how it was learned."""

    mean: float
    std: float
    hours: int
    basis: str  # "hour-of-week", "hour-of-day", "overall" or "none"


@dataclass(slots=True)
class KeyProfile:
    """What is normal for one key."""

    first_ts: float
    last_ts: float
    events: int = 0
    windows: int = 0
    how_counts: list[float] = field(default_factory=lambda: [0.0] * HOURS_PER_WEEK)
    how_sumsq: list[float] = field(default_factory=lambda: [0.0] * HOURS_PER_WEEK)
    operations: dict[str, int] = field(default_factory=dict)
    countries: dict[str, int] = field(default_factory=dict)
    principals: dict[str, int] = field(default_factory=dict)
    prefixes: dict[str, int] = field(default_factory=dict)
    user_agents: dict[str, int] = field(default_factory=dict)
    data_principals: dict[str, int] = field(default_factory=dict)  # callers with successful data use
    admin_principals: dict[str, int] = field(default_factory=dict)
    destructive_principals: dict[str, int] = field(default_factory=dict)
    max_denied_window: int = 0
    hod_max: list[int] = field(default_factory=lambda: [0] * 24)
    people_hours: dict[str, list[int]] = field(default_factory=dict)  # person -> calls per UTC hour
    # caller -> its calls per UTC hour of day (24) and day of week (7), then when it first called
    caller_counts: dict[str, list[float]] = field(default_factory=dict)
    # caller -> its data operations this hour and the largest share of each (detector.features.mix)
    caller_mix: dict[str, list[Any]] = field(default_factory=dict)
    recent_sources: dict[str, float] = field(default_factory=dict)  # "p:"/"n:" + caller/network -> 1st seen
    saturated: list[str] = field(default_factory=list)
    last_seen: float = 0.0  # last window closed for this key, learned or quarantined (drives eviction)
    # Hour-of-day shares, recomputed once per hour of learned time; saved with the profile so a
    # reloaded model judges exactly like the process that saved it.
    shares_cache: tuple[int, list[float]] | None = field(default=None, repr=False, compare=False)

    def span_hours(self) -> int:
        """Whole hours between the first and the last event learned (inclusive of both hours)."""
        return int(self.last_ts // 3600) - int(self.first_ts // 3600) + 1

    def baseline(self, ts: float, window_seconds: float) -> Baseline:
        """Expected count per window for the time of ``ts``, from the finest bucket with 2+ hours."""
        start_h, end_h = int(self.first_ts // 3600), int(self.last_ts // 3600) + 1
        per_hour = 3600.0 / window_seconds
        # hour_of_week(ts) and hours_in_bucket() inline: this runs for every closed window.
        how = int((ts // 3600 + WEEK_OFFSET_HOURS) % HOURS_PER_WEEK)
        if end_h <= start_h:
            return Baseline(0.0, 0.0, 0, "none")
        hours = (end_h - 1 - how + WEEK_OFFSET_HOURS) // HOURS_PER_WEEK - (
            start_h - 1 - how + WEEK_OFFSET_HOURS
        ) // HOURS_PER_WEEK
        if hours >= 2:
            return _baseline(
                self.how_counts[how], self.how_sumsq[how], hours * per_hour, hours, "hour-of-week"
            )
        hod = how % 24
        hour = int(ts // 3600) % 24
        hours = (end_h - 1 - hour) // 24 - (start_h - 1 - hour) // 24
        if hours >= 2:
            total, sumsq = sum(self.how_counts[hod::24]), sum(self.how_sumsq[hod::24])
            return _baseline(total, sumsq, hours * per_hour, hours, "hour-of-day")
        hours = end_h - start_h
        if hours >= 2:
            return _baseline(sum(self.how_counts), sum(self.how_sumsq), hours * per_hour, hours, "overall")
        return Baseline(0.0, 0.0, 0, "none")

    def hour_of_day_shares(self) -> list[float]:
        """Each UTC hour's event rate relative to the busiest hour (0..1), cached per hour."""
        stamp = int(self.last_ts // 3600)
        if self.shares_cache is not None and self.shares_cache[0] == stamp:
            return self.shares_cache[1]
        start_h, end_h = int(self.first_ts // 3600), int(self.last_ts // 3600) + 1
        rates = []
        for hod in range(24):
            hours = hours_in_bucket(start_h, end_h, 24, hod)
            total = sum(self.how_counts[hod::24])
            rates.append(total / hours if hours else 0.0)
        peak = max(rates) or 1.0
        shares = [r / peak for r in rates]
        self.shares_cache = (stamp, shares)
        return shares

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {n: getattr(self, n) for n in self.__slots__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeyProfile:
        """Inverse of :meth:`to_dict`."""
        cache = data.get("shares_cache")
        return cls(**{**data, "shares_cache": (int(cache[0]), list(cache[1])) if cache else None})


def _baseline(total: float, sumsq: float, windows: float, hours: int, basis: str) -> Baseline:
    mean = total / windows
    var = max(sumsq / windows - mean * mean, 0.0)
    return Baseline(mean, math.sqrt(var), hours, basis)


@dataclass(slots=True)
class PrincipalProfile:
    """What is normal for one principal across all keys."""

    first_ts: float
    last_ts: float
    events: int = 0
    keys: dict[str, int] = field(default_factory=dict)
    countries: dict[str, int] = field(default_factory=dict)
    admin_keys: dict[str, int] = field(default_factory=dict)
    destructive_events: int = 0
    max_denied_window: int = 0
    max_keys_window: int = 0
    hod_counts: list[float] = field(default_factory=lambda: [0.0] * 24)
    places: dict[str, int] = field(default_factory=dict)  # ~10 km places it calls from
    recent_places: dict[str, float] = field(default_factory=dict)  # place -> first seen, for a day
    networks: dict[str, int] = field(default_factory=dict)  # network prefixes it calls from, across keys
    windows: int = 0  # windows it was active in, across keys
    network_changes: int = 0  # windows after its first day in which it called from a network new to it
    max_objects: int = 0  # most distinct objects (encryption contexts) it opened within the horizon
    max_denied_keys: int = 0  # most distinct keys it was denied on within the probing horizon
    hour: int = 0  # the clock hour (since the epoch) ``key_hour`` counts
    key_hour: dict[str, int] = field(default_factory=dict)  # calls per key in that hour
    max_key_hour: int = 0  # most calls it made on one key within one earlier clock hour
    # Sessions seen lately (least recently seen first): the network blocks each called from, and when.
    session_blocks: dict[str, list[str]] = field(default_factory=dict)
    session_seen: dict[str, float] = field(default_factory=dict)

    def count_key_hour(self, key_id: str, hour: int, calls: int) -> None:
        """Count calls on a key in a clock hour; a new hour folds the last one into ``max_key_hour``.

        >>> p = PrincipalProfile(0.0, 0.0)
        >>> p.count_key_hour("k1", 5, 30); p.count_key_hour("k1", 5, 20); p.count_key_hour("k2", 6, 1)
        >>> p.max_key_hour, p.key_hour
        (50, {'k2': 1})
        """
        if hour > self.hour:
            if self.key_hour:
                self.max_key_hour = max(self.max_key_hour, *self.key_hour.values())
            self.hour, self.key_hour = hour, {}
        elif hour < self.hour:
            return  # a late window of an hour already folded
        self.key_hour[key_id] = self.key_hour.get(key_id, 0) + calls

    def usual_share(self, hour: int) -> float:
        """Activity around ``hour`` relative to the busiest such span (see :func:`usual_share`)."""
        return usual_share(self.hod_counts, hour)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PrincipalProfile:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


@dataclass(slots=True)
class OrgProfile:
    """What the whole organisation does: countries it works from, and the hours its logs cover."""

    countries: dict[str, int] = field(default_factory=dict)
    events: int = 0
    # Hours of each hour of the week with any data at all: an hour the logs never covered (the
    # pipeline was down, the history has a gap) is not an hour in which a key was idle.
    hours_covered: list[float] = field(default_factory=lambda: [0.0] * HOURS_PER_WEEK)
    last_window: float = -1.0
    networks: dict[str, int] = field(default_factory=dict)  # network prefixes any identity calls from

    def cover(self, start: float, seconds: float) -> None:
        """Note that the logs cover the window from ``start`` (each window once, in time order).

        >>> org = OrgProfile()
        >>> for start in (0.0, 0.0, 60.0, 1800.0):
        ...     org.cover(start, 60.0)
        >>> round(org.hours_covered[72], 4)
        0.05
        """
        if start > self.last_window:
            self.last_window = start
            self.hours_covered[int((start // 3600 + WEEK_OFFSET_HOURS) % HOURS_PER_WEEK)] += seconds / 3600

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"countries": self.countries, "events": self.events, "hours_covered": self.hours_covered,
                "last_window": self.last_window, "networks": self.networks}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OrgProfile:
        """Inverse of :meth:`to_dict` (models saved before coverage was kept have none)."""
        return cls(**data)


@dataclass(slots=True)
class Profiles:
    """All learned profiles; the part of a model that keeps learning."""

    keys: dict[str, KeyProfile] = field(default_factory=dict)
    principals: dict[str, PrincipalProfile] = field(default_factory=dict)
    org: OrgProfile = field(default_factory=OrgProfile)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "keys": {k: p.to_dict() for k, p in self.keys.items()},
            "principals": {k: p.to_dict() for k, p in self.principals.items()},
            "org": self.org.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profiles:
        """Inverse of :meth:`to_dict`."""
        return cls(
            keys={k: KeyProfile.from_dict(v) for k, v in data["keys"].items()},
            principals={k: PrincipalProfile.from_dict(v) for k, v in data["principals"].items()},
            org=OrgProfile.from_dict(data["org"]),
        )

    def copy(self) -> Profiles:
        """An independent deep copy (a Pipeline keeps learning into the profiles it is given)."""
        return copy.deepcopy(self)

    def evict_idle(self, now: float, idle_seconds: float) -> int:
        """Forget keys and principals not seen for ``idle_seconds`` of event time; return how many."""
        cutoff = now - idle_seconds
        stale_keys = [k for k, p in self.keys.items() if max(p.last_ts, p.last_seen) < cutoff]
        stale_principals = [k for k, p in self.principals.items() if p.last_ts < cutoff]
        for k in stale_keys:
            del self.keys[k]
        for k in stale_principals:
            del self.principals[k]
        return len(stale_keys) + len(stale_principals)
