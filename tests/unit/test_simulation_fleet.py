"""Generator B (fleet): deterministic, every catalogue family injected and labelled, strength scaling."""

from __future__ import annotations

import copy
import json
from collections import Counter
from importlib import resources
from typing import Any

import pytest
import yaml

from detector.domain.catalog import KeyCatalog
from detector.domain.events import OUTCOMES, Event, parse_ts
from detector.simulation.families import load_families, parse_families
from detector.simulation.fleet import GENERATOR, generate
from detector.simulation.result import Simulation

SMALL: dict[str, Any] = {"keys": 30, "history_days": 2, "test_days": 1}
RATE_FAMILIES = (
    "exfiltration_spike",
    "low_and_slow",
    "sustained_rise",
    "signing_burst",
    "ransom_reencryption",
)
FOREIGN_COUNTRIES = {"BR", "RO", "VN", "NG", "ID"}


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return generate(**SMALL, seed=5)


def _same(a: Simulation, b: Simulation) -> bool:
    parts = ("history", "test", "labels", "catalog", "label_event_ids")
    return all(getattr(a, part) == getattr(b, part) for part in parts)


def _labelled(s: Simulation, scenario: dict[str, Any]) -> list[Event]:
    by_id = {e.event_id: e for e in s.test}
    return [by_id[i] for i in s.label_event_ids[scenario["id"]]]


def _catalogue_document() -> dict[str, Any]:
    text = resources.files("detector.simulation").joinpath("families.yaml").read_text(encoding="utf-8")
    document: dict[str, Any] = yaml.safe_load(text)
    return document


def test_same_seed_gives_identical_output() -> None:
    a = generate(**SMALL, seed=11, families=["sustained_rise", "key_sweep"])
    b = generate(**SMALL, seed=11, families=["sustained_rise", "key_sweep"])
    c = generate(**SMALL, seed=12, families=["sustained_rise", "key_sweep"])
    assert _same(a, b)
    assert not _same(a, c)
    assert json.loads(json.dumps(a.labels)) == a.labels


def test_events_are_sorted_unique_and_split_at_test_start(sim: Simulation) -> None:
    meta = sim.labels["meta"]
    start, test_start, end = (parse_ts(meta[k]) for k in ("history_start", "test_start", "test_end"))
    for part in (sim.history, sim.test):
        times = [e.ts for e in part]
        assert times == sorted(times)
    assert start <= sim.history[0].ts and sim.history[-1].ts < test_start
    assert test_start <= sim.test[0].ts and sim.test[-1].ts < end
    ids = [e.event_id for e in sim.history + sim.test]
    assert len(set(ids)) == len(ids)
    assert (meta["generator"], meta["seed"], meta["events_history"]) == (GENERATOR, 5, len(sim.history))


def test_events_carry_the_fields_the_detector_reads(sim: Simulation) -> None:
    for e in sim.history[::50] + sim.test[::50]:
        assert e.source == "aws-kms" and e.outcome in OUTCOMES and e.operation and e.principal
        assert e.country and e.lat is not None and e.lon is not None and e.user_agent and e.region
        assert e.key_id.startswith("arn:aws:kms:") or len(e.key_id) == 36
    resources_seen = {e.resource for e in sim.history if e.resource}
    assert any(":secretsmanager:" in r for r in resources_seen) and any(":ssm:" in r for r in resources_seen)
    principals = {e.principal for e in sim.history}
    assert any("AWSReservedSSO_" in p for p in principals) and "s3.amazonaws.com" in principals
    assert {e.outcome for e in sim.history} == set(OUTCOMES)


def test_history_has_rest_days_a_holiday_and_key_lifecycle() -> None:
    s = generate(keys=20, history_days=7, test_days=0.25, seed=2, families=["nightly_batch"])
    assert s.labels["meta"]["holidays"] == ["2024-10-03"]
    ops = Counter(e.operation for e in s.history)
    assert ops["CreateKey"] == 1 and ops["DisableKey"] == 1 and ops["ScheduleKeyDeletion"] == 1
    first_use: dict[str, float] = {}
    for e in s.history:
        first_use.setdefault(e.key_id, e.ts)
    assert max(first_use.values()) - min(first_use.values()) > 2 * 86400, "a key appears mid-history"


