"""KeyWatch's windows and isolation forest, used the way scikit-learn estimators are.

For data scientists: ``fit`` trains as ``keywatch train`` does; ``windows`` replays events as
``keywatch replay`` does and returns one row per mature key window (its features as the forest
sees them, and which rule detectors found something in it); ``score_samples``,
``decision_function`` and ``predict`` follow scikit-learn's ``IsolationForest`` conventions, so
the usual metrics and plots apply without touching the pipeline.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Self

import numpy as np
import pandas as pd

from detector.config import DetectionSettings
from detector.domain.catalog import KeyCatalog
from detector.domain.events import Event
from detector.features.geo import Enricher
from detector.features.schema import FEATURE_NAMES
from detector.pipeline import FOREST, Pipeline
from detector.rules import DETECTORS
from detector.training import TrainedModel, train

RULES = tuple(d for d in DETECTORS if d != FOREST)


class KeyWatchEstimator:
    """Train, replay and score key windows with scikit-learn's conventions.

    ``score_samples`` is higher for more normal windows and ``decision_function`` is negative
    where the forest reports a window (its score at or above the threshold, or a guarded
    feature departing from a constant of training), as for ``sklearn.ensemble.IsolationForest``.
    """

    def __init__(
        self,
        settings: DetectionSettings | None = None,
        *,
        catalog: KeyCatalog | None = None,
        enricher: Enricher | None = None,
        model: TrainedModel | None = None,
    ) -> None:
        self.settings = settings or DetectionSettings()
        self.catalog = catalog
        self.enricher = enricher
        self.model_ = model
        self.pipeline_: Pipeline | None = None

    def fit(self, events: Iterable[Event]) -> Self:
        """Learn profiles and the forest from clean history (event-time order)."""
        self.model_ = train(events, self.settings, self.enricher)
        return self

    def windows(self, events: Iterable[Event]) -> pd.DataFrame:
        """Replay ``events`` on a copy of the trained profiles; one row per mature key window.

        Columns: ``key_id``, ``start``, the feature columns (``FEATURE_NAMES``, transformed as the
        forest sees them) and one boolean column per rule detector. The pipeline that ran stays
        in ``pipeline_`` (its stats and alert book).
        """
        model = self._model()
        pipe = Pipeline(self.settings, profiles=model.profiles.copy(), forest=model.forest,
                        catalog=self.catalog, enricher=self.enricher, collect_rows=True)  # fmt: skip
        pipe.process(events)
        pipe.finish()
        self.pipeline_ = pipe
        frame = pd.DataFrame(np.asarray(pipe.rows, dtype=float).reshape(-1, len(FEATURE_NAMES)),
                             columns=list(FEATURE_NAMES))  # fmt: skip
        frame.insert(0, "start", pipe.row_starts)
        frame.insert(0, "key_id", pipe.row_keys)
        found = {(f.detector, f.key_id, f.window_start) for f in pipe.found}
        for rule in RULES:
            frame[rule] = [(rule, k, t) in found for k, t in zip(pipe.row_keys, pipe.row_starts, strict=True)]
        return frame

    def score_samples(self, frame: pd.DataFrame) -> np.ndarray:
        """The opposite of the forest's anomaly score: higher is more normal."""
        return -self._forest_scores(frame)

    def decision_function(self, frame: pd.DataFrame) -> np.ndarray:
        """Threshold minus anomaly score; negative where the forest reports the window."""
        forest = self._model().forest
        assert forest is not None  # noqa: S101 - _forest_scores raised otherwise
        margin = forest.threshold - self._forest_scores(frame)
        return np.where(self._novel(frame), np.minimum(margin, -1e-9), margin)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """-1 for windows the forest reports, 1 for the others."""
        return np.where(self.decision_function(frame) < 0, -1, 1)

    def _rows(self, frame: pd.DataFrame) -> np.ndarray:
        rows: np.ndarray = frame[list(FEATURE_NAMES)].to_numpy(dtype=float)
        return rows

    def _forest_scores(self, frame: pd.DataFrame) -> np.ndarray:
        forest = self._model().forest
        if forest is None:
            raise ValueError("this model has no forest (forest.enabled: false when it was trained)")
        scores: np.ndarray = forest.score(self._rows(frame))
        return scores

    def _novel(self, frame: pd.DataFrame) -> np.ndarray:
        forest = self._model().forest
        assert forest is not None  # noqa: S101 - callers checked
        return np.asarray(forest.novel(self._rows(frame)).any(axis=1), dtype=bool)

    def _model(self) -> TrainedModel:
        if self.model_ is None:
            raise ValueError("fit() the estimator (or give it a trained model) first")
        return self.model_
