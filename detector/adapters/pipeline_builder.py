"""The detector of one partition, built from a saved model: the same recipe in every process.

A :class:`PipelineBuilder` is picklable: a detector worker process receives it and loads the
model, catalog and GeoIP database itself, once, then builds a fresh pipeline per partition.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from detector.adapters.geoip import MaxMindLocator
from detector.adapters.model_store import load_model
from detector.config import DetectionSettings, GeoIPSettings
from detector.domain.catalog import KeyCatalog
from detector.features.geo import Enricher
from detector.pipeline import Pipeline
from detector.training import TrainedModel


class PipelineBuilder:
    """Builds a partition's pipeline: the model's profiles (a copy each), forest, catalog, geography."""

    def __init__(
        self,
        detection: DetectionSettings,
        model_dir: Path,
        catalog: KeyCatalog,
        geoip: GeoIPSettings | None = None,
    ) -> None:
        """``geoip`` None: no geolocation (events keep the geography their source gave)."""
        self.detection = detection
        self.model_dir = model_dir
        self.catalog = catalog
        self.geoip = geoip
        self._model: TrainedModel | None = None
        self._enricher: Enricher | None = None

    def load(self) -> PipelineBuilder:
        """Read and check the model and open the GeoIP database now (raises the clear error early)."""
        if self._model is None:
            self._model = load_model(self.model_dir)
            g = self.geoip
            self._enricher = Enricher(MaxMindLocator(g.mmdb_path), g.cache_size) if g else Enricher(None)
        return self

    def release(self) -> None:
        """Drop the loaded model (a member whose workers load their own); a later call loads it again."""
        self._model = self._enricher = None

    def __call__(self) -> Pipeline:
        """A fresh pipeline for one partition."""
        self.load()
        assert self._model is not None  # noqa: S101 - set by load()
        return Pipeline(
            self.detection,
            profiles=self._model.profiles.copy(),
            forest=self._model.forest,
            catalog=self.catalog,
            enricher=self._enricher,
        )

    def __getstate__(self) -> dict[str, Any]:
        """What a worker process needs to load the model itself (not the loaded model)."""
        return {**self.__dict__, "_model": None, "_enricher": None}
