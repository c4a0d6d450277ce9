"""Playbook runs as the store keeps them: statuses, a run with its steps, and the run's errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from detector.domain.errors import KeyWatchError

SYSTEM = "keywatch"  # the requester of automatic runs


class RunError(KeyWatchError):
    """A run that cannot do what was asked (unknown run, refused approval, ...)."""


class Status:
    """Run and step statuses (strings in the store)."""

    RUNNING, WAITING, RETRYING, COMPLETED = "running", "waiting", "retrying", "completed"
    FAILED, ESCALATED, DENIED, ROLLED_BACK, PLANNED = (
        "failed",
        "escalated",
        "denied",
        "rolled_back",
        "planned",
    )
    PENDING, DONE, SKIPPED = "pending", "done", "skipped"
    QUEUED = "queued"  # shown for an enqueued run nobody picked up yet (is_queued); never stored


ACTIVE = (Status.RUNNING, Status.RETRYING, Status.WAITING)  # runs that still have steps to take
FINISHED_STEP = (Status.DONE, Status.FAILED, Status.SKIPPED, Status.ROLLED_BACK)


@dataclass(frozen=True, slots=True)
class RunView:
    """A run as stored, with its steps (``next_attempt_at`` in epoch seconds)."""

    run_id: str
    playbook: str
    mode: str
    status: str
    incident_id: str | None
    requested_by: str
    key_id: str
    steps: list[dict[str, Any]]
    revert_at: float | None
    error: str | None


def is_queued(run: RunView) -> bool:
    """A run enqueued and not yet picked up: running, no step started."""
    return run.status == Status.RUNNING and all(
        s["status"] == Status.PENDING and not s["attempts"] for s in run.steps
    )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One record for the audit ledger: who did what to which target, and the details."""

    actor: str
    action: str
    target: str
    details: dict[str, Any]
