"""Slack Block Kit messages about incidents, playbook steps, approvals and escalations (pure).

Each builder returns a ``chat.postMessage`` payload without the channel: ``text`` (the plain
fallback shown in notifications) and ``blocks``. Every string that comes from logs or users
(keys, principals, reasons, names) is escaped for mrkdwn and every text is cut to Slack's limits,
so a hostile principal such as ``<!channel>`` shows as text and pings nobody.

>>> escape("<!channel> & <https://evil|click>")
'&lt;!channel&gt; &amp; &lt;https://evil|click&gt;'
>>> truncate("a" * 10, 5)
'aaaa…'
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from detector.domain.alerts import Alert, Severity
from detector.domain.errors import KeyWatchError
from detector.domain.incidents import Incident
from detector.domain.users import Permission, check_slack_user_id, needed_roles

SECTION_LIMIT = 3000  # section and context text
TEXT_LIMIT = 4000  # the top-level fallback text Slack recommends at most
HEADER_LIMIT = 150
BUTTON_TEXT_LIMIT = 75
BUTTON_VALUE_LIMIT = 2000
FIELD_LIMIT = 300  # one user-supplied value inside a section, so one field cannot crowd out the rest
MAX_REASONS = 8
MAX_LISTED = 10

APPROVE = "keywatch_approve"
DENY = "keywatch_deny"
DISABLE_KEY = "keywatch_disable_key"
ACTIONS_BLOCK = "keywatch_actions"
REASON_BLOCK = "keywatch_reason"
REASON_INPUT = "keywatch_reason_input"

Message = dict[str, Any]
Block = dict[str, Any]

_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_SEVERITY_ICON = {
    Severity.LOW: ":large_blue_circle:",
    Severity.MEDIUM: ":large_yellow_circle:",
    Severity.HIGH: ":large_orange_circle:",
    Severity.CRITICAL: ":red_circle:",
}
_OUTCOME_ICON = {
    "done": ":white_check_mark:",
    "skipped": ":fast_forward:",
    "waiting": ":hourglass_flowing_sand:",
    "failed": ":x:",
    "rolled_back": ":leftwards_arrow_with_hook:",
    "dry_run": ":memo:",
}


class MessageError(KeyWatchError):
    """A message that cannot be built (an identifier too long for a button)."""


@dataclass(frozen=True, slots=True)
class StepRef:
    """The approval step an Approve or Deny button acts on."""

    run_id: str
    step_index: int


@dataclass(frozen=True, slots=True)
class KeyRef:
    """The key a Disable key button acts on."""

    key_id: str


# -- text ---------------------------------------------------------------------------------------


def escape(text: str) -> str:
    """``text`` with the three characters mrkdwn reserves (``& < >``) escaped."""
    return text.translate(_ESCAPES)


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis, never through an ``&…;`` escape.

    >>> truncate("ab&amp;cd", 5)
    'ab…'
    """
    if len(text) <= limit:
        return text
    kept = text[: limit - 1]
    amp = kept.rfind("&", max(0, len(kept) - 4))
    if amp != -1 and ";" not in kept[amp:]:
        kept = kept[:amp]
    return kept + "…"


def user_text(text: str, limit: int = FIELD_LIMIT) -> str:
    """A user-supplied string made safe for mrkdwn: escaped, one line, at most ``limit`` characters."""
    return truncate(escape(" ".join(text.split())), limit)


def listed(values: Iterable[str], limit: int = MAX_LISTED) -> str:
    """Escaped values joined by commas, the first ``limit`` of them and how many more."""
    items = list(values)
    shown = ", ".join(user_text(v) for v in items[:limit])
    more = len(items) - limit
    return (shown + (f" and {more} more" if more > 0 else "")) or "none"


def plural(n: int, word: str) -> str:
    """``1 alert``, ``2 alerts``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def duration(seconds: float) -> str:
    """Seconds in words: ``45 seconds``, ``12 minutes``, ``2.5 hours``.

    >>> duration(150), duration(9000)
    ('2 minutes', '2.5 hours')
    """
    if seconds < 90:
        return plural(round(seconds), "second")
    if seconds < 5400:
        return plural(round(seconds / 60), "minute")
    return f"{seconds / 3600:.1f} hours"


# -- blocks -------------------------------------------------------------------------------------


def header(text: str) -> Block:
    """A header block (plain text; callers pass fixed wording, not user data)."""
    return {"type": "header", "text": {"type": "plain_text", "text": truncate(text, HEADER_LIMIT)}}


def section(mrkdwn: str) -> Block:
    """A mrkdwn section; ``mrkdwn`` must already be escaped."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(mrkdwn, SECTION_LIMIT)}}