def test_every_catalogue_family_is_injected_and_labelled(sim: Simulation) -> None:
    catalogue = load_families()
    scenarios = sim.labels["scenarios"]
    assert {s["scenario"] for s in scenarios} == set(catalogue)
    catalog_keys = {k["match"] for k in sim.catalog["keys"]}
    for s in scenarios:
        assert s["kind"] == catalogue[s["scenario"]].kind
        assert s["description"] and s["key_ids"] and set(s["key_ids"]) <= catalog_keys
        assert s["event_count"] == len(sim.label_event_ids[s["id"]]) > 0
    assert len({s["id"] for s in scenarios}) == len(scenarios)


def test_two_test_days_inject_each_family_twice_on_different_targets() -> None:
    s = generate(keys=40, history_days=1, test_days=2, seed=4, families=["exfiltration_spike", "key_sweep"])
    scenarios = s.labels["scenarios"]
    assert Counter(x["scenario"] for x in scenarios) == {"exfiltration_spike": 2, "key_sweep": 2}
    for name in ("exfiltration_spike", "key_sweep"):
        first, second = (x for x in scenarios if x["scenario"] == name)
        assert first["principal"] != second["principal"]


def test_labels_lie_inside_the_test_span_and_cover_their_events(sim: Simulation) -> None:
    meta = sim.labels["meta"]
    test_start, test_end = parse_ts(meta["test_start"]), parse_ts(meta["test_end"])
    for s in sim.labels["scenarios"]:
        start, end = parse_ts(s["start"]), parse_ts(s["end"])
        assert test_start <= start <= end < test_end
        events = _labelled(sim, s)
        assert all(start - 1e-3 <= e.ts <= end + 1e-3 for e in events)
        assert {e.key_id for e in events} <= set(s["key_ids"])
        if s["principal"] is not None:
            assert {e.principal for e in events} == {s["principal"]}


def test_history_holds_no_attack_events(sim: Simulation) -> None:
    injected = {i for ids in sim.label_event_ids.values() for i in ids}
    assert not injected & {e.event_id for e in sim.history}
    assert not FOREIGN_COUNTRIES & {e.country for e in sim.history}
    history_keys = {e.key_id for e in sim.history}
    for s in sim.labels["scenarios"]:
        if s["scenario"] == "destructive_on_new_key":
            assert not set(s["key_ids"]) & history_keys, "the destroyed key has no history"
        if s["scenario"] in ("new_service_onboarding", "create_key_wave"):
            assert not set(s["key_ids"]) & history_keys


def test_family_shapes(sim: Simulation) -> None:
    admins = {e.principal for e in sim.history if e.operation in ("PutKeyPolicy", "DisableKey", "CreateKey")}
    for s in sim.labels["scenarios"]:
        events = _labelled(sim, s)
        ops = Counter(e.operation for e in events)
        name = s["scenario"]
        if name == "denied_probing":
            assert {e.outcome for e in events} == {"denied"} and len(s["key_ids"]) >= 10
        if name in ("destructive_operations", "destructive_on_new_key"):
            assert ops["DisableKey"] + ops["ScheduleKeyDeletion"] >= 1 and s["principal"] not in admins
        if name == "policy_tamper":
            assert ops["PutKeyPolicy"] >= 1 and s["principal"] not in admins
        if name == "ransom_reencryption":
            assert ops["ReEncrypt"] > 100 and ops["PutKeyPolicy"] >= 1
        if name == "secret_harvest":
            assert len({e.resource for e in events}) >= 60
        if name == "foreign_geography":
            assert {e.country for e in events} <= FOREIGN_COUNTRIES
        if name == "impossible_travel":
            before = [e for e in sim.test if e.principal == s["principal"] and e.ts < events[0].ts]
            assert before and before[-1].country != events[0].country
            assert events[0].ts - before[-1].ts < 20 * 60
        if name == "key_retirement":
            retired, start = s["key_ids"][0], parse_ts(s["start"])
            others = set(sim.label_event_ids[s["id"]])
            assert not [
                e for e in sim.test if e.key_id == retired and e.ts >= start and e.event_id not in others
            ]


