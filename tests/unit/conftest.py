"""Fixtures: settings, a mature history learned through the real pipeline, and fresh detectors on it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from helpers import T0, T_END, normal_traffic

from detector.config import DetectionSettings
from detector.domain.alerts import Alert
from detector.domain.catalog import KeyCatalog
from detector.features.profiles import Profiles
from detector.pipeline import Pipeline
from detector.scoring.forest import ForestModel


@dataclass(frozen=True)
class History:
    """What three days of normal traffic taught a training pipeline."""

    settings: DetectionSettings
    profiles: Profiles
    rows: list[list[float]]
    events: int
    alerts: list[Alert]


@pytest.fixture(scope="session")
def settings() -> DetectionSettings:
    """The documented defaults of the detection core."""
    return DetectionSettings()


@pytest.fixture(scope="session")
def history(settings: DetectionSettings) -> History:
    """Learn profiles from three days of normal traffic, as ``keywatch train`` does (trust_input)."""
    events = normal_traffic(T0, T_END)
    pipe = Pipeline(settings, trust_input=True, collect_rows=True)
    pipe.process(events)
    alerts = pipe.finish()
    return History(settings, pipe.profiles, pipe.rows, len(events), alerts)


MakePipeline = Callable[..., Pipeline]


@pytest.fixture
def make_pipeline(history: History) -> MakePipeline:
    """Factory of detection pipelines (trust_input off) seeded with a private copy of the history."""

    def build(
        settings: DetectionSettings | None = None,
        *,
        catalog: KeyCatalog | None = None,
        forest: ForestModel | None = None,
    ) -> Pipeline:
        return Pipeline(
            settings or history.settings,
            profiles=copy.deepcopy(history.profiles),
            catalog=catalog,
            forest=forest,
        )

    return build


@pytest.fixture
def mature(make_pipeline: MakePipeline) -> Pipeline:
    """A detection pipeline whose keys and principals have a mature, three-day profile."""
    return make_pipeline()
