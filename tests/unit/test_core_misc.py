"""Small pure pieces: severities, the key catalog, timestamps, geography, identities, profiles, schema."""

from __future__ import annotations

import copy
import json
import math

import pytest
from helpers import DAY3, KEY_DEV, KEY_PROD, make_event

from detector.domain.alerts import Alert, Reason, Severity, alert_id_for
from detector.domain.catalog import KeyCatalog, KeyInfo
from detector.domain.errors import ConfigError
from detector.domain.events import format_ts, parse_ts
from detector.features.geo import UNKNOWN, Enricher, Geo, haversine_km, public_address
from detector.features.identity import ip_prefix, is_human, principal_identity
from detector.features.profiles import KeyProfile, PrincipalProfile, Profiles
from detector.features.schema import FEATURE_NAMES, FEATURE_SCHEMA_VERSION, FEATURES, check_schema, to_vector

# --- severity -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "steps", "expected"),
    [
        (Severity.MEDIUM, 1, Severity.HIGH),
        (Severity.MEDIUM, -1, Severity.LOW),
        (Severity.LOW, -1, Severity.LOW),
        (Severity.LOW, -5, Severity.LOW),
        (Severity.CRITICAL, 1, Severity.CRITICAL),
        (Severity.HIGH, 7, Severity.CRITICAL),
        (Severity.HIGH, 0, Severity.HIGH),
    ],
)
def test_severity_shift_clamps(start: Severity, steps: int, expected: Severity) -> None:
    assert start.shift(steps) is expected


def test_severity_labels_parse_back() -> None:
    for sev in Severity:
        assert Severity.parse(sev.label) is sev
        assert Severity.parse(sev.label.upper()) is sev
    with pytest.raises(ValueError, match="unknown severity"):
        Severity.parse("urgent")


def test_alert_round_trips_through_its_json_form() -> None:
    alert = Alert(
        alert_id=alert_id_for(KEY_PROD, "volume_spike", None, DAY3),
        key_id=KEY_PROD, principal="p", detector="volume_spike", severity=Severity.HIGH, score=12.34567,
        window_start=DAY3 + 120, window_end=DAY3 + 180, first_window_start=DAY3,
        reasons=[Reason("rate_ratio", 12.3, 1.0, "many calls")], event_ids=["a", "b"], count=3,
        environment="production", classification="restricted",
    )  # fmt: skip
    back = Alert.from_dict(json.loads(json.dumps(alert.to_dict())))
    assert back.to_dict() == alert.to_dict()
    assert back.score == pytest.approx(12.3457)


def test_alert_ids_differ_by_every_part_of_their_identity() -> None:
    ids = {
        alert_id_for(KEY_PROD, "d", None, 60.0),
        alert_id_for(KEY_DEV, "d", None, 60.0),
        alert_id_for(KEY_PROD, "e", None, 60.0),
        alert_id_for(KEY_PROD, "d", "p", 60.0),
        alert_id_for(KEY_PROD, "d", None, 120.0),
    }
    assert len(ids) == 5 and all(len(i) == 32 for i in ids)


# --- key catalog ----------------------------------------------------------------------------------

CATALOG = {
    "defaults": {"environment": "unknown", "classification": "internal"},
    "keys": [
        {"match": "arn:aws:kms:*:key/prod-*", "environment": "production", "classification": "restricted"},
        {"match": "arn:aws:kms:*", "environment": "staging"},
        {
            "match": "arn:aws:kms:eu-west-1:1:key/prod-special",
            "environment": "development",
            "owner": "team-x",
        },
        {"match": "alias/payments", "environment": "production", "classification": "confidential"},
        {"match": "alias/ledger-*", "environment": "production", "classification": "restricted"},
    ],
}


@pytest.mark.parametrize(
    ("key_id", "alias", "environment", "classification"),
    [
        ("arn:aws:kms:eu-west-1:1:key/prod-special", None, "development", "internal"),  # exact beats globs
        ("arn:aws:kms:eu-west-1:1:key/prod-7", None, "production", "restricted"),  # first matching glob
        ("arn:aws:kms:eu-west-1:1:key/other", None, "staging", "internal"),  # second glob
        ("1234abcd", "alias/payments", "production", "confidential"),  # exact alias
        ("1234abcd", "alias/ledger-eu", "production", "restricted"),  # alias glob
        ("projects/p/keyRings/r/cryptoKeys/k", None, "unknown", "internal"),  # default
        ("projects/p/keyRings/r/cryptoKeys/k", "alias/unknown", "unknown", "internal"),
    ],
)
def test_catalog_lookup_order(key_id: str, alias: str | None, environment: str, classification: str) -> None:
    info = KeyCatalog.from_mapping(CATALOG).lookup(key_id, alias)
    assert (info.environment, info.classification) == (environment, classification)


