"""The simulator: deterministic, sorted, and labelled so that labels and events agree."""

from __future__ import annotations

import json
import re

import pytest

from detector.domain.events import Event, format_ts, parse_ts
from detector.simulate import ATTACKS, BENIGN, GENERATOR, Simulation, simulate

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate(keys=8, days=1.5, test_days=0.5, seed=3)


def _dump(s: Simulation) -> str:
    events = [e.to_dict() for e in s.history + s.test]
    return json.dumps([events, s.labels, s.catalog], sort_keys=True)


def _by_id(s: Simulation) -> dict[str, Event]:
    return {e.event_id: e for e in s.test}


def test_same_seed_gives_identical_output() -> None:
    a = simulate(keys=5, days=1, test_days=0.5, seed=11)
    b = simulate(keys=5, days=1, test_days=0.5, seed=11)
    c = simulate(keys=5, days=1, test_days=0.5, seed=12)
    assert _dump(a) == _dump(b)
    assert _dump(a) != _dump(c)


def test_events_are_sorted_and_split_at_test_start(sim: Simulation) -> None:
    meta = sim.labels["meta"]
    start, test_start, end = (parse_ts(meta[k]) for k in ("history_start", "test_start", "test_end"))
    for part in (sim.history, sim.test):
        times = [e.ts for e in part]
        assert times == sorted(times)
    assert start <= sim.history[0].ts and sim.history[-1].ts < test_start
    assert test_start <= sim.test[0].ts and sim.test[-1].ts < end


def test_timestamps_survive_canonical_json(sim: Simulation) -> None:
    for e in sim.test[:2000]:
        assert parse_ts(format_ts(e.ts)) == pytest.approx(e.ts, abs=1e-6)


def test_meta_counts_and_catalog(sim: Simulation) -> None:
    meta = sim.labels["meta"]
    assert meta["generator"] == GENERATOR
    assert (meta["seed"], meta["keys"], meta["key_count"]) == (3, 8, 8)
    assert (meta["events_history"], meta["events_test"]) == (len(sim.history), len(sim.test))
    entries = sim.catalog["keys"]
    assert len(entries) == 8 and len({k["match"] for k in entries}) == 8
    for k in entries:
        assert k["environment"] in {"production", "staging", "development"}
        assert k["classification"] in {"restricted", "confidential", "internal", "public"}
        assert k["match"].startswith("arn:aws:kms:") and k["owner"] and k["service"]
    assert set(sim.catalog["defaults"]) >= {"environment", "classification"}


def test_every_scenario_has_at_least_two_instances(sim: Simulation) -> None:
    scenarios = sim.labels["scenarios"]
    counts = {name: sum(s["scenario"] == name for s in scenarios) for name in ATTACKS + BENIGN}
    assert min(counts.values()) >= 2
    for s in scenarios:
        assert s["kind"] == ("attack" if s["scenario"] in ATTACKS else "benign")
        assert s["description"] and s["event_count"] == len(sim.label_event_ids[s["id"]]) > 0
    assert len({s["id"] for s in scenarios}) == len(scenarios)


def test_labels_point_at_real_keys_inside_the_test_period(sim: Simulation) -> None:
    meta = sim.labels["meta"]
    test_start, test_end = parse_ts(meta["test_start"]), parse_ts(meta["test_end"])
    test_keys = {e.key_id for e in sim.test}
    catalog = {k["match"] for k in sim.catalog["keys"]}
    for s in sim.labels["scenarios"]:
        assert set(s["key_ids"]) <= test_keys
        assert set(s["key_ids"]) & catalog, "every scenario touches at least one key of the organisation"
        assert test_start <= parse_ts(s["start"]) <= parse_ts(s["end"]) < test_end


def test_scenario_events_lie_in_their_windows(sim: Simulation) -> None:
    by_id = _by_id(sim)
    for s in sim.labels["scenarios"]:
        events = [by_id[i] for i in sim.label_event_ids[s["id"]]]
        lo, hi = parse_ts(s["start"]), parse_ts(s["end"])
        assert all(lo - 1e-3 <= e.ts <= hi + 1e-3 for e in events)
        assert {e.key_id for e in events} <= set(s["key_ids"])
        assert {e.principal for e in events} == {s["principal"]}


def test_history_holds_no_scenario_events(sim: Simulation) -> None:
    injected = {i for ids in sim.label_event_ids.values() for i in ids}
    assert not injected & {e.event_id for e in sim.history}
    history_principals = {e.principal for e in sim.history}
    history_countries = {e.country for e in sim.history}
    by_id = _by_id(sim)
    for s in sim.labels["scenarios"]:
        events = [by_id[i] for i in sim.label_event_ids[s["id"]]]
        if s["scenario"] == "new_principal":
            assert s["principal"] not in history_principals
        if s["scenario"] == "foreign_geography":
            assert {e.country for e in events}.isdisjoint(history_countries)
        if s["scenario"] in ("exfiltration_spike", "batch_surge", "region_expansion"):
            assert s["principal"] in history_principals


def test_scenario_shapes(sim: Simulation) -> None:
    by_id = _by_id(sim)
    for s in sim.labels["scenarios"]:
        events = [by_id[i] for i in sim.label_event_ids[s["id"]]]
        ops = {e.operation for e in events}
        if s["scenario"] == "denied_probing":
            assert {e.outcome for e in events} == {"denied"} and len(s["key_ids"]) >= 5
        if s["scenario"] == "destructive_operations":
            assert ops & {"DisableKey", "ScheduleKeyDeletion", "PutKeyPolicy"}
        if s["scenario"] == "ransom_reencryption":
            assert "ReEncrypt" in ops and ops & {"ScheduleKeyDeletion", "PutKeyPolicy"}
        if s["scenario"] == "impossible_travel":
            # the label covers the far-away use; the owner's own use at home just before is background
            home = [e for e in sim.test if e.principal == events[0].principal and e.ts < events[0].ts]
            assert home and home[-1].country != events[0].country


def test_attack_events_look_like_ordinary_events(sim: Simulation) -> None:
    injected = {i for ids in sim.label_event_ids.values() for i in ids}
    history_agents = {e.user_agent for e in sim.history}
    ids = [e.event_id for e in sim.history + sim.test]
    assert len(set(ids)) == len(ids)
    assert all(UUID4.match(i) for i in ids[::97])
    for e in sim.test:
        if e.event_id in injected:
            assert UUID4.match(e.event_id) and e.user_agent in history_agents and e.source == "aws-kms"


def test_history_has_background_noise_and_rotations(sim: Simulation) -> None:
    ops = {e.operation for e in sim.history}
    assert {"Decrypt", "GenerateDataKey", "Encrypt", "DescribeKey"} <= ops
    assert ops & {"RotateKeyOnDemand", "EnableKeyRotation"}
    denied = sum(e.outcome != "success" for e in sim.history) / len(sim.history)
    assert 0.0005 < denied < 0.02
    assert any(e.country == "" and e.source_ip.endswith(".amazonaws.com") for e in sim.history + sim.test)


def test_size_is_sane(sim: Simulation) -> None:
    per_key_minute = (len(sim.history) + len(sim.test)) / (8 * 1.5 * 1440)
    assert 0.3 < per_key_minute < 20


def test_rejects_bad_spans() -> None:
    with pytest.raises(ValueError, match="test_days"):
        simulate(keys=5, days=1, test_days=1)
    with pytest.raises(ValueError, match="keys"):
        simulate(keys=2)