def context(mrkdwn: str) -> Block:
    """A context block with one mrkdwn element; ``mrkdwn`` must already be escaped."""
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(mrkdwn, SECTION_LIMIT)}]}


def button(text: str, action_id: str, value: dict[str, Any], style: str | None = None) -> Block:
    """A button whose value is compact JSON; MessageError when that JSON exceeds Slack's limit."""
    encoded = json.dumps(value, separators=(",", ":"), sort_keys=True)
    if len(encoded) > BUTTON_VALUE_LIMIT:
        raise MessageError(f"button value of {action_id} is {len(encoded)} characters (Slack allows 2000)")
    element: Block = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": truncate(text, BUTTON_TEXT_LIMIT)},
        "value": encoded,
    }
    return element | ({"style": style} if style else {})


def message(text: str, blocks: Sequence[Block]) -> Message:
    """A payload: the fallback ``text`` (already escaped) and the blocks, links not unfurled."""
    return {
        "text": truncate(text, TEXT_LIMIT),
        "blocks": list(blocks),
        "unfurl_links": False,
        "unfurl_media": False,
    }


# -- messages -----------------------------------------------------------------------------------


def incident_message(
    incident: Incident,
    alerts: Sequence[Alert] = (),
    *,
    countries: Sequence[str] = (),
    previous: Severity | None = None,
) -> Message:
    """A new incident, or an escalated one when ``previous`` (its former severity) is lower.

    ``alerts`` supply the reasons and evidence counts; ``countries`` the geography seen.
    """
    escalated = previous is not None and previous < incident.severity
    level = incident.severity.label.upper()
    icon = _SEVERITY_ICON[incident.severity]
    if escalated and previous is not None:
        title = f"Incident escalated to {level} (was {previous.label})"
    else:
        title = f"New {level} incident"
    facts = [
        f"*{user_text(incident.title)}*",
        f"*Key:* {listed(incident.key_ids)}",
        f"*Principal:* {listed(incident.principals)}",
        f"*Countries:* {listed(countries)}",
        f"*Severity:* {incident.severity.label}  ·  *Status:* {incident.status.value}",
    ]
    reasons = _reasons(alerts)
    blocks = [header(title), section("\n".join(facts))]
    if reasons:
        blocks.append(section("*Why*\n" + "\n".join(f"• {r}" for r in reasons)))
    blocks.append(context(_evidence(incident, alerts)))
    first = f": {reasons[0]}" if reasons else ""
    fallback = f"{icon} KeyWatch: {title.lower()}: {user_text(incident.title)}{first}"
    return message(fallback, blocks)


def _reasons(alerts: Sequence[Alert]) -> list[str]:
    texts = list(dict.fromkeys(r.text for a in alerts for r in a.reasons))
    shown = [user_text(t, 500) for t in texts[:MAX_REASONS]]
    if len(texts) > MAX_REASONS:
        shown.append(f"…and {len(texts) - MAX_REASONS} more")
    return shown


def _evidence(incident: Incident, alerts: Sequence[Alert]) -> str:
    events = sum(len(a.event_ids) for a in alerts)
    windows = sum(a.count for a in alerts)
    parts = [plural(max(incident.alert_count, len(alerts)), "alert")]
    if alerts:
        parts += [plural(windows, "window"), plural(events, "sample event")]
    return f"Evidence: {', '.join(parts)}  ·  incident {user_text(incident.incident_id)}"


def step_message(
    *, run_id: str, step_index: int, step_id: str, action: str, outcome: str, detail: str | None = None
) -> Message:
    """What one playbook step did: ``outcome`` is done, skipped, waiting, failed, rolled_back, ..."""
    icon = _OUTCOME_ICON.get(outcome, ":information_source:")
    step = f"step {step_index + 1} {user_text(step_id)} ({user_text(action)})"
    line = f"{icon} Run {user_text(run_id)}: {step} *{user_text(outcome)}*"
    text = line + (f"\n{user_text(detail, 2000)}" if detail else "")
    return message(line, [section(text)])