def test_catalog_exact_entry_fills_missing_fields_from_defaults() -> None:
    info = KeyCatalog.from_mapping(CATALOG).lookup("arn:aws:kms:eu-west-1:1:key/prod-special")
    assert info == KeyInfo("development", "internal", "team-x", "")


def test_catalog_defaults_come_from_settings_then_the_file() -> None:
    settings_defaults = {"environment": "production", "classification": "restricted"}
    assert KeyCatalog.from_mapping(None, settings_defaults).lookup("k").environment == "production"
    own = KeyCatalog.from_mapping({"defaults": {"environment": "staging"}}, settings_defaults).lookup("k")
    assert (own.environment, own.classification) == ("staging", "restricted")


def test_catalog_lookups_are_cached_and_stable() -> None:
    cat = KeyCatalog.from_mapping(CATALOG)
    first = cat.lookup("arn:aws:kms:eu-west-1:1:key/prod-9")
    assert cat.lookup("arn:aws:kms:eu-west-1:1:key/prod-9") is first


@pytest.mark.parametrize("bad", [["not", "a", "mapping"], {"keys": [{"environment": "x"}]}, {"keys": ["k"]}])
def test_catalog_rejects_malformed_input(bad: object) -> None:
    with pytest.raises(ConfigError):
        KeyCatalog.from_mapping(bad)  # type: ignore[arg-type]


# --- timestamps -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T12:00:00Z", 1_714_564_800.0),
        ("2024-05-01T12:00:00z", 1_714_564_800.0),
        ("2024-05-01T12:00:00+00:00", 1_714_564_800.0),
        ("2024-05-01T14:00:00+02:00", 1_714_564_800.0),
        ("2024-05-01T07:00:00-05:00", 1_714_564_800.0),
        ("2024-05-01T12:00:00", 1_714_564_800.0),  # naive = UTC
        ("2024-05-01T12:00:00.5Z", 1_714_564_800.5),
        ("2024-05-01T12:00:00.123Z", 1_714_564_800.123),
        ("2024-05-01T12:00:00.123456789Z", 1_714_564_800.123456),  # nanoseconds truncated
        ("2024-05-01T17:30:00.123456789+05:30", 1_714_564_800.123456),
        ("2024-05-01T07:00:00.999999999-05:00", 1_714_564_800.999999),
        ("  2024-05-01T12:00:00Z  ", 1_714_564_800.0),
    ],
)
def test_parse_ts(text: str, expected: float) -> None:
    assert parse_ts(text) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("bad", ["", "yesterday", "2024-13-01T00:00:00Z", None, 1714564800])
