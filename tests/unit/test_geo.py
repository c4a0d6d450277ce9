"""Geography: public addresses, the enricher and its cache, great-circle distance."""

from __future__ import annotations

import math

import pytest
from helpers import make_event

from detector.features.geo import UNKNOWN, Enricher, Geo, haversine_km, public_address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8.8.8.8", "8.8.8.8"),
        (" 8.8.8.8 ", "8.8.8.8"),
        ("2606:4700:4700::1111", "2606:4700:4700::1111"),
        ("::ffff:8.8.8.8", "8.8.8.8"),  # IPv4-mapped IPv6 is located as its IPv4 address
        ("10.1.2.3", None),
        ("172.16.0.1", None),
        ("192.168.1.1", None),
        ("127.0.0.1", None),
        ("169.254.1.1", None),
        ("100.64.0.1", None),  # carrier-grade NAT
        ("198.51.100.7", None),  # documentation
        ("203.0.113.7", None),
        ("2001:db8::1", None),
        ("fe80::1%eth0", None),
        ("::1", None),
        ("kms.amazonaws.com", None),
        ("AWS Internal", None),
        ("", None),
        ("1" * 65, None),
    ],
)
def test_public_address(text: str, expected: str | None) -> None:
    assert public_address(text) == expected


class FakeLocator:
    """Knows a few addresses and counts how often it is asked."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.known = {"8.8.8.8": Geo("US", 37.75, -97.82), "1.1.1.1": Geo("AU", -33.49, 143.21)}

    def locate(self, ip: str) -> Geo | None:
        self.calls.append(ip)
        return self.known.get(ip)


def test_enricher_locates_public_addresses_once() -> None:
    loc = FakeLocator()
    enricher = Enricher(loc)
    events = [
        make_event(event_id=str(i), source_ip="8.8.8.8", country=None, lat=None, lon=None) for i in range(3)
    ]
    for ev in events:
        enricher.enrich(ev)
    assert [(e.country, e.lat, e.lon) for e in events] == [("US", 37.75, -97.82)] * 3
    assert loc.calls == ["8.8.8.8"]


@pytest.mark.parametrize("address", ["10.0.0.1", "kms.amazonaws.com", "AWS Internal", "", "9.9.9.9"])
def test_enricher_marks_unlocatable_addresses_explicitly_unknown(address: str) -> None:
    loc = FakeLocator()
    ev = make_event(source_ip=address, country=None, lat=None, lon=None)
    Enricher(loc).enrich(ev)
    assert (ev.country, ev.lat, ev.lon) == ("", None, None)
    assert loc.calls == ([address] if address == "9.9.9.9" else [])  # private and names: never asked


def test_enricher_keeps_what_the_source_gave() -> None:
    loc = FakeLocator()
    given = make_event(source_ip="8.8.8.8", country="FR", lat=48.85, lon=2.35)
    coords_only = make_event(source_ip="8.8.8.8", country=None, lat=1.0, lon=2.0)
    explicit_unknown = make_event(source_ip="8.8.8.8", country="", lat=None, lon=None)
    for ev in (given, coords_only, explicit_unknown):
        Enricher(loc).enrich(ev)
    assert (given.country, given.lat, given.lon) == ("FR", 48.85, 2.35)
    assert (coords_only.country, coords_only.lat, coords_only.lon) == ("", 1.0, 2.0)
    assert (explicit_unknown.country, explicit_unknown.lat) == ("", None)
    assert loc.calls == []


def test_enricher_without_a_database_knows_nothing() -> None:
    assert Enricher(None).lookup("8.8.8.8") == UNKNOWN


def test_enricher_cache_is_bounded() -> None:
    loc = FakeLocator()
    enricher = Enricher(loc, cache_size=2)
    for address in ("8.8.8.8", "1.1.1.1", "9.9.9.9", "8.8.8.8"):
        enricher.lookup(address)
    assert len(enricher._cache) <= 2
    assert loc.calls.count("8.8.8.8") == 2  # forgotten when the cache filled up


def test_haversine() -> None:
    assert haversine_km(50.0, 8.0, 50.0, 8.0) == 0.0
    london_new_york = haversine_km(51.5074, -0.1278, 40.7128, -74.0060)
    assert london_new_york == pytest.approx(5570, abs=5)
    assert haversine_km(40.7128, -74.0060, 51.5074, -0.1278) == pytest.approx(london_new_york)
    assert haversine_km(0.0, 0.0, 0.0, 180.0) == pytest.approx(math.pi * 6371.0088)
    assert haversine_km(0.0, 179.9, 0.0, -179.9) == pytest.approx(22.24, abs=0.1)  # across the date line
