"""Slack messages (pure): hostile strings escaped, Slack's limits kept, buttons, fallbacks; roles."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import fakes
import pytest

from detector.domain.alerts import Alert, Reason, Severity
from detector.domain.incidents import Incident, IncidentStatus, open_incident
from detector.domain.users import (
    Permission,
    PermissionDeniedError,
    Role,
    User,
    UserError,
    check_name,
    check_slack_user_id,
)
from detector.response import slack_messages as sm

HOSTILE = "<!channel> & <@U0ADMIN> <https://evil.example|click me> *bold* `code`"
T0 = 1_714_348_800.0


def make_alert(key: str = "k1", principal: str | None = "p1", reasons: list[str] | None = None) -> Alert:
    texts = reasons if reasons is not None else ["12 calls from BR, a country never seen for this key"]
    return fakes.make_alert(key, principal, T0, detector="new_geography", severity=Severity.HIGH, score=1.0,
                            reasons=[Reason("new_country_events", 12, "DE", t) for t in texts],
                            event_ids=["e1", "e2", "e3"], minutes=1, count=2)  # fmt: skip


def texts(value: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every text object (type plain_text or mrkdwn) in a payload, with its text."""
    if isinstance(value, dict):
        if value.get("type") in ("plain_text", "mrkdwn") and isinstance(value.get("text"), str):
            yield value["text"], value
        for item in value.values():
            yield from texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from texts(item)


def mrkdwn_texts(payload: dict[str, Any]) -> list[str]:
    return [payload["text"]] + [t for t, obj in texts(payload["blocks"]) if obj["type"] == "mrkdwn"]


def assert_no_raw_markup(payload: dict[str, Any]) -> None:
    for text in mrkdwn_texts(payload):
        assert "<" not in text and ">" not in text, text
        assert "&" not in text.replace("&amp;", "").replace("&lt;", "").replace("&gt;", ""), text


def assert_within_limits(payload: dict[str, Any]) -> None:
    assert len(payload["text"]) <= sm.TEXT_LIMIT
    assert len(payload["blocks"]) <= 50
    for block in payload["blocks"]:
        if block["type"] in ("section", "context"):
            for text, _ in texts(block):
                assert 1 <= len(text) <= sm.SECTION_LIMIT
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= sm.HEADER_LIMIT
        if block["type"] == "actions":
            for element in block["elements"]:
                assert len(element["text"]["text"]) <= sm.BUTTON_TEXT_LIMIT
                assert len(element["value"]) <= sm.BUTTON_VALUE_LIMIT


# -- escaping and limits ------------------------------------------------------------------------


def test_escape_neutralises_mentions_and_links() -> None:
    assert sm.escape(HOSTILE).count("<") == 0
    assert sm.escape("a&b<c>d") == "a&amp;b&lt;c&gt;d"
    assert sm.escape("&amp;") == "&amp;amp;"  # escaped again: shows literally


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
def test_truncate_never_cuts_an_escape_in_half(limit: int) -> None:
    cut = sm.truncate(sm.escape("a<b&c>d" * 3), limit)
    assert len(cut) <= limit
    assert cut.endswith("…")
    body = cut[:-1]
    last = body.rfind("&")
    assert last == -1 or ";" in body[last:]


def test_user_text_is_one_line_and_bounded() -> None:
    assert sm.user_text("a\n\nb\tc") == "a b c"
    assert len(sm.user_text("<" * 5000)) <= sm.FIELD_LIMIT


def test_incident_message_escapes_every_user_string() -> None:
    alert = make_alert(key=HOSTILE, principal=HOSTILE, reasons=[HOSTILE])
    payload = sm.incident_message(open_incident(alert), [alert], countries=[HOSTILE])
    assert_no_raw_markup(payload)
    assert_within_limits(payload)
    assert "&lt;!channel&gt;" in payload["blocks"][1]["text"]["text"]


def test_incident_message_keeps_limits_with_huge_inputs() -> None:
    huge = "x" * 10_000
    alerts = [make_alert(key=huge, principal=huge, reasons=[f"{i} {huge}" for i in range(50)])]
    incident = open_incident(alerts[0])
    many_keys = Incident(**{**incident_fields(incident), "key_ids": tuple(f"k{i}" for i in range(500))})
    for inc in (incident, many_keys):
        payload = sm.incident_message(inc, alerts, countries=[huge] * 300)
        assert_within_limits(payload)
    assert "and 490 more" in sm.incident_message(many_keys)["blocks"][1]["text"]["text"]


def incident_fields(incident: Incident) -> dict[str, Any]:
    return {name: getattr(incident, name) for name in Incident.__slots__}