def test_parse_ts_rejects_non_timestamps(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_ts(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("ts", [0.0, 1_714_564_800.0, 1_714_564_800.123, 1_714_564_800.999, 4_102_444_799.5])
def test_format_then_parse_is_exact_to_the_millisecond(ts: float) -> None:
    text = format_ts(ts)
    assert text.endswith("Z") and len(text) == len("2024-05-01T12:00:00.000Z")
    assert parse_ts(text) == pytest.approx(ts, abs=1e-6)
    assert format_ts(parse_ts(text)) == text


def test_format_ts_truncates_below_milliseconds() -> None:
    assert format_ts(1_714_564_800.1239) == "2024-05-01T12:00:00.123Z"


# --- geography ------------------------------------------------------------------------------------


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


# --- identities -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("principal", "identity"),
    [
        ("arn:aws:sts::1:assumed-role/Admin/alice-session", "arn:aws:sts::1:assumed-role/Admin"),
        ("arn:aws:sts::1:assumed-role/Admin/i-0abc", "arn:aws:sts::1:assumed-role/Admin"),
        ("arn:aws:sts::1:assumed-role/Admin", "arn:aws:sts::1:assumed-role/Admin"),
        ("arn:aws:iam::1:user/alice", "arn:aws:iam::1:user/alice"),
        ("arn:aws:iam::1:role/app", "arn:aws:iam::1:role/app"),
        ("svc@proj.iam.gserviceaccount.com", "svc@proj.iam.gserviceaccount.com"),
        ("bob@example.com", "bob@example.com"),
    ],
)
def test_principal_identity(principal: str, identity: str) -> None:
    assert principal_identity(principal) == identity


def test_is_human() -> None:
    assert is_human("arn:aws:iam::1:user/alice")
    assert is_human("arn:aws:sts::1:assumed-role/AWSReservedSSO_Admin_123")
    assert is_human("bob@example.com")
    assert not is_human("svc@proj.iam.gserviceaccount.com")
    assert not is_human("arn:aws:sts::1:assumed-role/orders-app")


@pytest.mark.parametrize(
    ("address", "kwargs", "prefix"),
    [
        ("198.51.100.23", {}, "198.51.100.0/24"),
        ("198.51.100.23", {"v4_bits": 16}, "198.51.0.0/16"),
        ("2001:db8:1:2::5", {}, "2001:db8:1::/48"),
        ("2001:db8:1:2::5", {"v6_bits": 64}, "2001:db8:1:2::/64"),
        ("kms.amazonaws.com", {}, "kms.amazonaws.com"),
        ("", {}, ""),
    ],
)
def test_ip_prefix(address: str, kwargs: dict[str, int], prefix: str) -> None:
    assert ip_prefix(address, **kwargs) == prefix


def test_ip_prefix_treats_ipv4_mapped_addresses_as_ipv4() -> None:
    """Dual-stack listeners log IPv4 callers as ::ffff:a.b.c.d; they must not all share '::/48'."""
    assert ip_prefix("::ffff:198.51.100.23") == ip_prefix("198.51.100.23") == "198.51.100.0/24"
    assert ip_prefix("::ffff:198.51.100.23") != ip_prefix("::ffff:203.0.113.9")


# --- profiles -------------------------------------------------------------------------------------


def test_profiles_survive_json(history) -> None:
    profiles = copy.deepcopy(history.profiles)
    text = json.dumps(profiles.to_dict())
    back = Profiles.from_dict(json.loads(text))
    assert back.to_dict() == profiles.to_dict()
    assert back.keys == profiles.keys and back.principals == profiles.principals and back.org == profiles.org
    when = DAY3 + 10 * 3600
    assert back.keys[KEY_PROD].baseline(when, 60.0) == profiles.keys[KEY_PROD].baseline(when, 60.0)
    # The hourly cache of shares travels with the profile, so a reloaded model judges the same.
    assert back.keys[KEY_PROD].hour_of_day_shares() == profiles.keys[KEY_PROD].hour_of_day_shares()


def test_profile_json_form_keeps_the_share_cache_and_every_field() -> None:
    prof = KeyProfile(first_ts=1.0, last_ts=2.0)
    shares = prof.hour_of_day_shares()
    data = json.loads(json.dumps(prof.to_dict()))
    back = KeyProfile.from_dict(data)
    assert back == prof and back.shares_cache == prof.shares_cache
    assert back.hour_of_day_shares() == shares
    pp = PrincipalProfile(first_ts=1.0, last_ts=2.0, keys={"k": 1})
    assert PrincipalProfile.from_dict(json.loads(json.dumps(pp.to_dict()))) == pp


def test_evict_idle_forgets_only_the_idle() -> None:
    profiles = Profiles()
    profiles.keys["old"] = KeyProfile(first_ts=0.0, last_ts=100.0)
    profiles.keys["new"] = KeyProfile(first_ts=0.0, last_ts=5_000.0)
    profiles.principals["old"] = PrincipalProfile(first_ts=0.0, last_ts=100.0)
    assert profiles.evict_idle(now=5_000.0, idle_seconds=3_600.0) == 2
    assert set(profiles.keys) == {"new"} and not profiles.principals


# --- feature schema -------------------------------------------------------------------------------


def test_to_vector_order_length_and_transforms() -> None:
    values = {name: float(i) for i, name in enumerate(FEATURE_NAMES)}
    vec = to_vector(values)
    assert len(vec) == len(FEATURE_NAMES) == len(FEATURES)
    for i, (name, transform) in enumerate(FEATURES):
        expected = math.log1p(values[name]) if transform == "log" else values[name]
        assert vec[i] == pytest.approx(expected), name


def test_to_vector_clips_negative_counts_but_keeps_raw_signs() -> None:
    values = dict.fromkeys(FEATURE_NAMES, -3.0)
    vec = dict(zip(FEATURE_NAMES, to_vector(values), strict=True))
    assert vec["events"] == 0.0
    assert vec["rate_z"] == -3.0


def test_to_vector_requires_every_feature() -> None:
    values = dict.fromkeys(FEATURE_NAMES[:-1], 0.0)
    with pytest.raises(KeyError, match=FEATURE_NAMES[-1]):
        to_vector(values)


def test_check_schema() -> None:
    assert check_schema(FEATURE_NAMES, FEATURE_SCHEMA_VERSION) is None
    assert check_schema(list(FEATURE_NAMES), FEATURE_SCHEMA_VERSION) is None
    assert "version" in (check_schema(FEATURE_NAMES, FEATURE_SCHEMA_VERSION + 1) or "")
    swapped = [FEATURE_NAMES[1], FEATURE_NAMES[0], *FEATURE_NAMES[2:]]
    assert "order" in (check_schema(swapped, FEATURE_SCHEMA_VERSION) or "")
    assert check_schema(FEATURE_NAMES[:-1], FEATURE_SCHEMA_VERSION) is not None
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
