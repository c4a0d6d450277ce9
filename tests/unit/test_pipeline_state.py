"""Pipeline snapshots: a detector restored mid-stream carries on exactly as one that never stopped."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import pytest

from detector.config import DetectionSettings
from detector.domain.alerts import Finding, Severity
from detector.domain.events import Event
from detector.features.geo import Enricher
from detector.pipeline import Pipeline
from detector.pipeline_state import StateError, restore, snapshot
from detector.simulation.classic import simulate
from detector.simulation.result import Simulation
from detector.training import TrainedModel, train

BATCH = 700


@pytest.fixture(scope="module")
def world() -> tuple[Simulation, TrainedModel]:
    sim = simulate(keys=8, days=2.5, test_days=0.5, seed=5)
    return sim, train(sim.history, DetectionSettings(), Enricher(None))


def _pipe(model: TrainedModel) -> Pipeline:
    return Pipeline(DetectionSettings(), profiles=model.profiles.copy(), forest=model.forest)


def _feed(pipe: Pipeline, events: Sequence[Event], into: dict[str, dict[str, object]]) -> None:
    for i in range(0, len(events), BATCH):
        pipe.process(events[i : i + BATCH])
        for alert in pipe.flush():
            into[alert.alert_id] = alert.to_dict()


def _final(pipe: Pipeline, into: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
    for alert in pipe.finish():
        into[alert.alert_id] = alert.to_dict()
    return into


def test_restored_pipeline_raises_the_same_alerts(world: tuple[Simulation, TrainedModel]) -> None:
    sim, model = world
    events = sim.test
    cut = (len(events) // 2 // BATCH) * BATCH

    straight = _pipe(model)
    expected = _final(straight, _feed_all(straight, events))

    first = _pipe(model)
    seen: dict[str, dict[str, object]] = {}
    _feed(first, events[:cut], seen)
    blob = snapshot(first)
    second = restore(_pipe(model), blob)
    _feed(second, events[cut:], seen)
    _final(second, seen)

    assert expected, "the simulated attacks raise alerts"
    assert seen == expected


def _feed_all(pipe: Pipeline, events: Sequence[Event]) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    _feed(pipe, events, out)
    return out


def test_snapshot_round_trips(world: tuple[Simulation, TrainedModel]) -> None:
    sim, model = world
    pipe = _pipe(model)
    _feed(pipe, sim.test[:3000], {})
    again = restore(_pipe(model), snapshot(pipe))
    assert snapshot(again) == snapshot(pipe)
    assert again.open.keys() == pipe.open.keys()


def test_refuses_foreign_or_corrupt_state(world: tuple[Simulation, TrainedModel]) -> None:
    _, model = world
    with pytest.raises(StateError, match="not a KeyWatch pipeline state"):
        restore(_pipe(model), b"not zlib")
    with pytest.raises(StateError, match="state version"):
        restore(_pipe(model), zlib.compress(b'{"version": 99}'))
    other = Pipeline(DetectionSettings.model_validate({"window": {"seconds": 120}}))
    with pytest.raises(StateError, match="120"):
        restore(other, snapshot(_pipe(model)))


def test_snapshot_needs_a_flushed_pipeline(world: tuple[Simulation, TrainedModel]) -> None:
    sim, model = world
    pipe = _pipe(model)
    pipe.process(sim.test[:5000])
    assert pipe.pending, "mature windows wait for the forest's next micro-batch"
    with pytest.raises(StateError, match="flush"):
        snapshot(pipe)


def test_a_shared_surge_survives_a_restore(world: tuple[Simulation, TrainedModel]) -> None:
    sim, model = world
    pipe = _pipe(model)
    _feed(pipe, sim.test[:3000], {})
    at = pipe.closed_until
    notice = Finding("seasonal_volume", "k1", "svc", at, at + 60, 3.0, Severity.LOW, [], peers=("k2",))
    told = pipe.book.add(notice)
    again = restore(_pipe(model), snapshot(pipe))
    joined = Finding("caller_volume", "k2", "svc", at + 600, at + 660, 3.0, Severity.MEDIUM, [])
    assert again.book.surges == pipe.book.surges
    assert again.book.add(joined).alert_id == told.alert_id
