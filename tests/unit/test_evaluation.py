"""Scoring alerts against labels: matching, grace, time to detect, false alerts, key-hours."""

from __future__ import annotations

import json
from typing import Any

import pytest

from detector.domain.alerts import Alert, Severity
from detector.domain.events import format_ts
from detector.evaluation import evaluate

T0 = 1_714_435_200.0  # 2024-04-30T00:00:00Z


def _alert(key: str, start: float, *, windows: int = 1, principal: str | None = None) -> Alert:
    """An alert merged over ``windows`` consecutive one-minute windows starting at ``start``."""
    last = start + 60.0 * (windows - 1)
    return Alert("a", key, principal, "rule", Severity.HIGH, 1.0, last, last + 60.0, start, [], [])


def _scenario(
    name: str, kind: str, keys: list[str], principal: str | None, start: float, end: float
) -> dict[str, Any]:
    return {
        "id": f"{name}-1",
        "scenario": name,
        "kind": kind,
        "key_ids": keys,
        "principal": principal,
        "start": format_ts(start),
        "end": format_ts(end),
        "description": "x",
    }


def _labels(*scenarios: dict[str, Any], key_count: int = 10) -> dict[str, Any]:
    meta = {"key_count": key_count, "test_start": format_ts(T0), "test_end": format_ts(T0 + 86400.0)}
    return {"meta": meta, "scenarios": list(scenarios)}


EXFIL = _scenario("exfiltration_spike", "attack", ["k1"], "p1", T0 + 600, T0 + 1200)
PROBE = _scenario("denied_probing", "attack", ["k2", "k3"], "p9", T0 + 3600, T0 + 3700)
SURGE = _scenario("batch_surge", "benign", ["k4"], "p4", T0 + 7200, T0 + 9000)


def test_detected_and_missed() -> None:
    report = evaluate(_labels(EXFIL, PROBE), [_alert("k1", T0 + 600)])
    rows = {r.scenario: r for r in report.rows}
    assert (rows["exfiltration_spike"].detected, rows["exfiltration_spike"].recall) == (1, 1.0)
    assert (rows["denied_probing"].detected, rows["denied_probing"].median_ttd_windows) == (0, None)
    assert report.overall_recall == 0.5 and report.false_alerts == 0


def test_principal_matches_across_keys() -> None:
    other_key = _alert("k7", T0 + 3630, principal="p9")
    assert evaluate(_labels(PROBE), [other_key]).overall_recall == 1.0
    no_principal = _scenario("x", "attack", ["k1"], None, T0, T0 + 60)
    report = evaluate(_labels(no_principal), [_alert("k7", T0, principal=None)])
    assert report.overall_recall == 0.0 and report.false_alerts == 1


def test_grace_period_after_end() -> None:
    end = T0 + 1200
    inside = evaluate(_labels(EXFIL), [_alert("k1", end + 240)])
    outside = evaluate(_labels(EXFIL), [_alert("k1", end + 301)])
    assert inside.overall_recall == 1.0 and inside.false_alerts == 0
    assert outside.overall_recall == 0.0 and outside.false_alerts == 1
    assert evaluate(_labels(EXFIL), [_alert("k1", end + 301)], grace_windows=6).overall_recall == 1.0


def test_alert_ending_at_start_does_not_match() -> None:
    report = evaluate(_labels(EXFIL), [_alert("k1", T0 + 540)])
    assert report.overall_recall == 0.0


def test_time_to_detect_rounds_up_and_is_at_least_one() -> None:
    late = evaluate(_labels(EXFIL), [_alert("k1", T0 + 630)])  # first window ends 90 s after start
    assert late.median_ttd_windows == 2.0
    early = evaluate(_labels(EXFIL), [_alert("k1", T0 + 300, windows=10)])  # episode began before
    assert early.median_ttd_windows == 1.0
    merged = evaluate(_labels(EXFIL), [_alert("k1", T0 + 720, windows=8)])  # counts its first window
    assert merged.median_ttd_windows == 3.0


def test_earliest_matching_alert_wins() -> None:
    alerts = [_alert("k1", T0 + 1100), _alert("k1", T0 + 660), _alert("k1", T0 + 900)]
    report = evaluate(_labels(EXFIL), alerts)
    assert report.median_ttd_windows == 2.0 and report.alerts_total == 3 and report.false_alerts == 0


def test_false_alerts_and_benign_alerted() -> None:
    alerts = [_alert("k4", T0 + 7300), _alert("k4", T0 + 8000), _alert("k9", T0 + 50_000)]
    report = evaluate(_labels(EXFIL, SURGE), alerts)
    assert report.false_alerts == 3 and report.benign_alerted == 1
    benign = next(r for r in report.rows if r.kind == "benign")
    assert (benign.detected, benign.instances) == (1, 1)
    assert report.false_per_1000_key_hours == pytest.approx(1000 * 3 / 240)


def test_alert_matching_attack_and_benign_is_not_false() -> None:
    surge = _scenario("batch_surge", "benign", ["k1"], None, T0 + 600, T0 + 1200)
    report = evaluate(_labels(EXFIL, surge), [_alert("k1", T0 + 700)])
    assert report.false_alerts == 0 and report.benign_alerted == 1


def test_key_hours_from_meta_argument_or_observed_keys() -> None:
    assert evaluate(_labels(EXFIL, key_count=30), []).key_hours == 720.0
    assert evaluate(_labels(EXFIL), [], key_hours=5.0).key_hours == 5.0
    real = {"scenarios": [{"scenario": "incident", "key_id": "k1", "start": T0, "end": T0 + 3300}]}
    report = evaluate(real, [_alert("k2", T0 + 100), _alert("k1", T0 + 100)])
    # keys k1 and k2 over start .. end + 5 one-minute grace windows = 3600 s
    assert report.key_hours == pytest.approx(2.0)
    assert report.overall_recall == 1.0 and report.false_alerts == 1
    assert report.false_per_1000_key_hours == pytest.approx(500.0)
    assert evaluate({"scenarios": []}, []).key_hours == 0.0


def test_report_serialises_and_prints() -> None:
    report = evaluate(_labels(EXFIL, PROBE, SURGE), [_alert("k1", T0 + 600)])
    data = json.loads(json.dumps(report.to_dict()))
    assert [r["scenario"] for r in data["rows"]] == ["denied_probing", "exfiltration_spike", "batch_surge"]
    table = report.format_table()
    assert "exfiltration_spike" in table and "batch_surge" in table and "overall recall 0.50" in table


def test_alerts_from_json_round_trip() -> None:
    alert = Alert.from_dict(_alert("k1", T0 + 600).to_dict())
    assert evaluate(_labels(EXFIL), iter([alert])).overall_recall == 1.0
