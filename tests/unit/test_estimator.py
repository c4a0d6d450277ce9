"""The scikit-learn style estimator gives exactly what the pipeline decides."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import HOUR, T0, T_END, merged, normal_traffic, spread

from detector.config import DetectionSettings
from detector.estimator import RULES, KeyWatchEstimator
from detector.features.schema import FEATURE_NAMES
from detector.pipeline import FOREST


@pytest.fixture(scope="module")
def estimator() -> KeyWatchEstimator:
    return KeyWatchEstimator(DetectionSettings()).fit(normal_traffic(T0, T_END))


def test_windows_scores_and_predictions_agree_with_the_pipeline(estimator: KeyWatchEstimator) -> None:
    at = T_END + 10 * HOUR
    events = merged(normal_traffic(at - HOUR, at + HOUR), spread(at, 400, prefix="spike"))
    frame = estimator.windows(events)
    assert list(frame.columns[:2]) == ["key_id", "start"] and set(FEATURE_NAMES) <= set(frame.columns)
    assert set(RULES) <= set(frame.columns) and frame["volume_spike"].any()
    pipe = estimator.pipeline_
    assert pipe is not None and len(frame) == pipe.stats.mature_windows
    reported = {(f.key_id, f.window_start) for f in pipe.found if f.detector == FOREST}
    flagged = frame[estimator.predict(frame) == -1]
    predicted = set(zip(flagged["key_id"], flagged["start"], strict=True))
    assert predicted == reported
    scores, margins = estimator.score_samples(frame), estimator.decision_function(frame)
    assert np.all((margins < 0) == (estimator.predict(frame) == -1))
    quiet = margins >= 0  # not reported, so not novel either: the margin is the threshold minus the score
    forest = estimator.model_.forest if estimator.model_ else None
    assert forest is not None and np.allclose(margins[quiet], forest.threshold + scores[quiet])


def test_an_unfitted_estimator_says_so() -> None:
    with pytest.raises(ValueError, match="fit"):
        KeyWatchEstimator().windows([])
