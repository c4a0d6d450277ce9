"""The ports the response side talks to; adapters implement them (SQL store, Slack outbox, ledger).

The key backend port is :class:`detector.domain.keys.KeyBackend`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from detector.domain.incidents import IncidentStatus
from detector.domain.runs import AuditEntry, RunView


class Notifier(Protocol):
    """Where messages to people go (the Slack outbox in production)."""

    def notify(
        self, *, dedupe_key: str, channel: str | None, text: str, kind: str, data: dict[str, Any]
    ) -> None:
        """Queue one message; the same ``dedupe_key`` twice sends it once."""


class Auditor(Protocol):
    """The audit ledger."""

    def record(self, actor: str, action: str, target: str, details: dict[str, Any]) -> None:
        """Append one record."""


class IncidentLog(Protocol):
    """What a playbook may write on its incident."""

    def set_incident_status(
        self, incident_id: str, status: IncidentStatus, actor: str, note: str | None = None
    ) -> Any:
        """Move the incident to ``status`` (a KeyWatchError when the move is not allowed)."""

    def add_incident_note(self, incident_id: str, actor: str, text: str) -> Any:
        """Add a note to the incident's timeline."""


class RunStore(Protocol):
    """Where runs, their steps and their approvals persist.

    Every change that comes with an :class:`AuditEntry` commits together with its ledger record:
    after a crash both are there or neither is.
    """

    def create(
        self, run: dict[str, Any], steps: Sequence[dict[str, Any]], audit: AuditEntry, now: float
    ) -> bool:
        """Persist a new run and its pending steps; False (and nothing written) when it exists."""

    def get(self, run_id: str) -> RunView:
        """A run with its steps; :class:`~detector.domain.runs.RunError` when unknown."""

    def params(self, run_id: str) -> dict[str, Any]:
        """What the run was started with: its playbook and context, as stored."""

    def run_ids(self, *, incident_id: str | None, limit: int) -> list[str]:
        """Ids of the newest runs first, of one incident when given."""

    def active(self) -> list[str]:
        """Runs with steps still to take (running, retrying, waiting)."""

    def due_for_revert(self, now: float) -> list[str]:
        """Completed runs whose timed auto-revert has come."""

    def mark_running(self, run_id: str, index: int, now: float) -> int:
        """Mark a step running before it acts; its attempts so far, this one included."""

    def set_step(
        self, run_id: str, index: int, status: str, now: float, audit: AuditEntry | None = None, **values: Any
    ) -> None:
        """Update a step (``next_attempt_at`` in epoch seconds; ``result`` JSON-ready)."""

    def set_run(
        self, run_id: str, status: str, now: float, audit: AuditEntry | None = None, **values: Any
    ) -> None:
        """Update a run (``revert_at`` in epoch seconds)."""

    def decisions(self, run_id: str, index: int) -> list[tuple[str, str]]:
        """(approver, ``approve`` or ``deny``) of an approval step."""

    def decide(
        self, run_id: str, index: int, approver: str, decision: str, comment: str | None, now: float,
        audit: AuditEntry,
    ) -> bool:  # fmt: skip
        """Record one approver's decision; False (nothing written) when they already decided."""
