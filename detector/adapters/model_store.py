"""Model directories on disk: forest (skops), profiles (JSON) and a model card with digests.

Loading verifies every file against the sha256 the card records, refuses a feature schema this
code does not compute, and loads the forest with skops allowing only scikit-learn and NumPy types:
nothing is ever unpickled.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import skops.io as sio

from detector.domain.errors import ModelError
from detector.features.profiles import Profiles
from detector.features.schema import check_schema
from detector.scoring.forest import ForestModel
from detector.training import TrainedModel

CARD = "model_card.json"
FOREST = "forest.skops"
FOREST_STATS = "forest_stats.json"
PROFILES = "profiles.json.gz"
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "builtins.")
LIBRARIES = ("keywatch", "scikit-learn", "numpy", "pandas", "skops", "scipy")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_model(model: TrainedModel, out: Path, inputs: list[Path]) -> dict[str, Any]:
    """Write a model directory and return its card."""
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    if model.forest is not None:
        sio.dump(model.forest.forest, out / FOREST)
        f = model.forest
        stats = {
            "threshold": f.threshold,
            **{n: getattr(f, n).tolist() for n in ("median_", "scale_", "low_", "high_", "constant_")},
        }
        (out / FOREST_STATS).write_text(json.dumps(stats), encoding="utf-8")
        files[FOREST] = sha256_file(out / FOREST)
        files[FOREST_STATS] = sha256_file(out / FOREST_STATS)
    with gzip.open(out / PROFILES, "wt", encoding="utf-8") as fh:
        json.dump(model.profiles.to_dict(), fh, separators=(",", ":"))
    files[PROFILES] = sha256_file(out / PROFILES)
    card = dict(model.card)
    card["created"] = datetime.now(UTC).isoformat(timespec="seconds")
    card["training"] = {
        **card.get("training", {}),
        "inputs": [{"path": str(p), "bytes": p.stat().st_size, "sha256": sha256_file(p)} for p in inputs],
    }
    card["libraries"] = {"python": platform.python_version(), **_versions()}
    card["files"] = files
    (out / CARD).write_text(json.dumps(card, indent=2, sort_keys=True), encoding="utf-8")
    return card


def update_profiles(directory: Path, profiles: Profiles, events: int) -> None:
    """Replace a verified model's profiles with ones that kept learning; re-sign the card's digest."""
    load_model(directory)  # refuse to touch a directory that does not verify
    card_path = directory / CARD
    card = json.loads(card_path.read_text(encoding="utf-8"))
    tmp = directory / (PROFILES + ".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as fh:
        json.dump(profiles.to_dict(), fh, separators=(",", ":"))
    tmp.replace(directory / PROFILES)
    card["files"][PROFILES] = sha256_file(directory / PROFILES)
    updates = card.setdefault("profile_updates", [])
    updates.append({"at": datetime.now(UTC).isoformat(timespec="seconds"), "events": events})
    card_path.write_text(json.dumps(card, indent=2, sort_keys=True), encoding="utf-8")


def load_model(directory: Path) -> TrainedModel:
    """Read and verify a model directory; raise ModelError saying what is wrong."""
    card_path = directory / CARD
    if not card_path.is_file():
        raise ModelError(f"{directory} is not a KeyWatch model directory (no {CARD})")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {card_path}: {exc}") from None
    files = card.get("files") if isinstance(card, dict) else None
    if not isinstance(files, dict) or not all(isinstance(d, str) for d in files.values()):
        raise ModelError(f"{card_path} is not a KeyWatch model card (no 'files' digests)")
    unknown = set(files) - {FOREST, FOREST_STATS, PROFILES}
    if unknown:
        raise ModelError(f"{card_path} lists files KeyWatch does not load: {', '.join(sorted(unknown))}")
    problem = check_schema(card.get("feature_names", []), card.get("feature_schema_version", -1))
    if problem:
        raise ModelError(f"model {directory} was trained for another feature schema: {problem}")
    for name, digest in files.items():
        path = directory / name
        if not path.is_file() or sha256_file(path) != digest:
            raise ModelError(f"model file {path} is missing or does not match the digest in {CARD}")
    if PROFILES not in files:
        raise ModelError(f"model {directory} has no verified {PROFILES}")
    with gzip.open(directory / PROFILES, "rt", encoding="utf-8") as fh:
        profiles = Profiles.from_dict(json.load(fh))
    forest = _load_forest(directory) if FOREST in files else None
    return TrainedModel(forest, profiles, card)


def _load_forest(directory: Path) -> ForestModel:
    path = directory / FOREST
    untrusted = sio.get_untrusted_types(file=path)
    refused = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
    if refused:
        raise ModelError(f"{path} holds types KeyWatch will not load: {', '.join(refused)}")
    forest = sio.load(path, trusted=untrusted)
    stats = json.loads((directory / FOREST_STATS).read_text(encoding="utf-8"))
    arrays = {n: np.asarray(stats[n], dtype=float) for n in ("median_", "scale_", "low_", "high_")}
    constant = np.asarray(stats["constant_"], dtype=bool)
    return ForestModel(forest, float(stats["threshold"]), constant_=constant, **arrays)


def _versions() -> dict[str, str]:
    out = {}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "not installed"
    return out
