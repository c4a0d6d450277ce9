"""Fakes of the ports, shared by the tests: they keep the contracts the real adapters keep.

``MemoryBackend`` honours ``dry_run`` and refuses a revoke without approval, like the PKCS#11
and AWS KMS backends (``tests/contract`` holds all three to the same assertions);
``MemoryRunStore`` keeps runs the way the SQL repository does, so the runner's state machine is
tested without a database.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from detector.domain.alerts import Alert, Reason, Severity, alert_id_for
from detector.domain.keys import ActionResult, BackendUnavailable, KeyBackendError, KeyInfo, KeyState, Outcome
from detector.domain.runs import ACTIVE, FINISHED_STEP, AuditEntry, RunError, RunView, Status


def make_alert(
    key: str = "k1",
    principal: str | None = "p1",
    start: float = 0.0,
    *,
    detector: str = "volume_spike",
    severity: Severity = Severity.MEDIUM,
    minutes: int = 1,
    score: float = 0.7,
    reasons: list[Reason] | None = None,
    event_ids: list[str] | None = None,
    **extra: Any,
) -> Alert:
    """An alert of ``minutes`` merged windows from ``start``, with a plain volume reason by default."""
    return Alert(
        alert_id=alert_id_for(key, detector, principal, start),
        key_id=key,
        principal=principal,
        detector=detector,
        severity=severity,
        score=score,
        window_start=start + (minutes - 1) * 60.0,
        window_end=start + minutes * 60.0,
        first_window_start=start,
        reasons=reasons if reasons is not None else [Reason("calls", 100.0, 3.0, "100 calls, usually 3")],
        event_ids=event_ids if event_ids is not None else ["e1"],
        **{"count": minutes, **extra},
    )


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Recorder:
    """Notifier and auditor in one: messages by dedupe key, audit records in order."""

    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    audit: list[tuple[str, str, str]] = field(default_factory=list)

    def notify(
        self, *, dedupe_key: str, channel: str | None, text: str, kind: str, data: dict[str, Any]
    ) -> None:
        self.messages.setdefault(dedupe_key, {"text": text, "kind": kind, **data})

    def record(
        self, actor: str, action: str, target: str, details: dict[str, Any], *, conn: object = None
    ) -> None:
        self.audit.append((actor, action, target))


@dataclass
class MemoryBackend:
    """Keys in memory; counts the changes it really makes; ``outage`` fails the next N calls."""

    name: str = "memory"
    keys: tuple[str, ...] = ("k0", "k1", "k2", "k3", "k9")
    disabled: set[str] = field(default_factory=set)
    revoked: set[str] = field(default_factory=set)
    changes: list[tuple[str, str]] = field(default_factory=list)
    outage: int = 0
    any_key: bool = False  # every key id exists (``keys`` is then what the inventory lists)

    def _gate(self) -> None:
        if self.outage:
            self.outage -= 1
            raise BackendUnavailable("token not reachable")

    def _known(self, key_id: str) -> bool:
        return self.any_key or key_id in self.keys

    def _result(self, outcome: Outcome, key_id: str, **detail: Any) -> ActionResult:
        return ActionResult(outcome, key_id, self.name, detail)

    def _info(self, key_id: str) -> KeyInfo:
        state = KeyState.DESTROYED if key_id in self.revoked else (
            KeyState.DISABLED if key_id in self.disabled else KeyState.ENABLED)  # fmt: skip
        uses = ("ENCRYPT", "DECRYPT") if state is KeyState.ENABLED else ()
        return KeyInfo(key_id, self.name, key_id, "AES-256", uses, state)

    def inventory(self) -> list[KeyInfo]:
        self._gate()
        return [self._info(k) for k in self.keys]

    def describe(self, key_id: str) -> KeyInfo | None:
        self._gate()
        return self._info(key_id) if self._known(key_id) else None

    def disable(self, key_id: str, *, dry_run: bool = False) -> ActionResult:
        self._gate()
        if not self._known(key_id):
            return self._result(Outcome.NOT_FOUND, key_id)
        if key_id in self.disabled:
            return self._result(Outcome.ALREADY_DISABLED, key_id)
        if dry_run:
            return self._result(Outcome.DRY_RUN, key_id, would="disable")
        self.disabled.add(key_id)
        self.changes.append(("disable", key_id))
        return self._result(Outcome.DISABLED, key_id)

    def enable(self, key_id: str, *, dry_run: bool = False) -> ActionResult:
        self._gate()
        if not self._known(key_id):
            return self._result(Outcome.NOT_FOUND, key_id)
        if key_id not in self.disabled:
            return self._result(Outcome.ALREADY_ENABLED, key_id)
        if dry_run:
            return self._result(Outcome.DRY_RUN, key_id, would="enable")
        self.disabled.discard(key_id)
        self.changes.append(("enable", key_id))
        return self._result(Outcome.ENABLED, key_id)

    def rotate(self, key_id: str, *, dry_run: bool = False) -> ActionResult:
        self._gate()
        if not self._known(key_id):
            return self._result(Outcome.NOT_FOUND, key_id)
        if dry_run:
            return self._result(Outcome.DRY_RUN, key_id, would="rotate")
        self.changes.append(("rotate", key_id))
        return self._result(Outcome.ROTATED, key_id, successor=f"{key_id}.v2")

    def revoke(
        self, key_id: str, *, approved: bool, backup: bool = True, dry_run: bool = False
    ) -> ActionResult:
        self._gate()
        if not self._known(key_id):
            return self._result(Outcome.NOT_FOUND, key_id)
        if dry_run:
            return self._result(Outcome.DRY_RUN, key_id, would="revoke")
        if not approved:
            raise KeyBackendError("revoking a key needs an approval")
        if key_id in self.revoked:
            return self._result(Outcome.ALREADY_REVOKED, key_id)
        self.revoked.add(key_id)
        self.changes.append(("revoke", key_id))
        return self._result(Outcome.REVOKED, key_id)

    def rollback_revoke(self, key_id: str) -> ActionResult:
        self._gate()
        if not self._known(key_id):
            return self._result(Outcome.NOT_FOUND, key_id)
        if key_id not in self.revoked:
            return self._result(Outcome.REVOKE_CANCELLED, key_id, already=True)
        self.revoked.discard(key_id)
        self.changes.append(("unrevoke", key_id))
        return self._result(Outcome.REVOKE_CANCELLED, key_id)


@dataclass
class Incidents:
    """The incident log a playbook writes on."""

    statuses: list[tuple[str, str]] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)

    def set_incident_status(self, incident_id: str, status: Any, actor: str, note: str | None = None) -> None:
        self.statuses.append((incident_id, str(status)))

    def add_incident_note(self, incident_id: str, actor: str, text: str) -> None:
        self.notes.append((incident_id, text))


@dataclass
class MemoryRunStore:
    """Runs, steps and approvals in dicts; audit entries go to ``auditor`` with the change."""

    auditor: Recorder
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    steps: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    approvals: dict[tuple[str, int], list[tuple[str, str]]] = field(default_factory=dict)

    def _audit(self, audit: AuditEntry | None) -> None:
        if audit is not None:
            self.auditor.record(audit.actor, audit.action, audit.target, audit.details)

    def create(
        self, run: dict[str, Any], steps: Sequence[dict[str, Any]], audit: AuditEntry, now: float
    ) -> bool:
        if run["run_id"] in self.runs:
            return False
        self.runs[run["run_id"]] = {**copy.deepcopy(run), "created_at": now, "revert_at": None, "error": None}
        self.steps[run["run_id"]] = [
            {"next_attempt_at": None, "result": None, "error": None, **s} for s in steps
        ]
        self._audit(audit)
        return True

    def get(self, run_id: str) -> RunView:
        run = self.runs.get(run_id)
        if run is None:
            raise RunError(f"no playbook run {run_id}")
        return RunView(run_id, run["playbook"], run["mode"], run["status"], run["incident_id"],
                       run["requested_by"], run["params"]["context"]["key_id"],
                       copy.deepcopy(self.steps[run_id]), run["revert_at"], run["error"])  # fmt: skip

    def params(self, run_id: str) -> dict[str, Any]:
        return copy.deepcopy(self.runs[run_id]["params"])

    def run_ids(self, *, incident_id: str | None, limit: int) -> list[str]:
        ids = [r for r, run in self.runs.items() if incident_id is None or run["incident_id"] == incident_id]
        return sorted(ids, key=lambda r: -self.runs[r]["created_at"])[:limit]

    def active(self) -> list[str]:
        return [r for r, run in self.runs.items() if run["status"] in ACTIVE]

    def due_for_revert(self, now: float) -> list[str]:
        return [r for r, run in self.runs.items() if run["status"] == Status.COMPLETED
                and run["revert_at"] is not None and run["revert_at"] <= now]  # fmt: skip

    def mark_running(self, run_id: str, index: int, now: float) -> int:
        step = self.steps[run_id][index]
        step.update(status=Status.RUNNING, attempts=step["attempts"] + 1)
        return int(step["attempts"])

    def set_step(
        self, run_id: str, index: int, status: str, now: float, audit: AuditEntry | None = None, **values: Any
    ) -> None:
        step = self.steps[run_id][index]
        step.update(status=status, **copy.deepcopy(values))
        if status in FINISHED_STEP:
            step.setdefault("finished_at", now)
        self._audit(audit)

    def set_run(
        self, run_id: str, status: str, now: float, audit: AuditEntry | None = None, **values: Any
    ) -> None:
        self.runs[run_id].update(status=status, **values)
        self._audit(audit)

    def decisions(self, run_id: str, index: int) -> list[tuple[str, str]]:
        return list(self.approvals.get((run_id, index), []))

    def decide(
        self, run_id: str, index: int, approver: str, decision: str, comment: str | None, now: float,
        audit: AuditEntry,
    ) -> bool:  # fmt: skip
        decided = self.approvals.setdefault((run_id, index), [])
        if any(who == approver for who, _ in decided):
            return False
        decided.append((approver, decision))
        self._audit(audit)
        return True
