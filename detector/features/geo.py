"""Geography: which addresses may be located, distances, and event enrichment."""

from __future__ import annotations

import ipaddress
import math
from typing import NamedTuple, Protocol

from detector.domain.events import Event

UNKNOWN_COUNTRY = ""
EARTH_RADIUS_KM = 6371.0088


class Geo(NamedTuple):
    """A located address: ISO 3166 alpha-2 country and coordinates."""

    country: str
    lat: float | None
    lon: float | None


UNKNOWN = Geo(UNKNOWN_COUNTRY, None, None)


class GeoLocator(Protocol):
    """Port: looks up a public IP address; returns None when the database does not know it."""

    def locate(self, ip: str) -> Geo | None:
        """Geography of a public address, or None."""


def public_address(text: str) -> str | None:
    """Normalised IP address if ``text`` is a public, routable address; otherwise None.

    Service names (``kms.amazonaws.com``), ``AWS Internal``, private, loopback, link-local,
    documentation and reserved ranges are not located: they get an explicit unknown geography.

    >>> public_address("8.8.8.8"), public_address("10.1.2.3"), public_address("kms.amazonaws.com")
    ('8.8.8.8', None, None)
    >>> public_address("203.0.113.7") is None  # documentation range
    True
    """
    if not text or len(text) > 64:
        return None
    try:
        ip = ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip) if ip.is_global else None


class Enricher:
    """Fills ``country``/``lat``/``lon`` of events from their address, with a bounded cache."""

    def __init__(self, locator: GeoLocator | None, cache_size: int = 65536) -> None:
        self.locator = locator
        self.cache_size = cache_size
        self._cache: dict[str, Geo] = {}

    def enrich(self, event: Event) -> None:
        """Locate ``event`` in place unless the source already gave its geography."""
        if event.country is not None:
            return
        if event.lat is not None and event.lon is not None:
            event.country = UNKNOWN_COUNTRY  # coordinates given without a country: keep them
            return
        geo = self.lookup(event.source_ip)
        event.country, event.lat, event.lon = geo

    def lookup(self, address: str) -> Geo:
        """Geography of an address string; UNKNOWN for anything not public or not found."""
        cached = self._cache.get(address)
        if cached is not None:
            return cached
        ip = public_address(address)
        geo = None if ip is None or self.locator is None else self.locator.locate(ip)
        result = geo if geo is not None else UNKNOWN
        if self.cache_size > 0:
            if len(self._cache) >= self.cache_size:
                self._cache.clear()
            self._cache[address] = result
        return result


def haversine_km(
    lat1: float, lon1: float, lat2: float, lon2: float, *, radius_km: float = EARTH_RADIUS_KM
) -> float:
    """Great-circle distance in kilometres on a sphere of ``radius_km`` (default: the mean Earth radius).

    >>> round(haversine_km(51.5074, -0.1278, 40.7128, -74.0060))  # London - New York
    5570
    """
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * radius_km * math.asin(min(1.0, math.sqrt(a)))