def approval_message(
    *,
    run_id: str,
    step_index: int,
    step_id: str,
    key_id: str,
    summary: str,
    requested_by: str,
    approvers: int = 1,
    incident_title: str | None = None,
) -> Message:
    """Ask for a decision on an approval step, with Approve, Deny and Disable key buttons.

    Approve and Deny carry ``{"run_id", "step_index"}``, Disable key ``{"key_id"}``; a reason
    typed in the message's input goes with Deny.
    """
    step = {"run_id": run_id, "step_index": step_index}
    facts = [
        f"*Run:* {user_text(run_id)}, step {step_index + 1} {user_text(step_id)}",
        f"*Key:* {user_text(key_id)}",
        f"*Requested by:* {user_text(requested_by)}",
    ]
    if incident_title:
        facts.insert(0, f"*Incident:* {user_text(incident_title)}")
    who = f"{plural(approvers, 'approval')} from a {needed_roles(Permission.APPROVE)}"
    disable = button("Disable key", DISABLE_KEY, {"key_id": key_id}, "danger")
    disable["confirm"] = _confirm("Disable this key?", "Every service using the key will lose access.")
    actions = [
        button("Approve", APPROVE, step, "primary"),
        button("Deny", DENY, step),
        disable,
    ]
    blocks = [
        header("Approval needed"),
        section("\n".join(facts) + f"\n{user_text(summary, 2000)}"),
        _reason_input(),
        {"type": "actions", "block_id": ACTIONS_BLOCK, "elements": actions},
        context(f"Needs {who}."),
    ]
    fallback = f"KeyWatch approval needed: run {user_text(run_id)} step {step_index + 1} on key "
    return message(fallback + f"{user_text(key_id)}: {user_text(summary)}", blocks)


def _confirm(title: str, text: str) -> Block:
    return {
        "title": {"type": "plain_text", "text": title},
        "text": {"type": "plain_text", "text": text},
        "confirm": {"type": "plain_text", "text": "Disable key"},
        "deny": {"type": "plain_text", "text": "Cancel"},
        "style": "danger",
    }


def _reason_input() -> Block:
    return {
        "type": "input",
        "block_id": REASON_BLOCK,
        "optional": True,
        "label": {"type": "plain_text", "text": "Reason (sent with Deny)"},
        "element": {"type": "plain_text_input", "action_id": REASON_INPUT, "max_length": 500},
    }


def escalation_message(
    *,
    run_id: str,
    step_index: int,
    step_id: str,
    reason: str,
    waited_seconds: float | None = None,
    notify: Sequence[str] = (),
    here: bool = False,
) -> Message:
    """A run that needs people now (an approval timed out, a step keeps failing), mentioning them.

    ``notify`` are Slack member ids (checked, so nothing else can be injected as a mention).
    """
    mentions = [f"<@{check_slack_user_id(uid)}>" for uid in notify] + (["<!here>"] if here else [])
    waited = f" after {duration(waited_seconds)}" if waited_seconds is not None else ""
    step = f"Run {user_text(run_id)} step {step_index + 1} {user_text(step_id)}"
    line = f":rotating_light: {step} needs attention{waited}: {user_text(reason, 1000)}"
    text = (" ".join(mentions) + "\n" if mentions else "") + line
    return message(" ".join([*mentions, line]), [header("Escalation"), section(text)])


# -- buttons pressed ----------------------------------------------------------------------------


def parse_button(action_id: str, value: str) -> StepRef | KeyRef:
    """What a KeyWatch button press refers to; MessageError for a value KeyWatch did not write.

    >>> parse_button(APPROVE, '{"run_id":"r1","step_index":2}')
    StepRef(run_id='r1', step_index=2)
    """
    try:
        data = json.loads(value)
    except (ValueError, TypeError):
        raise MessageError(f"the {action_id} button carries no JSON value") from None
    if not isinstance(data, dict):
        raise MessageError(f"the {action_id} button value is not an object")
    if action_id in (APPROVE, DENY):
        run_id, index = data.get("run_id"), data.get("step_index")
        if isinstance(run_id, str) and run_id and type(index) is int and index >= 0:
            return StepRef(run_id, index)
    elif action_id == DISABLE_KEY:
        key_id = data.get("key_id")
        if isinstance(key_id, str) and key_id:
            return KeyRef(key_id)
    else:
        raise MessageError(f"unknown KeyWatch action {action_id[:64]!r}")
    raise MessageError(f"the {action_id} button value lacks its fields")
