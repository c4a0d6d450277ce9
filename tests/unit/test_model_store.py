"""Model directories: round trip, digests, schema checks, and what the model card records."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import orjson
import pytest

from detector.adapters.model_store import CARD, FOREST, FOREST_STATS, PROFILES, load_model, save_model
from detector.config import DetectionSettings, ForestSettings
from detector.domain.errors import ModelError
from detector.features.schema import FEATURE_NAMES, FEATURE_SCHEMA_VERSION
from detector.simulation.classic import simulate
from detector.simulation.result import Simulation
from detector.training import TrainedModel, train

SETTINGS = DetectionSettings(forest=ForestSettings(n_estimators=20))


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate(keys=6, days=2, test_days=0.5, seed=21)


@pytest.fixture(scope="module")
def trained(sim: Simulation) -> TrainedModel:
    return train(sim.history, SETTINGS)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory, sim: Simulation, trained: TrainedModel) -> Path:
    root = tmp_path_factory.mktemp("model")
    history = root / "history.jsonl"
    history.write_bytes(b"".join(orjson.dumps(e.to_dict()) + b"\n" for e in sim.history))
    save_model(trained, root / "model", [history])
    return root


@pytest.fixture
def model_dir(saved: Path, tmp_path: Path) -> Path:
    """A private copy of the saved model directory, free to tamper with."""
    return Path(shutil.copytree(saved / "model", tmp_path / "model"))


def _card(directory: Path) -> dict:
    return json.loads((directory / CARD).read_text(encoding="utf-8"))


def _rows() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.abs(rng.normal(size=(50, len(FEATURE_NAMES))))


def test_round_trip_keeps_threshold_scores_and_profiles(model_dir: Path, trained: TrainedModel) -> None:
    loaded = load_model(model_dir)
    assert loaded.forest is not None and trained.forest is not None
    assert loaded.forest.threshold == trained.forest.threshold
    rows = _rows()
    np.testing.assert_array_equal(loaded.forest.score(rows), trained.forest.score(rows))
    for name in ("median_", "scale_", "low_", "high_", "constant_"):
        np.testing.assert_array_equal(getattr(loaded.forest, name), getattr(trained.forest, name))
    assert loaded.profiles.to_dict() == trained.profiles.to_dict()
    for row in rows[:5]:
        assert (loaded.forest.novel(row) == trained.forest.novel(row)).all()


def test_saved_directory_holds_the_documented_files(model_dir: Path) -> None:
    assert {p.name for p in model_dir.iterdir()} == {CARD, FOREST, FOREST_STATS, PROFILES}
    with gzip.open(model_dir / PROFILES, "rt", encoding="utf-8") as fh:
        assert set(json.load(fh)) == {"keys", "principals", "org"}


@pytest.mark.parametrize("name", [FOREST, PROFILES, FOREST_STATS])
def test_tampering_with_any_file_is_refused_naming_it(model_dir: Path, name: str) -> None:
    path = model_dir / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=name.replace(".", r"\.")):
        load_model(model_dir)


@pytest.mark.parametrize("name", [FOREST, PROFILES, FOREST_STATS])
def test_a_missing_file_is_refused_naming_it(model_dir: Path, name: str) -> None:
    (model_dir / name).unlink()
    with pytest.raises(ModelError, match=name.replace(".", r"\.")):
        load_model(model_dir)


def test_stats_rewritten_with_a_new_threshold_are_refused(model_dir: Path) -> None:
    stats = json.loads((model_dir / FOREST_STATS).read_text(encoding="utf-8"))
    stats["threshold"] = 99.0  # valid JSON, plausible content, but not what was trained
    (model_dir / FOREST_STATS).write_text(json.dumps(stats), encoding="utf-8")
    with pytest.raises(ModelError, match="forest_stats"):
        load_model(model_dir)


def test_a_card_that_drops_the_profiles_digest_is_refused(model_dir: Path) -> None:
    card = _card(model_dir)
    del card["files"][PROFILES]
    (model_dir / CARD).write_text(json.dumps(card), encoding="utf-8")
    with pytest.raises(ModelError, match=PROFILES.replace(".", r"\.")):
        load_model(model_dir)


@pytest.mark.parametrize(
    "change",
    [
        {"feature_schema_version": FEATURE_SCHEMA_VERSION + 1},
        {"feature_names": [FEATURE_NAMES[1], FEATURE_NAMES[0], *FEATURE_NAMES[2:]]},
        {"feature_names": list(FEATURE_NAMES[:-1])},
    ],
    ids=["version", "order", "missing"],
)
def test_a_card_for_another_feature_schema_is_refused(model_dir: Path, change: dict) -> None:
    card = {**_card(model_dir), **change}
    (model_dir / CARD).write_text(json.dumps(card), encoding="utf-8")
    with pytest.raises(ModelError, match="feature schema"):
        load_model(model_dir)


def test_a_directory_without_a_card_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a KeyWatch model directory"):
        load_model(tmp_path)


@pytest.mark.parametrize("text", ["{not json", "", '["a", "list"]'])
def test_an_unreadable_card_is_a_model_error(model_dir: Path, text: str) -> None:
    (model_dir / CARD).write_text(text, encoding="utf-8")
    with pytest.raises(ModelError, match=CARD.replace(".", r"\.")):
        load_model(model_dir)


def test_a_card_with_malformed_digests_is_a_model_error(model_dir: Path) -> None:
    card = {**_card(model_dir), "files": [FOREST, PROFILES]}
    (model_dir / CARD).write_text(json.dumps(card), encoding="utf-8")
    with pytest.raises(ModelError):
        load_model(model_dir)


def test_the_card_tells_what_the_model_is(saved: Path, model_dir: Path, sim: Simulation) -> None:
    card = _card(model_dir)
    assert card["feature_schema_version"] == FEATURE_SCHEMA_VERSION
    assert card["feature_names"] == list(FEATURE_NAMES)
    training = card["training"]
    assert training["events"] == len(sim.history)
    assert training["span_start"] <= sim.history[0].to_dict()["ts"]
    assert training["span_end"] >= sim.history[-1].to_dict()["ts"]
    assert training["keys"] == 6
    (entry,) = training["inputs"]
    history = saved / "history.jsonl"
    assert entry["sha256"] == hashlib.sha256(history.read_bytes()).hexdigest()
    assert entry["bytes"] == history.stat().st_size and entry["path"] == str(history)
    assert {"python", "keywatch", "scikit-learn", "numpy", "skops"} <= set(card["libraries"])
    assert all(card["libraries"].values())
    validation = card["validation"]
    assert validation["mature_windows"] > 100
    assert validation["holdout_windows"] > 0
    assert 0.0 <= validation["holdout_flagged_share"] <= 1.0
    assert set(validation["training_score_quantiles"]) == {"0.5", "0.99", "0.999"}
    assert card["thresholds"]["forest"] == pytest.approx(
        json.loads((model_dir / FOREST_STATS).read_text())["threshold"]
    )
    assert card["settings"] == SETTINGS.model_dump(mode="json")
    files = card["files"]
    assert set(files) == {FOREST, FOREST_STATS, PROFILES}
    for name, digest in files.items():
        assert hashlib.sha256((model_dir / name).read_bytes()).hexdigest() == digest
    assert card["created"]


def test_a_model_without_a_forest_round_trips(tmp_path: Path, sim: Simulation) -> None:
    no_forest = DetectionSettings(forest=ForestSettings(enabled=False))
    model = train(sim.history[:5000], no_forest)
    card = save_model(model, tmp_path / "m", [])
    assert model.forest is None and card["thresholds"]["forest"] is None
    assert set(card["files"]) == {PROFILES}
    loaded = load_model(tmp_path / "m")
    assert loaded.forest is None
    assert loaded.profiles.to_dict() == model.profiles.to_dict()
