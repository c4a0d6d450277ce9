"""Detector worker processes give exactly what the member's own process gives."""

from __future__ import annotations

import time
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from detector.adapters.model_store import save_model
from detector.adapters.partition_workers import (
    Fed,
    LocalTasks,
    PartitionTasks,
    TaskSpec,
    WorkerError,
    WorkerTasks,
)
from detector.adapters.pipeline_builder import PipelineBuilder
from detector.config import DetectionSettings
from detector.domain.catalog import KeyCatalog
from detector.features.geo import Enricher
from detector.pipeline_state import StateError
from detector.simulation.classic import simulate
from detector.streaming import RawRecord
from detector.training import train

PARTITIONS = 3
BATCH = 400
MALFORMED = [b'{"event_id": "cut', b"\x00\xffnot json", b'{"Records": "not a list"}']


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[PipelineBuilder, dict[int, list[RawRecord]]]:
    sim = simulate(keys=8, days=2.5, test_days=0.5, seed=5)
    model_dir = tmp_path_factory.mktemp("workers") / "model"
    save_model(train(sim.history, DetectionSettings(), Enricher(None)), model_dir, [])
    build = PipelineBuilder(DetectionSettings(), model_dir, KeyCatalog.from_mapping(sim.catalog, {})).load()
    parts: dict[int, list[RawRecord]] = {p: [] for p in range(PARTITIONS)}
    for i, ev in enumerate(sim.test):
        p = zlib.crc32(ev.key_id.encode()) % PARTITIONS
        parts[p].append((len(parts[p]), orjson.dumps(ev.to_dict()), i))
        if i in (100, 5000, 9000):  # bad records in the middle of partition 0
            parts[0].append((len(parts[0]), MALFORMED[len(parts[0]) % 3], i))
    return build, parts


def _run(tasks: PartitionTasks, parts: dict[int, list[RawRecord]]) -> list[dict[str, Any]]:
    """Feed every partition batch by batch (a snapshot every third batch), then close idle."""
    for p in parts:
        tasks.start(TaskSpec("t", p, "auto", 1_048_576))
    seen: list[dict[str, Any]] = []
    longest = max(len(r) for r in parts.values())
    for n, i in enumerate(range(0, longest, BATCH)):
        for p, recs in parts.items():
            if recs[i : i + BATCH]:
                tasks.submit(p, recs[i : i + BATCH], snapshot=n % 3 == 0)
        seen.extend(_plain(f) for f in tasks.collect())
    seen.extend(_plain(f) for f in tasks.close_idle(list(parts)))
    seen.append({"snapshots": tasks.snapshots(list(parts))})
    return seen


def _plain(fed: Fed) -> dict[str, Any]:
    out = fed.outcome
    return {
        "partition": fed.partition,
        "alerts": [orjson.loads(orjson.dumps(a.to_dict())) for a in out.alerts],  # as they were then
        "rejected": [(r.message, r.error) for r in out.rejected],
        "events": out.events,
        "next_offset": fed.next_offset,
        "late": fed.late,
        "open": fed.open,
        "state": fed.state,
    }


def test_workers_detect_exactly_what_the_member_detects(setup: tuple[PipelineBuilder, Any]) -> None:
    build, parts = setup
    local = LocalTasks(build)
    expected = _run(local, parts)
    workers = WorkerTasks(build, 2)
    try:
        got = _run(workers, parts)
    finally:
        workers.close()
    assert got == expected
    assert sum(len(f["alerts"]) for f in expected[:-1]) > 0
    assert sum(len(f["rejected"]) for f in expected[:-1]) == 3
    assert all(f["state"] is not None for f in expected[-1 - PARTITIONS : -1])  # idle close snapshots


def test_a_worker_restores_a_checkpoint_and_refuses_a_bad_one(setup: tuple[PipelineBuilder, Any]) -> None:
    build, parts = setup
    recs = parts[1]
    local = LocalTasks(build)
    local.start(TaskSpec("t", 1, "auto", 1_048_576))
    local.submit(1, recs[:3000], snapshot=True)
    (first,) = local.collect()
    local.submit(1, recs[3000:], snapshot=False)
    (rest,) = local.collect()
    assert first.state is not None and first.next_offset == 3000

    workers = WorkerTasks(build, 1)
    try:
        with pytest.raises(StateError):
            workers.start(TaskSpec("t", 1, "auto", 1_048_576, state=b"not a checkpoint", offset=3000))
        workers.start(TaskSpec("t", 1, "auto", 1_048_576, state=first.state, offset=3000))
        workers.submit(1, recs[2500:], snapshot=False)  # overlaps the checkpoint: the overlap is skipped
        (again,) = workers.collect()
    finally:
        workers.close()
    assert _plain(again) == _plain(rest)


def test_a_dead_worker_stops_the_member(setup: tuple[PipelineBuilder, Any], tmp_path: Path) -> None:
    build, parts = setup
    workers = WorkerTasks(build, 1)
    try:
        workers.start(TaskSpec("t", 0, "auto", 1_048_576))
        workers.workers[0].process.kill()
        workers.workers[0].process.join(5)
        with pytest.raises(WorkerError, match="keywatch-detector-0 is gone"):
            workers.submit(0, parts[0][:10], snapshot=False)
            workers.collect()
    finally:
        workers.close()


@pytest.mark.parametrize("count", [0, 1])
def test_ready_says_when_collect_would_not_wait(setup: tuple[PipelineBuilder, Any], count: int) -> None:
    build, parts = setup
    tasks: PartitionTasks = WorkerTasks(build, count) if count else LocalTasks(build)
    try:
        tasks.start(TaskSpec("t", 1, "auto", 1_048_576))
        assert tasks.ready(0) and not tasks.ready(1)
        tasks.submit(1, parts[1][:2000], snapshot=False)
        tasks.submit(1, parts[1][2000:2010], snapshot=True)
        deadline = time.monotonic() + 60
        while not tasks.ready(2):  # answers are read as they arrive, without waiting for them
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert not tasks.ready(3)  # never more than was submitted
        first, second = tasks.collect(2)
        assert (first.next_offset, second.next_offset, second.state is not None) == (2000, 2010, True)
    finally:
        tasks.close()


def test_a_released_builder_still_builds(setup: tuple[PipelineBuilder, Any]) -> None:
    """``keywatch run`` releases the member's model when workers load their own."""
    build, _ = setup
    fresh = PipelineBuilder(build.detection, build.model_dir, build.catalog).load()
    fresh.release()
    assert fresh._model is None
    assert fresh().profiles.keys.keys() == build().profiles.keys.keys()  # loaded again on demand
