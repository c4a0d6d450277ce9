"""Isolation forest over window features, with a novelty guard and plain-word explanations.

Scores are oriented so that **higher means more anomalous** (the negated ``score_samples`` of
scikit-learn). A forest cannot split on a feature that never varied in training, so a window
whose value departs from such a constant would score as normal: the guard flags those windows
itself, naming the feature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import IsolationForest

from detector.config import ForestSettings
from detector.domain.alerts import Reason
from detector.features.schema import FEATURE_NAMES, FEATURES

FEATURE_TEXT = {
    "events": "calls in the window",
    "data_events": "encrypt/decrypt/sign calls",
    "admin_events": "administrative calls",
    "destructive_events": "destructive calls",
    "read_events": "metadata reads",
    "rate_ratio": "rate against this hour's baseline (×)",
    "rate_z": "deviation from this hour's baseline (σ)",
    "distinct_ips": "distinct source addresses",
    "distinct_countries": "distinct countries",
    "distinct_principals": "distinct callers",
    "new_country_events": "calls from countries new to this key",
    "new_principal_events": "calls by principals new to this key",
    "new_prefix_events": "calls from networks new to this key",
    "new_user_agent_events": "calls with user agents new to this key",
    "new_operation_events": "calls of operations new to this key",
    "max_travel_kmh": "fastest implied travel of one caller (km/h)",
    "denied_share": "share of denied calls",
    "error_share": "share of failed calls",
    "unusual_admin_events": "administrative calls by callers who never administered this key",
    "unusual_destructive_events": "destructive calls by callers who never ran them on this key",
    "hour_share": "usual activity of this hour relative to the busiest",
    "principal_keys_excess": "keys one caller touched beyond its busiest window before",
    "principal_denied_excess": "denials of one caller beyond its worst window before",
}


# Features with a rule of their own are left to that rule, which knows when novelty is benign
# (an expansion into a known country, a read by a new caller...). The guard covers the rest.
RULE_COVERED = frozenset({
    "new_country_events", "new_principal_events", "new_operation_events", "max_travel_kmh",
    "unusual_admin_events", "unusual_destructive_events", "denied_share", "principal_denied_excess",
})  # fmt: skip
GUARDED = np.array([name not in RULE_COVERED for name in FEATURE_NAMES])


@dataclass(slots=True)
class ForestModel:
    """A fitted forest with its threshold and the training statistics used to explain scores."""

    forest: IsolationForest
    threshold: float
    median_: np.ndarray
    scale_: np.ndarray
    low_: np.ndarray
    high_: np.ndarray
    constant_: np.ndarray

    def score(self, rows: np.ndarray) -> np.ndarray:
        """Anomaly scores of a batch of transformed feature rows; higher = more anomalous."""
        scores: np.ndarray = -self.forest.score_samples(rows)
        return scores

    def novel(self, row: np.ndarray) -> np.ndarray:
        """Mask of guarded features that never varied in training and now differ from their constant."""
        mask: np.ndarray = self.constant_ & GUARDED & (np.abs(row - self.median_) > 1e-9)
        return mask

    def novel_rows(self, rows: np.ndarray) -> np.ndarray:
        """For each row of a batch, whether :meth:`novel` finds anything."""
        mask: np.ndarray = (self.constant_ & GUARDED & (np.abs(rows - self.median_) > 1e-9)).any(axis=1)
        return mask

    def explain(self, row: np.ndarray, raw: dict[str, float], top: int = 3) -> list[Reason]:
        """The features furthest outside their training range, in plain words."""
        novel = self.novel(row)
        spread = np.where(row > self.high_, row - self.high_, np.where(row < self.low_, self.low_ - row, 0.0))
        if not spread.any():  # inside every training range: the combination is unusual, not a value
            spread = np.abs(row - self.median_)
        dist = spread / self.scale_ + novel * 1e3
        reasons = []
        for i in np.argsort(-dist)[:top]:
            if dist[i] <= 0:
                break
            name = FEATURE_NAMES[i]
            typical = _untransform(float(self.median_[i]), i)
            value = raw[name]
            if novel[i]:
                text = f"{FEATURE_TEXT[name]}: {value:,.4g}, never anything but {typical:,.4g} in training"
            else:
                text = f"{FEATURE_TEXT[name]}: {value:,.4g}, typically {typical:,.4g}"
            reasons.append(Reason(name, round(value, 4), round(typical, 4), text))
        return reasons


def _untransform(value: float, index: int) -> float:
    return float(np.expm1(value)) if FEATURES[index][1] == "log" else value


def fit_forest(rows: np.ndarray, settings: ForestSettings) -> tuple[ForestModel, np.ndarray]:
    """Fit on training rows (already transformed); return the model and its training scores.

    The threshold is the ``1 - contamination`` quantile of training scores (with the default
    ``contamination=0``, the highest training score) plus ``threshold_margin``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> rows = rng.normal(size=(500, len(FEATURE_NAMES)))
    >>> model, scores = fit_forest(rows, ForestSettings(n_estimators=50))
    >>> bool(model.score(rows[:1] + 8)[0] > model.threshold)
    True
    """
    if len(rows) < 10:
        raise ValueError(f"need at least 10 training windows to fit a forest, got {len(rows)}")
    forest = IsolationForest(
        n_estimators=settings.n_estimators,
        max_samples=min(settings.max_samples, len(rows)),
        contamination="auto",  # only moves scikit-learn's predict() offset, which is not used here
        random_state=settings.random_state,
        n_jobs=1,
    ).fit(rows)
    scores = -forest.score_samples(rows)
    threshold = float(np.quantile(scores, 1.0 - settings.contamination)) + settings.threshold_margin
    low, median, high = np.quantile(rows, [0.01, 0.5, 0.99], axis=0)
    scale = np.maximum(high - low, 0.1)
    constant = rows.max(axis=0) - rows.min(axis=0) < 1e-9
    model = ForestModel(forest, threshold, median, scale, rows.min(axis=0), rows.max(axis=0), constant)
    return model, scores