def test_incident_message_content_and_fallback() -> None:
    alert = make_alert()
    payload = sm.incident_message(open_incident(alert), [alert, make_alert()], countries=["BR", "DE"])
    body = payload["blocks"][1]["text"]["text"]
    assert "*Key:* k1" in body and "*Principal:* p1" in body and "*Countries:* BR, DE" in body
    assert "*Severity:* high" in body
    why = payload["blocks"][2]["text"]["text"]
    assert why.count("•") == 1  # the same reason twice is shown once
    evidence = payload["blocks"][-1]["elements"][0]["text"]
    assert "2 alerts" in evidence and "4 windows" in evidence and "6 sample events" in evidence
    assert payload["text"].startswith(":large_orange_circle: KeyWatch: new high incident")
    assert "12 calls from BR" in payload["text"]
    assert payload["blocks"][0]["text"]["text"] == "New HIGH incident"


def test_escalated_incident_names_the_old_severity() -> None:
    alert = make_alert()
    payload = sm.incident_message(open_incident(alert), [alert], previous=Severity.MEDIUM)
    assert payload["blocks"][0]["text"]["text"] == "Incident escalated to HIGH (was medium)"
    assert "escalated" in payload["text"]
    same = sm.incident_message(open_incident(alert), [alert], previous=Severity.HIGH)
    assert same["blocks"][0]["text"]["text"] == "New HIGH incident"


def test_incident_without_alerts_or_countries() -> None:
    payload = sm.incident_message(open_incident(make_alert(principal=None)))
    body = payload["blocks"][1]["text"]["text"]
    assert "*Principal:* none" in body and "*Countries:* none" in body
    assert_within_limits(payload)


def test_many_reasons_are_capped() -> None:
    alert = make_alert(reasons=[f"reason {i}" for i in range(20)])
    why = sm.incident_message(open_incident(alert), [alert])["blocks"][2]["text"]["text"]
    assert why.count("•") == sm.MAX_REASONS + 1
    assert "…and 12 more" in why


# -- steps, approvals, escalations --------------------------------------------------------------


def test_step_message() -> None:
    payload = sm.step_message(
        run_id="run-1", step_index=0, step_id="disable", action="disable_key", outcome="done", detail=HOSTILE
    )
    assert payload["text"] == ":white_check_mark: Run run-1: step 1 disable (disable_key) *done*"
    assert_no_raw_markup(payload)
    failed = sm.step_message(run_id="r", step_index=2, step_id="s", action="a", outcome="failed")
    assert failed["text"].startswith(":x:") and "step 3" in failed["text"]


def approval(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "run_id": "run-7",
        "step_index": 1,
        "step_id": "approve-disable",
        "key_id": "arn:aws:kms:eu-west-1:111122223333:key/abc",
        "summary": "Disable the key used from BR",
        "requested_by": "keywatch",
    }
    return sm.approval_message(**(args | overrides))


