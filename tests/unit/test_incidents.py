"""Incidents, pure: grouping alerts by key or principal within a span, and the status workflow."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from fakes import make_alert
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.domain.alerts import Alert, Severity
from detector.domain.incidents import (
    ALERT_ADDED,
    TRANSITIONS,
    IncidentError,
    IncidentStatus,
    TransitionError,
    absorb,
    assign,
    change_status,
    choose_incident,
    incident_id_for,
    note_entry,
    open_incident,
    plan_grouping,
)

SPAN = 3600.0
S = IncidentStatus


# -- workflow ----------------------------------------------------------------------------------


def test_closed_statuses_can_only_be_reopened() -> None:
    closed = [s for s in S if s.closed]
    assert closed == [S.RESOLVED, S.FALSE_POSITIVE]
    for status in closed:
        assert TRANSITIONS[status] == {S.OPEN}


def test_every_status_can_be_closed_or_reopened_and_none_loops_to_itself() -> None:
    for status in S:
        assert status not in TRANSITIONS[status]
        if not status.closed:
            assert {S.RESOLVED, S.FALSE_POSITIVE} <= TRANSITIONS[status]
        if status is not S.OPEN:
            assert status.can_become(S.OPEN)


@pytest.mark.parametrize(
    ("old", "new", "allowed"),
    [
        (S.OPEN, S.ACKNOWLEDGED, True),
        (S.OPEN, S.CONTAINED, True),
        (S.ACKNOWLEDGED, S.CONTAINED, True),
        (S.CONTAINED, S.RESOLVED, True),
        (S.CONTAINED, S.ACKNOWLEDGED, False),
        (S.RESOLVED, S.CONTAINED, False),
        (S.FALSE_POSITIVE, S.RESOLVED, False),
        (S.RESOLVED, S.OPEN, True),
    ],
)
def test_change_status(old: IncidentStatus, new: IncidentStatus, allowed: bool) -> None:
    incident = replace(open_incident(make_alert()), status=old)
    if not allowed:
        with pytest.raises(TransitionError, match=f"from {old.value} to {new.value}"):
            change_status(incident, new, "bob", at=5.0)
        return
    changed, entry = change_status(incident, new, "bob", at=5.0, note="checked")
    assert changed.status is new
    assert entry is not None
    assert (entry.actor, entry.at, entry.text) == ("bob", 5.0, f"{old.value} -> {new.value}: checked")


def test_setting_the_same_status_is_a_no_op() -> None:
    incident = open_incident(make_alert())
    assert change_status(incident, S.OPEN, "bob", at=1.0) == (incident, None)


def test_parse_status() -> None:
    assert S.parse("False-Positive") is S.FALSE_POSITIVE
    with pytest.raises(ValueError, match="unknown incident status"):
        S.parse("closed")


def test_assign_and_note() -> None:
    incident = open_incident(make_alert())
    assigned, entry = assign(incident, "carol", "bob", at=2.0)
    assert assigned.assignee == "carol" and entry.text == "assigned to carol"
    unassigned, entry = assign(assigned, None, "bob", at=3.0)
    assert unassigned.assignee is None and entry.text == "unassigned"
    assert note_entry("bob", "called the owner", at=4.0).kind == "note"
    with pytest.raises(IncidentError):
        note_entry("bob", "  ", at=4.0)


# -- grouping ----------------------------------------------------------------------------------


def test_incident_id_derives_from_the_first_alert() -> None:
    a, b = make_alert(), make_alert(start=60.0)
    assert incident_id_for(a) == incident_id_for(replace(a))
    assert incident_id_for(a) != incident_id_for(b)
    assert open_incident(a).incident_id == incident_id_for(a)


def test_alert_joins_incident_of_its_key() -> None:
    incident = open_incident(make_alert("k1", "p1"))
    assert choose_incident(make_alert("k1", "p2", 600.0), [incident], SPAN) == incident


def test_alert_joins_incident_of_its_principal_across_keys() -> None:
    incident = open_incident(make_alert("k1", "p1"))
    assert choose_incident(make_alert("k2", "p1", 600.0), [incident], SPAN) == incident
    assert choose_incident(make_alert("k2", "p2", 600.0), [incident], SPAN) is None


def test_missing_principals_do_not_match_each_other() -> None:
    incident = open_incident(make_alert("k1", None))
    assert choose_incident(make_alert("k2", None, 60.0), [incident], SPAN) is None


def test_span_expiry() -> None:
    incident = open_incident(make_alert("k1", "p1", 0.0))  # last_seen = 60
    assert choose_incident(make_alert("k1", "p1", 60.0 + SPAN), [incident], SPAN) == incident
    assert choose_incident(make_alert("k1", "p1", 61.0 + SPAN), [incident], SPAN) is None


def test_a_late_alert_within_the_span_before_the_incident_joins_it() -> None:
    incident = open_incident(make_alert("k1", "p1", 10_000.0))
    assert choose_incident(make_alert("k1", "p1", 10_000.0 - 1_800.0), [incident], SPAN) == incident
    assert choose_incident(make_alert("k1", "p1", 10_000.0 - 2 * SPAN), [incident], SPAN) is None


@pytest.mark.parametrize("status", [S.RESOLVED, S.FALSE_POSITIVE])
def test_closed_incidents_take_no_alerts(status: IncidentStatus) -> None:
    incident = replace(open_incident(make_alert()), status=status)
    assert choose_incident(make_alert(start=60.0), [incident], SPAN) is None
    assert choose_incident(make_alert(start=60.0), [replace(incident, status=S.OPEN)], SPAN) is not None


def test_the_most_recent_matching_incident_wins() -> None:
    older = open_incident(make_alert("k1", "p1", 0.0))
    newer = open_incident(make_alert("k2", "p1", 600.0))
    assert choose_incident(make_alert("k1", "p1", 900.0), [older, newer], SPAN) == newer


def test_absorb_keeps_the_highest_severity_and_widens_the_span() -> None:
    incident = open_incident(make_alert("k1", "p1", 0.0, severity=Severity.HIGH))
    grown = absorb(incident, make_alert("k2", "p2", 600.0, severity=Severity.LOW))
    assert grown.severity is Severity.HIGH
    assert (grown.first_seen, grown.last_seen, grown.alert_count) == (0.0, 660.0, 2)
    assert grown.key_ids == ("k1", "k2") and grown.principals == ("p1", "p2")
    refreshed = absorb(grown, make_alert("k2", "p2", 600.0, minutes=5, severity=Severity.CRITICAL), new=False)
    assert (refreshed.severity, refreshed.last_seen, refreshed.alert_count) == (Severity.CRITICAL, 900.0, 2)


def test_plan_groups_a_batch_in_event_time_order() -> None:
    a1, a2, a3 = make_alert("k1", "p1", 0.0), make_alert("k2", "p1", 300.0), make_alert("k3", "p3", 300.0)
    plan = plan_grouping([a3, a2, a1], [], SPAN, at=99.0)
    first = incident_id_for(a1)
    assert plan.opened == [first, incident_id_for(a3)]
    assert dict(plan.links) == {a1.alert_id: first, a2.alert_id: first, a3.alert_id: incident_id_for(a3)}
    assert plan.incidents[first].alert_count == 2
    assert [(i, e.kind, e.at) for i, e in plan.timeline][:2] == [(first, ALERT_ADDED, 99.0)] * 2


def test_plan_extends_a_stored_incident() -> None:
    stored = open_incident(make_alert("k1", "p1", 0.0))
    plan = plan_grouping([make_alert("k1", "p9", 120.0)], [stored], SPAN, at=1.0)
    assert plan.opened == []
    assert plan.incidents[stored.incident_id].alert_count == 2


alerts_strategy = st.lists(
    st.builds(
        make_alert,
        key=st.sampled_from(["k1", "k2", "k3"]),
        principal=st.sampled_from(["p1", "p2", None]),
        start=st.integers(0, 40).map(lambda n: n * 600.0),
        severity=st.sampled_from(list(Severity)),
        detector=st.sampled_from(["volume_spike", "off_hours"]),
    ),
    max_size=25,
    unique_by=lambda a: a.alert_id,
)


@settings(max_examples=150, deadline=None)
@given(alerts=alerts_strategy, seed=st.integers(0, 1000), cut=st.integers(0, 25))
def test_grouping_is_deterministic_and_consistent(alerts: list[Alert], seed: int, cut: int) -> None:
    whole = plan_grouping(alerts, [], SPAN, at=0.0)
    shuffled = alerts[:]
    random.Random(seed).shuffle(shuffled)
    assert plan_grouping(shuffled, [], SPAN, at=0.0).links == whole.links
    # replayed in two batches (in event-time order), the same incidents come out
    ordered = sorted(alerts, key=lambda a: (a.window_start, a.alert_id))
    first = plan_grouping(ordered[:cut], [], SPAN, at=0.0)
    second = plan_grouping(ordered[cut:], first.incidents.values(), SPAN, at=0.0)
    assert dict(first.links) | dict(second.links) == dict(whole.links)
    by_id = {a.alert_id: a for a in alerts}
    assert sum(i.alert_count for i in whole.incidents.values()) == len(alerts)
    for incident in whole.incidents.values():
        members = [by_id[a] for a, i in whole.links if i == incident.incident_id]
        assert incident.alert_count == len(members)
        assert incident.severity == max(a.severity for a in members)
        assert incident.last_seen == max(a.window_end for a in members)
        assert incident.first_seen == min(a.first_window_start for a in members)
        opener = min(members, key=lambda a: (a.window_start, a.alert_id))
        assert incident.incident_id == incident_id_for(opener)


def test_to_dict_leaves_out_an_unloaded_timeline() -> None:
    incident = open_incident(make_alert())
    assert "timeline" not in incident.to_dict()
    assert incident.to_dict()["status"] == "open"
    _, entry = assign(incident, "carol", "bob", at=0.0)
    assert replace(incident, timeline=(entry,)).to_dict()["timeline"][0]["actor"] == "bob"
