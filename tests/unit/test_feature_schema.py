"""The feature schema: vector order, transforms, versions."""

from __future__ import annotations

import math

import pytest

from detector.features.schema import FEATURE_NAMES, FEATURE_SCHEMA_VERSION, FEATURES, check_schema, to_vector


def test_to_vector_order_length_and_transforms() -> None:
    values = {name: float(i) for i, name in enumerate(FEATURE_NAMES)}
    vec = to_vector(values)
    assert len(vec) == len(FEATURE_NAMES) == len(FEATURES)
    for i, (name, transform) in enumerate(FEATURES):
        expected = math.log1p(values[name]) if transform == "log" else values[name]
        assert vec[i] == pytest.approx(expected), name


def test_to_vector_clips_negative_counts_but_keeps_raw_signs() -> None:
    values = dict.fromkeys(FEATURE_NAMES, -3.0)
    vec = dict(zip(FEATURE_NAMES, to_vector(values), strict=True))
    assert vec["events"] == 0.0
    assert vec["rate_z"] == -3.0


def test_to_vector_requires_every_feature() -> None:
    values = dict.fromkeys(FEATURE_NAMES[:-1], 0.0)
    with pytest.raises(KeyError, match=FEATURE_NAMES[-1]):
        to_vector(values)


def test_check_schema() -> None:
    assert check_schema(FEATURE_NAMES, FEATURE_SCHEMA_VERSION) is None
    assert check_schema(list(FEATURE_NAMES), FEATURE_SCHEMA_VERSION) is None
    assert "version" in (check_schema(FEATURE_NAMES, FEATURE_SCHEMA_VERSION + 1) or "")
    swapped = [FEATURE_NAMES[1], FEATURE_NAMES[0], *FEATURE_NAMES[2:]]
    assert "order" in (check_schema(swapped, FEATURE_SCHEMA_VERSION) or "")
    assert check_schema(FEATURE_NAMES[:-1], FEATURE_SCHEMA_VERSION) is not None
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
