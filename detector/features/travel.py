"""Implied travel speed between consecutive located events of one principal, across keys."""

from __future__ import annotations

from typing import NamedTuple

from detector.domain.events import Event
from detector.features.geo import haversine_km
from detector.features.identity import is_human
from detector.features.profiles import Profiles
from detector.features.window import TravelHop


class _Seen(NamedTuple):
    ts: float
    lat: float
    lon: float
    country: str
    event_id: str


_new = tuple.__new__  # what _Seen(...) runs, without its Python-level __new__


class TravelTracker:
    """Remembers each principal's last located event and reports hops worth judging.

    A hop between two countries the principal already works from is not reported; nor is a hop
    of a workload identity between two countries the organisation works from, since one role
    legitimately runs in every region its service is deployed to. People get no such allowance.
    """

    def __init__(self, min_km: float) -> None:
        self.min_km = min_km
        self.last: dict[str, _Seen] = {}

    def observe(self, ev: Event, ident: str, profiles: Profiles) -> TravelHop | None:
        """Record ``ev`` (already located) and return the hop from the principal's previous place."""
        lat, lon = ev.lat, ev.lon
        if lat is None or lon is None:
            return None
        last = self.last
        prev = last.get(ident)
        ts, country = ev.ts, ev.country or ""
        last[ident] = _new(_Seen, (ts, lat, lon, country, ev.event_id))
        if prev is None or (prev[1] == lat and prev[2] == lon) or ts < prev[0]:
            return None  # the common case: the same place as before
        km = haversine_km(prev.lat, prev.lon, lat, lon)
        if km < self.min_km or self._expected(ident, prev.country, country, profiles):
            return None
        minutes = (ts - prev.ts) / 60.0
        kmh = km / max(minutes / 60.0, 1.0 / 3600.0)
        return TravelHop(ident, kmh, km, minutes, prev.country, country, (prev.event_id, ev.event_id))

    @staticmethod
    def _expected(ident: str, a: str, b: str, profiles: Profiles) -> bool:
        prof = profiles.principals.get(ident)
        if prof is not None and a in prof.countries and b in prof.countries:
            return True
        org = profiles.org.countries
        return not is_human(ident) and bool(a) and a in org and b in org

    def evict(self, cutoff: float) -> None:
        """Forget principals last seen before ``cutoff``."""
        for ident in [i for i, s in self.last.items() if s.ts < cutoff]:
            del self.last[ident]
