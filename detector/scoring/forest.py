"""Isolation forest over window features, with a novelty guard and plain-word explanations.

Scores are oriented so that **higher means more anomalous** (the negated ``score_samples`` of
scikit-learn). A forest cannot split on a feature that never varied in training, so a window
whose value departs from such a constant would score as normal: the guard flags those windows
itself, naming the feature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.ensemble import IsolationForest

try:  # private: the scorer below falls back to scikit-learn's own scoring without it
    from sklearn.ensemble._iforest import _average_path_length
except ImportError:  # pragma: no cover - another scikit-learn
    _average_path_length = None

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
    # The fitted trees' arrays, gathered once for scoring (see _TreeScorer); built on first use.
    scorer_: _TreeScorer | None = field(default=None, init=False, repr=False, compare=False)

    def score(self, rows: np.ndarray) -> np.ndarray:
        """Anomaly scores of a batch of transformed feature rows; higher = more anomalous."""
        if self.scorer_ is None:
            self.scorer_ = _TreeScorer.of(self.forest)
        if self.scorer_.usable:
            return self.scorer_.score(rows)
        scores: np.ndarray = -self.forest.score_samples(rows)
        return scores

    def score_above(self, rows: np.ndarray, exact: np.ndarray | None = None) -> np.ndarray:
        """:meth:`score` where it is at or above the threshold, or ``exact`` marks the row; for other
        rows only a value below the threshold (an upper bound of the score), found with fewer trees.
        """
        if self.scorer_ is None:
            self.scorer_ = _TreeScorer.of(self.forest)
        if self.scorer_.usable:
            return self.scorer_.score(rows, self.threshold, exact)
        return self.score(rows)

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


class _TreeScorer:
    """``-IsolationForest.score_samples`` without its per-call and per-tree Python overhead.

    scikit-learn validates the input, then runs one joblib task per tree that applies the tree and
    adds ``depth + average path length - 1`` of the reached leaves to the running depths. Here the
    per-node sums are computed once, with the same operations, and the trees are applied in the
    same order to the same float32 rows, so the scores are bit-for-bit the same. A forest without
    the fitted attributes this relies on (another scikit-learn) is scored by scikit-learn itself.
    """

    __slots__ = ("columns", "contributions", "denominator", "least_after", "n_features", "trees", "usable")

    def __init__(self) -> None:
        self.usable = False
        self.trees: list[Any] = []
        self.contributions: list[np.ndarray] = []
        self.columns: list[np.ndarray | None] = []
        self.least_after: list[float] = []  # [k]: least depth trees k.. can still add to a row
        self.n_features = 0
        self.denominator = np.zeros(1)

    @classmethod
    def of(cls, forest: IsolationForest) -> _TreeScorer:
        """The scorer of a fitted forest (unusable when its fitted attributes are not all there)."""
        scorer = cls()
        try:
            paths, depths = forest._decision_path_lengths, forest._average_path_length_per_tree
            n_features, max_features = int(forest.n_features_in_), int(forest._max_features)
            scorer.trees = [est.tree_ for est in forest.estimators_]
            scorer.columns = [
                None if max_features == n_features else np.asarray(cols)
                for cols in forest.estimators_features_
            ]
            scorer.contributions = [np.asarray(p + a - 1.0) for p, a in zip(paths, depths, strict=True)]
            scorer.denominator = len(forest.estimators_) * _average_path_length([forest._max_samples])
            scorer.n_features = n_features
            least = [
                float(c[t.children_left == -1].min())
                for c, t in zip(scorer.contributions, scorer.trees, strict=True)
            ]
        except (AttributeError, TypeError, ValueError):
            return scorer
        scorer.least_after = [sum(least[k:]) for k in range(len(least) + 1)]
        scorer.usable = _average_path_length is not None and len(scorer.trees) == len(least) > 0
        return scorer

    def score(
        self, rows: np.ndarray, threshold: float | None = None, exact: np.ndarray | None = None
    ) -> np.ndarray:
        """Scores of ``rows`` (n, features); higher = more anomalous.

        With a ``threshold``, a row that can no longer reach it after some of the trees (and is
        not marked in ``exact``) stops there and gets an upper bound below the threshold instead.
        """
        x = np.ascontiguousarray(rows, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {x.shape}")
        depths = np.zeros(len(x))
        limit = self._depth_limit(threshold)
        keep = np.zeros(len(x), dtype=bool) if exact is None else np.asarray(exact, dtype=bool)
        at = np.arange(len(x))  # which rows ``x`` and ``summed`` still hold
        summed = depths.copy()
        trees = zip(self.trees, self.contributions, self.columns, strict=True)
        for k, (tree, contribution, cols) in enumerate(trees, start=1):
            summed += contribution[tree.apply(x if cols is None else np.ascontiguousarray(x[:, cols]))]
            if k % _PRUNE_EVERY == 0 and limit < math.inf and len(at):
                bound = summed + self.least_after[k]
                out = (bound > limit) & ~keep
                if out.any():
                    depths[at[out]] = bound[out]  # the score it would get at best: below the threshold
                    stay = ~out
                    at, x, summed, keep = at[stay], x[stay], summed[stay], keep[stay]
        depths[at] = summed
        denominator = self.denominator
        scores: np.ndarray = 2 ** (
            -np.divide(depths, denominator, out=np.ones_like(depths), where=denominator != 0)
        )
        return scores

    def _depth_limit(self, threshold: float | None) -> float:
        """The summed depth above which a row's score is surely below ``threshold`` (inf: never)."""
        denominator = float(self.denominator[0])
        if threshold is None or not threshold > 0.0 or denominator == 0.0:  # NaN: never
            return math.inf
        # score = 2 ** (-depth / denominator) >= threshold  <=>  depth <= -log2(threshold) * denominator;
        # the margin covers rounding in the sums and the power, many orders of magnitude over.
        return -math.log2(threshold) * denominator * (1 + 1e-9) + 1e-6


_PRUNE_EVERY = 8  # trees between checks for rows that can no longer reach the threshold


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
