"""Training: replay history through the pipeline to learn profiles and fit the forest."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detector.config import DetectionSettings
from detector.domain.events import Event, format_ts
from detector.features.geo import Enricher
from detector.features.profiles import Profiles
from detector.features.schema import FEATURE_NAMES, FEATURE_SCHEMA_VERSION
from detector.pipeline import Pipeline
from detector.scoring.forest import ForestModel, fit_forest

HOLDOUT_SHARE = 0.2


@dataclass(slots=True)
class TrainedModel:
    """What ``keywatch train`` stores: forest, profiles and the facts for the model card."""

    forest: ForestModel | None
    profiles: Profiles
    card: dict[str, Any] = field(default_factory=dict)


def train(
    events: Iterable[Event], settings: DetectionSettings, enricher: Enricher | None = None
) -> TrainedModel:
    """Learn profiles over ``events`` (event-time order) and fit the forest on mature windows.

    Validation: a forest fitted on the first 80 % of windows scores the last 20 %; the share of
    held-out windows above its threshold estimates the forest's false-alert rate. Rule findings
    raised while learning the (presumed clean) history are reported too.
    """
    pipe = Pipeline(settings, collect_rows=True, trust_input=True, enricher=enricher)
    pipe.process(events)
    pipe.finish()
    rows = np.asarray(pipe.rows, dtype=float).reshape(-1, len(FEATURE_NAMES))
    forest = None
    validation: dict[str, Any] = {
        "mature_windows": len(rows),
        "rule_findings_in_history": dict(pipe.stats.findings),
        "windows_in_history": pipe.stats.windows,
    }
    if settings.forest.enabled:
        forest, scores = fit_forest(rows, settings.forest)
        validation.update(_holdout(rows, settings))
        validation["training_score_quantiles"] = {
            q: round(float(np.quantile(scores, float(q))), 4) for q in ("0.5", "0.99", "0.999")
        }
    stats = pipe.stats
    card = {
        "feature_schema_version": FEATURE_SCHEMA_VERSION,
        "feature_names": list(FEATURE_NAMES),
        "training": {
            "events": stats.events,
            "late_events": stats.late,
            "span_start": format_ts(stats.first_ts) if stats.windows else None,
            "span_end": format_ts(stats.last_ts) if stats.windows else None,
            "keys": len(pipe.profiles.keys),
            "principals": len(pipe.profiles.principals),
        },
        "thresholds": {
            "forest": round(forest.threshold, 6) if forest else None,
            "forest_contamination": settings.forest.contamination,
            "forest_margin": settings.forest.threshold_margin,
        },
        "validation": validation,
        "settings": settings.model_dump(mode="json"),
    }
    return TrainedModel(forest, pipe.profiles, card)


def _holdout(rows: np.ndarray, settings: DetectionSettings) -> dict[str, Any]:
    split = int(len(rows) * (1 - HOLDOUT_SHARE))
    if split < 10 or len(rows) - split < 1:
        return {"holdout_windows": 0}
    model, _ = fit_forest(rows[:split], settings.forest)
    held = rows[split:]
    above = model.score(held) >= model.threshold
    novel = np.array([model.novel(r).any() for r in held])
    flagged = above | novel
    return {
        "holdout_windows": len(held),
        "holdout_flagged": int(flagged.sum()),
        "holdout_flagged_share": round(float(flagged.mean()), 6),
        "holdout_novelty_flags": int(novel.sum()),
    }
