"""Timestamps: RFC 3339 in, milliseconds out, exactly."""

from __future__ import annotations

import pytest

from detector.domain.events import format_ts, parse_ts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T12:00:00Z", 1_714_564_800.0),
        ("2024-05-01T12:00:00z", 1_714_564_800.0),
        ("2024-05-01T12:00:00+00:00", 1_714_564_800.0),
        ("2024-05-01T14:00:00+02:00", 1_714_564_800.0),
        ("2024-05-01T07:00:00-05:00", 1_714_564_800.0),
        ("2024-05-01T12:00:00", 1_714_564_800.0),  # naive = UTC
        ("2024-05-01T12:00:00.5Z", 1_714_564_800.5),
        ("2024-05-01T12:00:00.123Z", 1_714_564_800.123),
        ("2024-05-01T12:00:00.123456789Z", 1_714_564_800.123456),  # nanoseconds truncated
        ("2024-05-01T17:30:00.123456789+05:30", 1_714_564_800.123456),
        ("2024-05-01T07:00:00.999999999-05:00", 1_714_564_800.999999),
        ("  2024-05-01T12:00:00Z  ", 1_714_564_800.0),
    ],
)
def test_parse_ts(text: str, expected: float) -> None:
    assert parse_ts(text) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("bad", ["", "yesterday", "2024-13-01T00:00:00Z", None, 1714564800])
def test_parse_ts_rejects_non_timestamps(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_ts(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("ts", [0.0, 1_714_564_800.0, 1_714_564_800.123, 1_714_564_800.999, 4_102_444_799.5])
def test_format_then_parse_is_exact_to_the_millisecond(ts: float) -> None:
    text = format_ts(ts)
    assert text.endswith("Z") and len(text) == len("2024-05-01T12:00:00.000Z")
    assert parse_ts(text) == pytest.approx(ts, abs=1e-6)
    assert format_ts(parse_ts(text)) == text


def test_format_ts_truncates_below_milliseconds() -> None:
    assert format_ts(1_714_564_800.1239) == "2024-05-01T12:00:00.123Z"