def test_weaker_strength_gives_fewer_attack_events_and_leaves_the_rest() -> None:
    families = (*RATE_FAMILIES, "service_wide_surge", "nightly_batch")
    full = generate(**SMALL, seed=8, families=families)
    weak = generate(**SMALL, seed=8, strength=0.3, families=families)
    full_counts, weak_counts = (
        {x["scenario"]: x["event_count"] for x in s.labels["scenarios"]} for s in (full, weak)
    )
    for name in RATE_FAMILIES:
        assert weak_counts[name] < full_counts[name], name
    for name in ("service_wide_surge", "nightly_batch"):
        assert weak_counts[name] == full_counts[name], name
    assert full.history == weak.history, "strength leaves the history alone"


def test_scaling_rules() -> None:
    families = load_families()
    rise = families["sustained_rise"].scaled(0.3)
    assert rise["rate_multiplier"] == pytest.approx(1.9) and rise["duration_minutes"] == 240
    probing = families["denied_probing"].scaled(0.05)
    assert probing["keys"] == 3 and probing["calls_per_key"] == 1
    assert families["service_wide_surge"].scaled(0.3) == dict(families["service_wide_surge"].params)
    with pytest.raises(ValueError, match="strength"):
        families["sustained_rise"].scaled(0)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["families"][0].update(kind="weird"), "'exfiltration_spike'.*kind"),
        (lambda d: d["families"][1].pop("actor"), "'foreign_geography'.*actor"),
        (lambda d: d["families"][2]["params"].update(calls="many"), "'impossible_travel'.*calls"),
        (
            lambda d: d["families"][3]["scales"].update(speed={"rule": "count", "floor": 1}),
            "'destructive_operations'.*speed",
        ),
        (lambda d: d["families"][4]["scales"]["keys"].update(rule="cube"), "'denied_probing'.*rule"),
        (lambda d: d["families"][4]["scales"]["keys"].pop("floor"), "'denied_probing'.*floor"),
        (lambda d: d["families"][5]["params"].update(rate_multiplier=0.5), "'low_and_slow'.*at least 1"),
        (lambda d: d["families"].append(copy.deepcopy(d["families"][0])), "'exfiltration_spike'.*twice"),
        (lambda d: d["families"][6].update(extra=1), "'new_principal'.*unknown fields"),
        (lambda d: d["families"][7].update(name="Bad Name"), "#7"),
        (lambda d: d.pop("scaling_rules"), "scaling rules"),
    ],
)
def test_catalogue_validation_names_the_bad_entry(mutate: Any, message: str) -> None:
    document = _catalogue_document()
    assert set(parse_families(copy.deepcopy(document))) == set(load_families())
    mutate(document)
    with pytest.raises(ValueError, match=message):
        parse_families(document)


def test_unknown_family_and_bad_sizes_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown families"):
        generate(**SMALL, families=["not_a_family"])
    with pytest.raises(ValueError, match="keys"):
        generate(keys=3)
    with pytest.raises(ValueError, match="strength"):
        generate(**SMALL, strength=-1)


def test_catalog_loads_as_a_key_catalog(sim: Simulation) -> None:
    catalog = KeyCatalog.from_mapping(sim.catalog)
    entries = sim.catalog["keys"]
    assert len(entries) == sim.labels["meta"]["key_count"] == len({k["match"] for k in entries})
    for entry in entries[:5]:
        info = catalog.lookup(entry["match"])
        assert (info.environment, info.service) == (entry["environment"], entry["service"])
