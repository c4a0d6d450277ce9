"""Every rule detector with the attack it is for and the closest benign variant (Panther style).

Each case runs the real pipeline: a detection pipeline seeded with the profiles three days of
normal traffic taught a training pipeline (see ``tests/helpers.py``), fed normal traffic around
the attack plus the attack's events. Positive cases check the detector, severity, key, principal,
evidence and that the reason says in plain words what was unusual; negative cases check that the
benign variant raises nothing.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec
import pytest
from helpers import (
    ALICE,
    ALICE_IP,
    ASHBURN,
    CLI_UA,
    DAY3,
    FRANKFURT,
    HOUR,
    KEY_DEV,
    KEY_PROD,
    MINUTE,
    NEW_YORK,
    ORDERS,
    ORDERS_ID,
    REPORTS,
    REPORTS_ID,
    REPORTS_IPS,
    SAO_PAULO,
    by_detector,
    make_event,
    merged,
    normal_traffic,
    run,
    spread,
)

from detector.alertbook import AlertBook, book_for
from detector.config import (
    CallerVolumeSettings,
    DetectionSettings,
    NewGeographySettings,
    RulesSettings,
    SeasonalVolumeSettings,
)
from detector.domain.alerts import Alert, Finding, Reason, Severity
from detector.domain.catalog import KeyCatalog
from detector.domain.events import Event
from detector.features.identity import principal_identity
from detector.features.profiles import PrincipalProfile, Profiles
from detector.features.window import KeyWindow, principal_windows, window_features
from detector.pipeline import Pipeline
from detector.rules import DETECTORS, KEY_RULES, PRINCIPAL_RULES, RuleContext
from detector.rules.seasonal_volume import routine_visit

AT = DAY3 + 10 * HOUR  # Thursday 10:00 UTC: everyone is at work
NIGHT = DAY3 + 3 * HOUR  # Thursday 03:00 UTC: only the orders workload trickles
INTRUDER = "arn:aws:sts::111122223333:assumed-role/intruder/session-1"
INTRUDER_ID = principal_identity(INTRUDER)
OTHER_KEY = "arn:aws:kms:us-east-1:111122223333:key/payroll"
FRESH_KEY = "arn:aws:kms:us-east-1:111122223333:key/fresh"
SECRET = "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/"
AS_ALICE = {"principal": ALICE, "source_ip": ALICE_IP, "place": NEW_YORK, "user_agent": CLI_UA}
AS_REPORTS = {"principal": REPORTS, "source_ip": REPORTS_IPS[0], "place": FRANKFURT}


def around(at: float, before: float = 30 * MINUTE, after: float = 10 * MINUTE) -> list[Event]:
    """Normal traffic from ``before`` ahead of ``at`` to ``after`` past it."""
    return normal_traffic(at - before, at + after)


@dataclass(frozen=True)
class Positive:
    """An attack and what its alert must say."""

    detector: str
    events: Callable[[], list[Event]]
    severities: tuple[Severity, ...]
    principal: str
    mentions: tuple[str, ...]
    key_id: str = KEY_PROD
    rules: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Negative:
    """The closest benign variant: no alert from ``detector`` (and, if ``silent``, none at all)."""

    detector: str
    events: Callable[[], list[Event]]
    silent: bool = True
    rules: dict[str, object] = field(default_factory=dict)


def _burst_from_brazil() -> list[Event]:
    return merged(around(AT), spread(AT + MINUTE, 3, prefix="br", source_ip="200.147.1.9", place=SAO_PAULO))


def _orders_from_frankfurt() -> list[Event]:
    # The organisation works from DE (reports-app); orders-app already uses this key: an expansion.
    return merged(around(AT), spread(AT + MINUTE, 3, prefix="de", source_ip="3.120.9.9", place=FRANKFURT))


def _intruder_from_frankfurt() -> list[Event]:
    return merged(
        around(AT),
        spread(AT + MINUTE, 3, prefix="de", principal=INTRUDER, source_ip="3.120.9.9", place=FRANKFURT),
    )


def _alice_new_york_then_frankfurt(gap: float) -> Callable[[], list[Event]]:
    def events() -> list[Event]:
        last_in_ny = DAY3 + 16 * HOUR + 59 * MINUTE  # after her last usual call of the day
        home = make_event(event_id="ny", ts=last_in_ny, **AS_ALICE)
        away = make_event(event_id="fra", ts=last_in_ny + gap, **{**AS_ALICE, "source_ip": "91.64.3.3",
                                                                  "place": FRANKFURT})  # fmt: skip
        return merged(normal_traffic(DAY3 + 16 * HOUR, DAY3 + 17 * HOUR), [home, away])

    return events


def _orders_hops_to_frankfurt() -> list[Event]:
    # A workload role runs in every region its service is deployed to: a hop between two
    # countries the organisation works from is not travel.
    hop = make_event(event_id="hop", ts=AT + 90, source_ip="3.120.9.9", place=FRANKFURT)
    return merged(around(AT), [hop])


def _spike(extra: int) -> list[Event]:
    return merged(around(AT), spread(AT + 2 * MINUTE, extra, prefix="spike"))


def _batch_surge() -> list[Event]:
    # Familiar sources at about three times the usual rate for a quarter of an hour.
    extra = [spread(AT + i * MINUTE, 10, prefix=f"surge{i}", source_ip="54.157.10.2") for i in range(15)]
    return merged(around(AT, after=20 * MINUTE), *extra)


def _drift(**who: object) -> Callable[[], list[Event]]:
    def events() -> list[Event]:
        extra = [spread(AT + i * MINUTE, 8, prefix=f"slow{i}", **who) for i in range(40)]
        return merged(around(AT, after=45 * MINUTE), *extra)

    return events


def _usual_rise(extra_per_minute: int, minutes: int) -> Callable[[], list[Event]]:
    # The key's own caller, from its usual network, calling more than usual.
    def events() -> list[Event]:
        extra = [spread(AT + i * MINUTE, extra_per_minute, prefix=f"rise{i}", source_ip="54.157.10.2")
                 for i in range(minutes)]  # fmt: skip
        return merged(around(AT, after=(minutes + 5) * MINUTE), *extra)

    return events


def _one(operation: str, **who: object) -> Callable[[], list[Event]]:
    return lambda: merged(around(AT), [make_event(event_id="priv", ts=AT + 90, operation=operation, **who)])


def _denied(n: int) -> list[Event]:
    return merged(around(AT), spread(AT + 2 * MINUTE, n, prefix="deny", outcome="denied"))


def _probe(keys: tuple[str, ...]) -> list[Event]:
    calls = [make_event(event_id=f"probe{i}", ts=AT + 70 + i, key_id=k, principal=INTRUDER, outcome="denied",
                        source_ip="198.51.100.10", place=ASHBURN) for i, k in enumerate(keys)]  # fmt: skip
    return merged(around(AT), calls)


def _slow_probe(keys: int) -> Callable[[], list[Event]]:
    # One denied call every two minutes, each on another key: never three keys in one window.
    def events() -> list[Event]:
        calls = [make_event(event_id=f"slow-probe{i}", ts=AT + 70 + 120 * i, key_id=f"{OTHER_KEY}-{i}",
                            principal=INTRUDER, outcome="denied", source_ip="198.51.100.10", place=ASHBURN)
                 for i in range(keys)]  # fmt: skip
        return merged(around(AT, after=(2 * keys + 5) * MINUTE), calls)

    return events


def _alice_at(at: float, n: int) -> Callable[[], list[Event]]:
    return lambda: merged(around(at), spread(at + MINUTE, n, prefix="alice", **AS_ALICE))


def _reports_on_dev_at(at: float) -> Callable[[], list[Event]]:
    def events() -> list[Event]:
        calls = spread(at + MINUTE, 12, prefix="rep", key_id=KEY_DEV, operation="Encrypt", **AS_REPORTS)
        return merged(around(at), calls)

    return events


def _reports_on_dev_steadily(at: float, minutes: int) -> Callable[[], list[Event]]:
    def events() -> list[Event]:
        who = {"key_id": KEY_DEV, "operation": "Encrypt", **AS_REPORTS}
        calls = [spread(at + i * MINUTE, 4, prefix=f"rep{i}", **who) for i in range(minutes)]
        return merged(around(at, after=(minutes + 5) * MINUTE), *calls)

    return events


def _secrets(n: int, distinct: int, **who: object) -> Callable[[], list[Event]]:
    # Decrypts whose encryption context names a secret: ``n`` calls over ``distinct`` secrets.
    def events() -> list[Event]:
        calls = [make_event(event_id=f"sec{i}", ts=AT + 60 + i, resource=f"{SECRET}{i % distinct}", **who)
                 for i in range(n)]  # fmt: skip
        return merged(around(AT), calls)

    return events


def _orders_from(
    source_ip: str, place: tuple[str, float, float], principal: str = ORDERS
) -> Callable[[], list[Event]]:
    return lambda: merged(
        around(AT),
        spread(AT + MINUTE, 3, prefix="net", source_ip=source_ip, place=place, principal=principal),
    )


def _alice_steadily(at: float, minutes: int) -> Callable[[], list[Event]]:
    def events() -> list[Event]:
        calls = [spread(at + i * MINUTE, 3, prefix=f"al{i}", **AS_ALICE) for i in range(minutes)]
        return merged(around(at, after=(minutes + 5) * MINUTE), *calls)

    return events


def _reports_encrypting(share: float, minutes: int) -> Callable[[], list[Event]]:
    # The reports workload on the dev key, at its usual rate, with ``share`` of its calls Encrypt.
    def events() -> list[Event]:
        out, turned = [], 0.0
        for e in around(AT, after=(minutes + 5) * MINUTE):
            if e.principal == REPORTS and AT <= e.ts < AT + minutes * MINUTE:
                turned += share
                op = "Encrypt" if turned >= 1.0 else "GenerateDataKey"
                turned -= 1.0 if turned >= 1.0 else 0.0
                e = msgspec.structs.replace(e, operation=op)
            out.append(e)
        return out

    return events


def _calls(n: int, **fields: object) -> Callable[[], list[Event]]:
    return lambda: merged(around(AT), spread(AT + MINUTE, n, prefix="new", **fields))


# The volume tests' cases say so; cases of another rise detector switch them off, since a rise is
# one alert per key whichever detectors see it (and takes the severity of the most severe).
VOLUME_ON: dict[str, object] = {
    "seasonal_volume": SeasonalVolumeSettings(enabled=True),
    "caller_volume": CallerVolumeSettings(enabled=True),
}
VOLUME_OFF: dict[str, object] = {
    "seasonal_volume": SeasonalVolumeSettings(enabled=False),
    "caller_volume": CallerVolumeSettings(enabled=False),
}
HIGH_ONLY = (Severity.HIGH,)
MEDIUM_ONLY = (Severity.MEDIUM,)

POSITIVE = {
    "new_geography: country new to the organisation": Positive(
        "new_geography", _burst_from_brazil, HIGH_ONLY, ORDERS_ID, ("BR", "US")
    ),
    "new_geography: org country by a caller new to the key": Positive(
        "new_geography", _intruder_from_frankfurt, MEDIUM_ONLY, INTRUDER_ID, ("DE",)
    ),
    "impossible_travel: person in New York then Frankfurt 10 min later": Positive(
        "impossible_travel",
        _alice_new_york_then_frankfurt(10 * MINUTE),
        HIGH_ONLY,
        ALICE,
        ("US", "DE", "km/h"),
    ),
    "volume_spike: 40x the hour's baseline": Positive(
        "volume_spike", lambda: _spike(200), HIGH_ONLY, ORDERS_ID, ("×", "10:02")
    ),
    "rate_drift: slow rise by a role never seen before": Positive(
        "rate_drift",
        _drift(principal=INTRUDER),
        (Severity.MEDIUM,),
        INTRUDER_ID,
        ("σ", "limit 20σ"),
        rules=VOLUME_OFF,
    ),
    "rate_drift: known caller's slow rise from a new network where the key already works": Positive(
        "rate_drift",
        _drift(source_ip="54.160.1.7"),
        (Severity.MEDIUM,),
        ORDERS_ID,
        ("networks new",),
        rules=VOLUME_OFF,
    ),
    "unusual_admin: ScheduleKeyDeletion by a principal that never administered": Positive(
        "unusual_admin", _one("ScheduleKeyDeletion"), HIGH_ONLY, ORDERS_ID, ("ScheduleKeyDeletion", "never")
    ),
    "unusual_admin: DisableKey on a key with no history by a caller that never administered": Positive(
        "unusual_admin",
        _one("DisableKey", key_id=FRESH_KEY),
        HIGH_ONLY,
        ORDERS_ID,
        ("no history", "never"),
        key_id=FRESH_KEY,
    ),
    "unusual_admin: ScheduleKeyDeletion by the key's admin who never destroyed": Positive(
        "unusual_admin",
        _one("ScheduleKeyDeletion", **AS_ALICE),
        (Severity.LOW,),
        ALICE,
        ("ScheduleKeyDeletion",),
    ),
    "seasonal_volume: the usual caller from its usual network, three times its rate for 2 h": Positive(
        "seasonal_volume",
        _usual_rise(10, 130),
        MEDIUM_ONLY,
        ORDERS_ID,
        ("×", "chance", "UTC"),
        rules=VOLUME_ON,
    ),
    "seasonal_volume: the key's own workload steadily at night, when the key idles": Positive(
        "seasonal_volume",
        _reports_on_dev_steadily(NIGHT, 10),
        HIGH_ONLY,
        REPORTS_ID,
        ("03:00", "chance"),
        key_id=KEY_DEV,
        rules=VOLUME_ON,
    ),
    "operation_mix: a workload that generates data keys turning to Encrypt only, at its usual rate": Positive(
        "operation_mix",
        _reports_encrypting(1.0, 90),
        MEDIUM_ONLY,
        REPORTS_ID,
        ("Encrypt made 100%", "largest share"),
        key_id=KEY_DEV,
    ),
    "caller_volume: a minority caller of a shared key steadily at night, hidden in its traffic": Positive(
        "caller_volume",
        _alice_steadily(NIGHT, 30),
        HIGH_ONLY,
        ALICE,
        ("alice", "03:00", "chance"),
        rules=VOLUME_ON,
    ),
    "object_harvest: a person opens 40 distinct secrets within a minute": Positive(
        "object_harvest", _secrets(40, 40, **AS_ALICE), HIGH_ONLY, ALICE, ("40 distinct", "15 minutes")
    ),
    "new_network: workload session used from an ISP network abroad": Positive(
        "new_network",
        _orders_from("62.10.20.30", FRANKFURT),
        HIGH_ONLY,
        ORDERS_ID,
        ("62.10.20.0/24", "DE", ORDERS, "credentials used elsewhere"),
    ),
    "new_network: workload (no session names) from an ISP network abroad": Positive(
        "new_network",
        _orders_from("62.10.20.30", FRANKFURT, principal=ORDERS_ID),
        MEDIUM_ONLY,
        ORDERS_ID,
        ("62.10.20.0/24", "DE"),
    ),
    "denied_burst: 15 denied calls in one window": Positive(
        "denied_burst", lambda: _denied(15), MEDIUM_ONLY, ORDERS_ID, ("15 denied calls",)
    ),
    "denied_probing: one caller denied on three keys": Positive(
        "denied_probing", lambda: _probe((KEY_PROD, KEY_DEV, OTHER_KEY)), HIGH_ONLY, INTRUDER_ID, ("3 keys",)
    ),
    "denied_probing: one caller denied on six keys, one every two minutes": Positive(
        "denied_probing",
        _slow_probe(6),
        HIGH_ONLY,
        INTRUDER_ID,
        ("on 5 keys within 15 min", "at most 0 before"),
        key_id=f"{OTHER_KEY}-4",
    ),
    "off_hours: person working at 03:00, which they never do": Positive(
        "off_hours", _alice_at(NIGHT, 4), MEDIUM_ONLY, ALICE, ("03:00", "4 calls")
    ),
    "off_hours: workload on a key that is idle at night": Positive(
        "off_hours", _reports_on_dev_at(NIGHT), MEDIUM_ONLY, REPORTS_ID, ("03:00",), key_id=KEY_DEV
    ),
    "new_principal: data calls by a role the organisation never saw": Positive(
        "new_principal", _calls(3, principal=INTRUDER), HIGH_ONLY, INTRUDER_ID, (INTRUDER_ID, "never seen")
    ),
    "new_principal: data calls by a role known on other keys": Positive(
        "new_principal", _calls(3, **AS_REPORTS), MEDIUM_ONLY, REPORTS_ID, (REPORTS_ID, "never on this key")
    ),
    "new_principal: a caller that only ever read metadata starts decrypting": Positive(
        "new_principal",
        lambda: merged(
            _calls(3, principal=INTRUDER, operation="DescribeKey")(),
            spread(AT + 5 * MINUTE, 3, prefix="dec", principal=INTRUDER),
        ),
        MEDIUM_ONLY,
        INTRUDER_ID,
        (INTRUDER_ID, "metadata"),
    ),
    "new_operation: re-encryption sweep": Positive(
        "new_operation", _calls(8, operation="ReEncrypt"), MEDIUM_ONLY, ORDERS_ID, ("8 ReEncrypt calls",)
    ),
}

NEGATIVE = {
    # The workload from a network never seen in a new country: new_network reports that (a stolen
    # instance credential used from another cloud account looks the same as an expansion).
    "new_geography: known caller expands into an org country": Negative(
        "new_geography", _orders_from_frankfurt, silent=False
    ),
    "operation_mix: a workload a little beyond its usual share of Encrypt for an hour": Negative(
        "operation_mix", _reports_encrypting(0.5, 60)
    ),
    "caller_volume: a minority caller at its usual hours and rate": Negative(
        "caller_volume", _alice_steadily(AT, 30), rules=VOLUME_ON
    ),
    "object_harvest: a service reads its own five secrets over and over": Negative(
        "object_harvest",
        _secrets(60, 5),
        silent=False,  # sixty calls in a minute: a volume spike
    ),
    "object_harvest: a person opens a dozen secrets": Negative(
        "object_harvest", _secrets(12, 12, **AS_ALICE)
    ),
    "new_network: workload from a network another identity already uses": Negative(
        "new_network", _orders_from(REPORTS_IPS[0], FRANKFURT), silent=False
    ),
    # New instances (new session names) in a new block, in a country it works from: a deployment.
    "new_network: new sessions of a workload from a new block": Negative(
        "new_network", _orders_from("62.10.20.30", ASHBURN, principal=f"{ORDERS_ID}/i-0new5678")
    ),
    "denied_probing: one caller denied on four keys over eight minutes": Negative(
        "denied_probing", _slow_probe(4), silent=False
    ),
    "new_network: a person from a new home network": Negative(
        "new_network",
        lambda: merged(
            around(AT), spread(AT + MINUTE, 3, prefix="home", **{**AS_ALICE, "source_ip": "98.7.6.5"})
        ),
    ),
    "impossible_travel: person flies New York to Frankfurt in 7.6 h": Negative(
        "impossible_travel", _alice_new_york_then_frankfurt(7.6 * HOUR)
    ),
    # Not travel; the network is new to the workload and to everyone: new_network reports it.
    "impossible_travel: workload in two org regions": Negative(
        "impossible_travel", _orders_hops_to_frankfurt, silent=False
    ),
    # A threefold surge of a quarter hour on a steady key is improbable: seasonal_volume reports it.
    "volume_spike: batch 3x surge from known sources": Negative("volume_spike", _batch_surge, silent=False),
    "rate_drift: batch 3x surge from known sources": Negative("rate_drift", _batch_surge, silent=False),
    "seasonal_volume: a fifth more calls for an hour": Negative(
        "seasonal_volume", _usual_rise(1, 60), rules=VOLUME_ON
    ),
    "seasonal_volume: a month-end batch at three times the rate for an hour": Negative(
        "seasonal_volume", _usual_rise(10, 60), rules=VOLUME_ON
    ),
    "unusual_admin: tagging a key with no history": Negative(
        "unusual_admin", _one("TagResource", key_id=FRESH_KEY, **AS_ALICE)
    ),
    # A 3.6x rise for 40 minutes is seasonal_volume's, whoever makes it.
    "rate_drift: same slow rise from the usual network": Negative(
        "rate_drift", _drift(source_ip="54.157.10.3"), silent=False
    ),
    # More addresses of the caller's own provider block (autoscaling) are not a new source.
    "rate_drift: same slow rise from a new address in the caller's own block": Negative(
        "rate_drift", _drift(source_ip="54.157.99.3"), silent=False, rules=VOLUME_OFF
    ),
    "rate_drift: known caller from a new network in a new region (an expansion, by design)": Negative(
        "rate_drift", _drift(source_ip="54.160.1.7", place=("US", 45.8399, -119.7006)), silent=False
    ),
    "unusual_admin: routine rotation by the key's admin": Negative(
        "unusual_admin", _one("RotateKeyOnDemand", **AS_ALICE)
    ),
    "unusual_admin: policy change by the key's admin": Negative(
        "unusual_admin", _one("PutKeyPolicy", **AS_ALICE)
    ),
    "denied_burst: a few denials": Negative("denied_burst", lambda: _denied(3)),
    "denied_probing: denied on two keys": Negative("denied_probing", lambda: _probe((KEY_PROD, KEY_DEV))),
    "off_hours: person working in the daytime": Negative("off_hours", _alice_at(AT, 4)),
    "off_hours: a single call at 03:00": Negative("off_hours", _alice_at(NIGHT, 1)),
    "off_hours: workload on the dev key in its working hours": Negative("off_hours", _reports_on_dev_at(AT)),
    "new_principal: new caller only reads metadata": Negative(
        "new_principal", _calls(3, principal=INTRUDER, operation="DescribeKey")
    ),
    "new_principal: new caller only denied": Negative(
        "new_principal", _calls(3, principal=INTRUDER, outcome="denied")
    ),
    "new_operation: a couple of new data calls": Negative("new_operation", _calls(3, operation="ReEncrypt")),
    "new_operation: new read operation in volume": Negative(
        "new_operation", _calls(8, operation="ListGrants")
    ),
}


def _settings(base: DetectionSettings, rules: dict[str, object]) -> DetectionSettings:
    if not rules:
        return base
    return base.model_copy(update={"rules": base.rules.model_copy(update=rules)})


def _only(alerts: list[Alert], detector: str) -> Alert:
    found = by_detector(alerts, detector)
    assert len(found) == 1, f"expected one {detector} alert, got {[(a.detector, a.count) for a in alerts]}"
    return found[0]


def _first(alerts: list[Alert], detector: str) -> Alert:
    """The earliest alert of ``detector`` (how many episodes one attack makes is tested apart)."""
    found = by_detector(alerts, detector)
    assert found, f"no {detector} alert among {[(a.detector, a.count) for a in alerts]}"
    return min(found, key=lambda a: a.first_window_start)


@pytest.mark.parametrize("case", POSITIVE.values(), ids=POSITIVE.keys())
def test_attack_raises_an_explained_alert(case: Positive, make_pipeline, settings: DetectionSettings) -> None:
    events = case.events()
    pipe: Pipeline = make_pipeline(_settings(settings, case.rules))
    alert = _first(run(pipe, events), case.detector)
    assert alert.severity in case.severities
    assert alert.key_id == case.key_id
    # Identity, not the raw principal: one rule (see the denied_burst test below) keeps session names.
    assert principal_identity(alert.principal or "") == case.principal
    assert alert.reasons, "an alert must say why"
    text = alert.reasons[0].text
    assert text.strip()
    for word in case.mentions:
        assert word in text, f"{word!r} not in {text!r}"
    ids = {e.event_id for e in events}
    assert alert.event_ids and set(alert.event_ids) <= ids


@pytest.mark.parametrize("case", NEGATIVE.values(), ids=NEGATIVE.keys())
def test_benign_variant_raises_nothing(case: Negative, make_pipeline, settings: DetectionSettings) -> None:
    alerts = run(make_pipeline(_settings(settings, case.rules)), case.events())
    assert not by_detector(alerts, case.detector)
    if case.silent:
        assert [(a.detector, a.reasons[0].text) for a in alerts] == []


def test_every_registered_detector_has_positive_and_negative_cases() -> None:
    rules = set(KEY_RULES) | set(PRINCIPAL_RULES)
    assert rules == set(DETECTORS) - {"isolation_forest"}
    assert {c.detector for c in POSITIVE.values()} == rules
    assert {c.detector for c in NEGATIVE.values()} == rules


def test_normal_history_is_clean(history) -> None:
    """Three days of the traffic the cases are built on raise nothing while learning."""
    assert history.alerts == []


# --- one generic check over every registered rule -----------------------------------------------


def _normal_windows(start: float, minutes: int) -> list[list[KeyWindow]]:
    """Normal traffic of ``minutes`` one-minute periods from ``start``, as key windows per period."""
    periods = []
    for m in range(minutes):
        lo = start + m * MINUTE
        bucket: dict[str, KeyWindow] = {}
        for ev in normal_traffic(lo, lo + MINUTE):
            bucket.setdefault(ev.key_id, KeyWindow(ev.key_id, lo, lo + MINUTE)).events.append(ev)
        periods.append(list(bucket.values()))
    return periods


RULES = {**KEY_RULES, **PRINCIPAL_RULES}


@pytest.mark.parametrize("name", RULES)
def test_rule_is_silent_on_windows_identical_to_history(name: str, history, settings) -> None:
    """Each rule, called directly, returns None on windows exactly like the ones it learned from."""
    ctx = RuleContext(settings, copy.deepcopy(history.profiles))
    judged = 0
    for hour in (3, 10, 16):  # night trickle, full office, end of the office day
        for windows in _normal_windows(DAY3 + hour * HOUR + 20 * MINUTE, 12):
            by_principal = principal_windows(windows, settings.window.max_evidence)
            if name in PRINCIPAL_RULES:
                for pw in by_principal.values():
                    found = PRINCIPAL_RULES[name](pw, windows[0].start, windows[0].end, ctx)
                    assert found is None, found
                    judged += 1
                continue
            for win in windows:
                f = window_features(win, ctx.profiles, by_principal, window_seconds=settings.window.seconds,
                                    mature=True)  # fmt: skip
                found = KEY_RULES[name](f, ctx)
                assert found is None, found
                judged += 1
    assert judged >= 36


# --- behaviours specific to one rule --------------------------------------------------------------


def test_new_geography_can_be_told_to_alert_on_expansions(make_pipeline, settings) -> None:
    """With the opt-in setting an expansion alerts (low), and its text must not call a known caller new."""
    rules = {"new_geography": NewGeographySettings(alert_known_org_country_by_known_principal=True)}
    alert = _only(run(make_pipeline(_settings(settings, rules)), _orders_from_frankfurt()), "new_geography")
    assert alert.severity == Severity.LOW and alert.principal == ORDERS_ID
    text = alert.reasons[0].text
    assert "DE" in text
    assert "new to this key" not in text, f"orders-app has used this key for days, yet: {text!r}"


def test_rate_drift_remembers_a_caller_learned_in_its_first_window(mature: Pipeline) -> None:
    """A caller known elsewhere is learned on the key after one (medium) window, yet still feeds
    the drift for ``profile.recent_hours``: ~2.5x for 40 minutes, never a spike."""
    alerts = run(mature, _drift(**AS_REPORTS)())
    assert not by_detector(alerts, "volume_spike")
    assert by_detector(alerts, "new_principal")[0].count == 1  # learned after its first window
    assert REPORTS_ID in mature.profiles.keys[KEY_PROD].principals
    assert _first(alerts, "rate_drift").principal == REPORTS_ID


@pytest.mark.parametrize("who", [AS_REPORTS, {"principal": INTRUDER}], ids=["known-elsewhere", "never-seen"])
def test_one_sustained_drift_is_one_alert_episode(mature: Pipeline, who: dict[str, object]) -> None:
    """40 minutes of one slow rise: one alert that grows (count, window_end), not a new one each alarm."""
    alert = _only(run(mature, _drift(**who)()), "rate_drift")
    assert alert.count >= 2
    assert alert.window_end - alert.first_window_start >= 10 * MINUTE


def test_denied_burst_names_the_caller_identity_like_other_rules(mature: Pipeline) -> None:
    """Alerts carry principal identities (no per-session suffix), so one role is one principal."""
    alert = _only(run(mature, _denied(15)), "denied_burst")
    assert alert.principal == principal_identity(ORDERS), alert.principal


def test_new_principal_is_judged_once_then_learned(mature: Pipeline) -> None:
    """A medium finding is not quarantined: the caller is learned and its next window is quiet."""
    first = _calls(3, **AS_REPORTS)()
    later = spread(AT + 5 * MINUTE, 3, prefix="again", **AS_REPORTS)
    alert = _only(run(mature, merged(first, later)), "new_principal")
    assert alert.count == 1


def test_volume_spike_below_the_familiar_ratio_is_quiet(mature: Pipeline) -> None:
    """Five times the baseline from familiar sources stays under ``ratio`` (8x)."""
    assert by_detector(run(mature, _spike(20)), "volume_spike") == []


def test_quarantined_attack_is_not_learned(mature: Pipeline) -> None:
    """A high finding keeps its window out of the profile: BR stays new for the next window."""
    events = merged(
        _burst_from_brazil(),
        spread(AT + 5 * MINUTE, 3, prefix="br2", source_ip="200.147.1.9", place=SAO_PAULO),
    )
    alert = _only(run(mature, events), "new_geography")
    assert alert.count == 2
    assert "BR" not in mature.profiles.keys[KEY_PROD].countries
    assert mature.stats.quarantined_windows >= 2


def test_disabled_rules_raise_nothing(make_pipeline, settings: DetectionSettings) -> None:
    names = set(RulesSettings.model_fields)
    off = {name: getattr(settings.rules, name).model_copy(update={"enabled": False}) for name in names}
    quiet = settings.model_copy(update={"rules": RulesSettings(**off)})
    events = merged(
        _burst_from_brazil(), _one("ScheduleKeyDeletion")(), _probe((KEY_PROD, KEY_DEV, OTHER_KEY))
    )
    assert run(make_pipeline(quiet), events) == []


def _finding(detector: str, start: float) -> Finding:
    return Finding(detector, KEY_PROD, ORDERS_ID, start, start + MINUTE, 3.0, Severity.MEDIUM, [])


@pytest.mark.parametrize(
    ("detector", "alerts"),
    [("seasonal_volume", 1), ("caller_volume", 1), ("volume_spike", 1), ("denied_burst", 2)],
)
def test_a_rise_that_ebbs_and_returns_within_hours_is_one_alert(detector: str, alerts: int) -> None:
    book = AlertBook(KeyCatalog.from_mapping(None, {}), DetectionSettings().severity, MINUTE)
    ids = {book.add(_finding(detector, AT + offset)).alert_id for offset in (0, 90 * MINUTE)}
    assert len(ids) == alerts


def test_a_rise_seen_by_several_detectors_is_one_alert_with_each_reason() -> None:
    book = AlertBook(KeyCatalog.from_mapping(None, {}), DetectionSettings().severity, MINUTE)
    first = _finding("volume_spike", AT)
    first.reasons = [Reason("rate_ratio", 12.0, 2.0, "a spike")]
    second = _finding("seasonal_volume", AT + 20 * MINUTE)
    second.reasons = [Reason("seasonal_ratio", 4.0, 1.0, "a sustained rise")]
    alerts = {book.add(f).alert_id: f for f in (first, second)}
    (alert,) = list(book.open.values())
    assert len(alerts) == 1 and alert.count == 2
    assert [r.feature for r in alert.reasons] == ["rate_ratio", "seasonal_ratio"]


def test_a_shared_surge_is_one_notice_unless_a_key_rises_with_new_sources() -> None:
    book = AlertBook(KeyCatalog.from_mapping(None, {}), DetectionSettings().severity, MINUTE)
    notice = dataclasses.replace(_finding("seasonal_volume", AT), severity=Severity.LOW, peers=(KEY_DEV,))
    joined = dataclasses.replace(_finding("caller_volume", AT + 10 * MINUTE), key_id=KEY_DEV)
    own = dataclasses.replace(joined, detector="volume_spike", severity=Severity.HIGH)
    ids = [book.add(f).alert_id for f in (notice, joined, own)]
    assert ids[0] == ids[1] != ids[2]


def _visitor(keys: int, max_key_hour: int, source_ip: str) -> tuple[RuleContext, KeyWindow]:
    pp = PrincipalProfile(first_ts=DAY3, last_ts=AT, keys={f"k{i}": 100 for i in range(keys)},
                          max_key_hour=max_key_hour, networks={"10.1.0.0/16": 500})  # fmt: skip
    ctx = RuleContext(DetectionSettings(), Profiles(principals={ORDERS_ID: pp}))
    events = spread(AT, 40, principal=f"{ORDERS}/backup-job", source_ip=source_ip)
    return ctx, KeyWindow(KEY_PROD, AT, AT + MINUTE, events)


@pytest.mark.parametrize(
    ("keys", "max_key_hour", "source_ip", "routine"),
    [(20, 300, "10.1.2.3", True), (20, 30, "10.1.2.3", False), (3, 300, "10.1.2.3", False),
     (20, 300, "62.10.20.30", False)],
    ids=["org-wide, within its routine", "org-wide, beyond its routine", "a service's own few keys",
         "org-wide, within its routine, from a network it never used"],
)  # fmt: skip
def test_org_wide_automation_within_its_per_key_routine_is_not_a_rise(
    keys: int, max_key_hour: int, source_ip: str, routine: bool
) -> None:
    ctx, win = _visitor(keys, max_key_hour, source_ip)
    ctx.period = by_principal = principal_windows([win], ctx.settings.window.max_evidence)
    f = window_features(win, ctx.profiles, by_principal, window_seconds=MINUTE, mature=True)
    assert routine_visit(ctx, ORDERS_ID, f) is routine


@pytest.mark.parametrize(
    ("principal", "alerts"), [(ALICE, 1), (ORDERS_ID, 2)], ids=["a person", "a workload"]
)
def test_a_person_up_at_night_on_two_keys_is_one_alert(principal: str, alerts: int) -> None:
    book = AlertBook(KeyCatalog.from_mapping(None, {}), DetectionSettings().severity, MINUTE)
    findings = [Finding("off_hours", key, principal, NIGHT, NIGHT + MINUTE, 3.0, Severity.MEDIUM, [])
                for key in (KEY_PROD, KEY_DEV)]  # fmt: skip
    assert len({book.add(f).alert_id for f in findings}) == alerts


@pytest.mark.parametrize(
    ("before", "probing"), [(0, True), (4, False)], ids=["never denied", "denied as widely"]
)
def test_a_slow_probe_is_judged_against_the_most_keys_the_caller_was_denied_on(
    before: int, probing: bool
) -> None:
    pp = PrincipalProfile(first_ts=DAY3, last_ts=AT, max_denied_keys=before)
    ctx = RuleContext(DetectionSettings(), Profiles(principals={INTRUDER_ID: pp}))
    denied = make_event(event_id="d", ts=AT + 5, principal=INTRUDER, outcome="denied")
    pw = principal_windows([KeyWindow(KEY_PROD, AT, AT + MINUTE, [denied])], 50)[INTRUDER_ID]
    pw.recent_denied_keys, pw.new_denied_keys = 8, 1
    assert (PRINCIPAL_RULES["denied_probing"](pw, AT, AT + MINUTE, ctx) is not None) is probing


def test_a_denial_after_a_slow_probe_ended_is_not_the_probe() -> None:
    ctx = RuleContext(DetectionSettings(), Profiles(principals={INTRUDER_ID: PrincipalProfile(DAY3, AT)}))
    denied = make_event(event_id="d", ts=AT + 5, principal=INTRUDER, outcome="denied")
    pw = principal_windows([KeyWindow(KEY_PROD, AT, AT + MINUTE, [denied])], 50)[INTRUDER_ID]
    pw.recent_denied_keys, pw.new_denied_keys = 8, 0  # a key the probe already tried
    assert PRINCIPAL_RULES["denied_probing"](pw, AT, AT + MINUTE, ctx) is None


@pytest.mark.parametrize(("gap_minutes", "alerts"), [(10, 1), (20, 2)], ids=["within its span", "after it"])
def test_a_probe_is_one_alert_over_the_span_it_is_judged_on(gap_minutes: int, alerts: int) -> None:
    book = book_for(DetectionSettings(), KeyCatalog.from_mapping(None, {}))
    first = _finding("denied_probing", AT)
    later = dataclasses.replace(
        first, window_start=AT + gap_minutes * MINUTE, window_end=AT + (gap_minutes + 1) * MINUTE
    )
    assert len({book.add(f).alert_id for f in (first, later)}) == alerts
