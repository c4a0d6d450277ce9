"""The runner's notifications as Slack messages in the outbox (delivered by :class:`SlackSender`)."""

from __future__ import annotations

from typing import Any

from detector.adapters.slack.outbox import enqueue
from detector.adapters.store import Store
from detector.domain.alerts import Alert
from detector.domain.incidents import Incident
from detector.response import slack_messages as sm

TEXT_LIMIT = 3000


class SlackNotifier:
    """Builds Block Kit messages for each kind of notification and queues them, once per dedupe key."""

    def __init__(self, store: Store, default_channel: str) -> None:
        """Queue into ``store``'s outbox; messages without a channel go to ``default_channel``."""
        self.store = store
        self.default_channel = default_channel

    def notify(
        self, *, dedupe_key: str, channel: str | None, text: str, kind: str, data: dict[str, Any]
    ) -> None:
        """Queue one message (the runner's Notifier port)."""
        if kind == "approval":
            payload = sm.approval_message(
                run_id=data["run_id"], step_index=data["step_index"], step_id=data["step_id"],
                key_id=data["key_id"], summary=data["summary"], requested_by=data["requested_by"],
                approvers=data["approvers"],
            )  # fmt: skip
        elif kind == "escalation":
            payload = sm.escalation_message(
                run_id=data["run_id"], step_index=data["step_index"], step_id=data["step_id"],
                reason=data["reason"], here=True,
            )  # fmt: skip
        else:  # a playbook's own words: its templates may carry attacker-chosen strings, so escape
            safe = sm.truncate(sm.escape(text), TEXT_LIMIT)
            payload = sm.message(safe, [sm.section(safe)])
        enqueue(self.store, dedupe_key=dedupe_key, channel=channel or self.default_channel, payload=payload)

    def incident(self, incident: Incident, alerts: list[Alert], *, escalated_from: Any = None) -> None:
        """A new or escalated incident, once per incident and severity."""
        payload = sm.incident_message(incident, alerts, previous=escalated_from)
        key = f"incident:{incident.incident_id}:{incident.severity.label}"
        enqueue(self.store, dedupe_key=key, channel=self.default_channel, payload=payload)
