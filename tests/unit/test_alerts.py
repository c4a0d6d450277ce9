"""Severities and alerts: ordering, labels, JSON form, identities."""

from __future__ import annotations

import json

import pytest
from helpers import DAY3, KEY_DEV, KEY_PROD

from detector.domain.alerts import Alert, Reason, Severity, alert_id_for


@pytest.mark.parametrize(
    ("start", "steps", "expected"),
    [
        (Severity.MEDIUM, 1, Severity.HIGH),
        (Severity.MEDIUM, -1, Severity.LOW),
        (Severity.LOW, -1, Severity.LOW),
        (Severity.LOW, -5, Severity.LOW),
        (Severity.CRITICAL, 1, Severity.CRITICAL),
        (Severity.HIGH, 7, Severity.CRITICAL),
        (Severity.HIGH, 0, Severity.HIGH),
    ],
)
def test_severity_shift_clamps(start: Severity, steps: int, expected: Severity) -> None:
    assert start.shift(steps) is expected


def test_severity_labels_parse_back() -> None:
    for sev in Severity:
        assert Severity.parse(sev.label) is sev
        assert Severity.parse(sev.label.upper()) is sev
    with pytest.raises(ValueError, match="unknown severity"):
        Severity.parse("urgent")


def test_alert_round_trips_through_its_json_form() -> None:
    alert = Alert(
        alert_id=alert_id_for(KEY_PROD, "volume_spike", None, DAY3),
        key_id=KEY_PROD, principal="p", detector="volume_spike", severity=Severity.HIGH, score=12.34567,
        window_start=DAY3 + 120, window_end=DAY3 + 180, first_window_start=DAY3,
        reasons=[Reason("rate_ratio", 12.3, 1.0, "many calls")], event_ids=["a", "b"], count=3,
        environment="production", classification="restricted",
    )  # fmt: skip
    back = Alert.from_dict(json.loads(json.dumps(alert.to_dict())))
    assert back.to_dict() == alert.to_dict()
    assert back.score == pytest.approx(12.3457)


def test_alert_ids_differ_by_every_part_of_their_identity() -> None:
    ids = {
        alert_id_for(KEY_PROD, "d", None, 60.0),
        alert_id_for(KEY_DEV, "d", None, 60.0),
        alert_id_for(KEY_PROD, "e", None, 60.0),
        alert_id_for(KEY_PROD, "d", "p", 60.0),
        alert_id_for(KEY_PROD, "d", None, 120.0),
    }
    assert len(ids) == 5 and all(len(i) == 32 for i in ids)