def buttons(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (actions,) = [b for b in payload["blocks"] if b["type"] == "actions"]
    assert actions["block_id"] == sm.ACTIONS_BLOCK
    return {e["action_id"]: e for e in actions["elements"]}


def test_approval_buttons_carry_compact_json() -> None:
    payload = approval()
    found = buttons(payload)
    assert list(found) == [sm.APPROVE, sm.DENY, sm.DISABLE_KEY]
    assert [b["text"]["text"] for b in found.values()] == ["Approve", "Deny", "Disable key"]
    assert found[sm.APPROVE]["value"] == '{"run_id":"run-7","step_index":1}'
    assert json.loads(found[sm.DENY]["value"]) == {"run_id": "run-7", "step_index": 1}
    assert json.loads(found[sm.DISABLE_KEY]["value"]) == {
        "key_id": "arn:aws:kms:eu-west-1:111122223333:key/abc"
    }
    assert found[sm.APPROVE]["style"] == "primary"
    assert found[sm.DISABLE_KEY]["style"] == "danger" and "confirm" in found[sm.DISABLE_KEY]
    assert "style" not in found[sm.DENY]
    assert payload["text"].startswith("KeyWatch approval needed: run run-7 step 2")
    assert_within_limits(payload)


def test_approval_has_an_optional_reason_input() -> None:
    (block,) = [b for b in approval()["blocks"] if b["type"] == "input"]
    assert block["block_id"] == sm.REASON_BLOCK and block["optional"] is True
    assert block["element"]["action_id"] == sm.REASON_INPUT


def test_approval_escapes_hostile_values_but_keeps_them_exact_in_buttons() -> None:
    payload = approval(key_id=HOSTILE, requested_by=HOSTILE, summary=HOSTILE, incident_title=HOSTILE)
    assert_no_raw_markup(payload)
    assert json.loads(buttons(payload)[sm.DISABLE_KEY]["value"]) == {"key_id": HOSTILE}


def test_a_button_value_too_long_is_refused_not_truncated() -> None:
    with pytest.raises(sm.MessageError, match="Slack allows 2000"):
        approval(key_id="k" * 3000)


def test_button_text_is_cut_to_75() -> None:
    element = sm.button("B" * 200, "x", {})
    assert len(element["text"]["text"]) == sm.BUTTON_TEXT_LIMIT


def test_escalation_mentions_only_valid_member_ids() -> None:
    payload = sm.escalation_message(
        run_id="run-7",
        step_index=1,
        step_id="approve",
        reason=HOSTILE,
        waited_seconds=3600,
        notify=["U024BE7LH"],
    )
    assert payload["blocks"][1]["text"]["text"].startswith("<@U024BE7LH>\n")
    assert "after 60 minutes" in payload["text"]
    assert "&lt;!channel&gt;" in payload["text"]
    with pytest.raises(UserError):
        sm.escalation_message(run_id="r", step_index=0, step_id="s", reason="x", notify=["U1> <!channel"])
    here = sm.escalation_message(run_id="r", step_index=0, step_id="s", reason="x", here=True)
    assert here["text"].startswith("<!here> ")


def test_every_message_has_a_fallback_text_and_no_unfurl() -> None:
    alert = make_alert()
    payloads = [
        sm.incident_message(open_incident(alert), [alert]),
        sm.step_message(run_id="r", step_index=0, step_id="s", action="a", outcome="done"),
        approval(),
        sm.escalation_message(run_id="r", step_index=0, step_id="s", reason="timed out"),
    ]
    for payload in payloads:
        assert payload["text"].strip()
        assert payload["unfurl_links"] is False
        json.dumps(payload)  # JSON all the way down


# -- button presses -----------------------------------------------------------------------------


def test_parse_button_round_trips() -> None:
    found = buttons(approval())
    assert sm.parse_button(sm.APPROVE, found[sm.APPROVE]["value"]) == sm.StepRef("run-7", 1)
    assert sm.parse_button(sm.DENY, found[sm.DENY]["value"]) == sm.StepRef("run-7", 1)
    key = sm.parse_button(sm.DISABLE_KEY, found[sm.DISABLE_KEY]["value"])
    assert key == sm.KeyRef("arn:aws:kms:eu-west-1:111122223333:key/abc")


@pytest.mark.parametrize(
    ("action_id", "value"),
    [
        (sm.APPROVE, "not json"),
        (sm.APPROVE, "[1]"),
        (sm.APPROVE, '{"run_id": "r"}'),
        (sm.APPROVE, '{"run_id": "r", "step_index": -1}'),
        (sm.APPROVE, '{"run_id": "r", "step_index": true}'),
        (sm.DENY, '{"run_id": "", "step_index": 0}'),
        (sm.DISABLE_KEY, '{"key_id": 5}'),
        ("other_action", '{"key_id": "k"}'),
    ],
)
def test_parse_button_refuses_foreign_values(action_id: str, value: str) -> None:
    with pytest.raises(sm.MessageError):
        sm.parse_button(action_id, value)


# -- roles --------------------------------------------------------------------------------------


def test_roles_are_ordered_and_grant_upwards() -> None:
    assert Role.ANALYST < Role.RESPONDER < Role.ADMIN
    assert max(Role) is Role.ADMIN and Role("responder") is Role.RESPONDER
    assert not Role.ANALYST.can_approve and not Role.ANALYST.can_change_keys
    assert Role.RESPONDER.can_approve and Role.RESPONDER.can_run_playbooks and Role.RESPONDER.can_change_keys
    assert not Role.RESPONDER.can_manage_users
    assert all(Role.ADMIN.allows(p) for p in Permission)
    assert f"{Role.ADMIN}" == "admin"


def test_require_names_the_role_needed() -> None:
    with pytest.raises(PermissionDeniedError, match="needs the responder or admin role"):
        User("ann", Role.ANALYST).require(Permission.APPROVE)
    with pytest.raises(PermissionDeniedError, match="needs the admin role"):
        User("rob", Role.RESPONDER).require(Permission.MANAGE_USERS)
    with pytest.raises(PermissionDeniedError, match="disabled"):
        User("ada", Role.ADMIN, disabled=True).require(Permission.VIEW)
    User("rob", Role.RESPONDER).require(Permission.CHANGE_KEYS)


def test_parse_and_checks() -> None:
    assert Role.parse(" ADMIN ") is Role.ADMIN
    with pytest.raises(UserError, match="unknown role 'root'"):
        Role.parse("root")
    with pytest.raises(UserError):
        check_name("has space")
    with pytest.raises(UserError):
        check_slack_user_id("u123")
    assert check_name("ann@example.com") == "ann@example.com"


def test_incident_status_shows_in_message() -> None:
    alert = make_alert()
    incident = open_incident(alert)
    contained = Incident(**{**incident_fields(incident), "status": IncidentStatus.CONTAINED})
    assert "*Status:* contained" in sm.incident_message(contained)["blocks"][1]["text"]["text"]
