"""The playbook runner: persisted runs that act on keys, ask for approvals, retry and roll back (pure).

Every run and step lives in a :class:`~detector.domain.ports.RunStore`, so a runner that crashes
resumes where it stopped: a step that changes a key is marked running before it acts and done
after, and re-running a step that was running is harmless because every action is idempotent
(a second disable finds the key ``already_disabled``; notifications carry the step's idempotency
key ``<run_id>:<index>`` into the outbox). Backend outages (``BackendUnavailable``) are retried
with exponential backoff; when they persist the step fails and, by default, the run escalates (a
message to people) and waits for ``resume``. A step's ledger record commits with the step's
state, so after a crash both are there or neither is.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any

from detector.domain.errors import KeyWatchError
from detector.domain.keys import BackendUnavailable, KeyBackend
from detector.domain.ports import Auditor, IncidentLog, Notifier, RunStore
from detector.domain.runs import ACTIVE, SYSTEM, AuditEntry, RunError, RunView, Status
from detector.domain.users import Role, User
from detector.response.actions import ACTIONS, ApprovalArgs, Done, Ports, StepCall
from detector.response.planning import Context, plan, skip_reason, step_args
from detector.response.playbook import Mode, Playbook

log = logging.getLogger(__name__)


class PlaybookRunner:
    """Starts, advances, approves, resumes and rolls back playbook runs."""

    def __init__(
        self,
        runs: RunStore,
        backend_for: Callable[[str], KeyBackend],
        notifier: Notifier,
        auditor: Auditor,
        incidents: IncidentLog,
        *,
        retry_base_seconds: float = 0.5,
        retry_max_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Wire the runner to its runs, key backends, notifications, ledger and incidents."""
        self.runs_store = runs
        self.backend_for = backend_for
        self.notifier = notifier
        self.auditor = auditor
        self.retry_base = retry_base_seconds
        self.retry_max = retry_max_seconds
        self.clock = clock
        self.ports = Ports(backend_for, notifier, incidents, clock)

    # -- starting -----------------------------------------------------------------------------

    def start(
        self,
        playbook: Playbook,
        ctx: Context,
        mode: Mode,
        requested_by: str,
        *,
        run_id: str | None = None,
        advance: bool = True,
    ) -> str:
        """Persist a new run (idempotent for a given ``run_id``) and advance it as far as it goes."""
        run_id = run_id or uuid.uuid4().hex
        run = {
            "run_id": run_id,
            "playbook": playbook.name,
            "playbook_digest": playbook.digest,
            "incident_id": ctx.incident_id,
            "mode": str(mode),
            "status": Status.PLANNED if mode is Mode.DRY_RUN else Status.RUNNING,
            "requested_by": requested_by,
            "params": {
                "context": context_dict(ctx),
                "playbook": playbook.model_dump(mode="json", by_alias=True),
            },
        }
        steps = [{"step_index": i, "step_id": step.id, "action": step.action, "status": Status.PENDING,
                  "idempotency_key": f"{run_id}:{i}", "attempts": 0}
                 for i, step in enumerate(playbook.steps)]  # fmt: skip
        details = {"run_id": run_id, "playbook": playbook.name, "digest": playbook.digest, "mode": str(mode),
                   "incident_id": ctx.incident_id}  # fmt: skip
        audit = AuditEntry(requested_by, "playbook_start", ctx.key_id, details)
        if not self.runs_store.create(run, steps, audit, self.clock()):
            return run_id
        if mode is not Mode.DRY_RUN and advance:
            self.advance(run_id)
        return run_id

    def enqueue(
        self, playbook: Playbook, ctx: Context, mode: Mode, requested_by: str, *, run_id: str | None = None
    ) -> str:
        """Persist a run without executing any step; :meth:`tick` (``keywatch respond``) advances it.

        The run is stored as ``running`` with every step pending, which is what "queued" means
        (:func:`~detector.domain.runs.is_queued`); a dry run is only planned.
        """
        return self.start(playbook, ctx, mode, requested_by, run_id=run_id, advance=False)

    # -- advancing ----------------------------------------------------------------------------

    def advance(self, run_id: str) -> str:
        """Run steps until the run waits, retries later, fails or completes; return its status."""
        loaded: tuple[Playbook, Context, Mode] | None = None
        while True:
            run = self.get(run_id)
            if run.status not in ACTIVE:
                return run.status
            loaded = loaded or self._loaded(run)
            playbook, ctx, mode = loaded
            step = next((s for s in run.steps if s["status"] not in (Status.DONE, Status.SKIPPED)), None)
            if step is None:
                return self._complete(run, playbook)
            i = step["step_index"]
            spec = playbook.steps[i]
            if step["status"] in (Status.WAITING, Status.RETRYING):
                due = step["next_attempt_at"]
                if step["status"] == Status.WAITING and spec.action == "require_approval":
                    if not self._approval_settled(run, i, due):
                        return self.get(run_id).status
                    continue
                if due is not None and due > self.clock():
                    return run.status
            why = skip_reason(playbook, spec, ctx, mode)
            if why is not None:
                self._set_step(run_id, i, Status.SKIPPED, result={"skipped": why})
                continue
            if self._execute(run, playbook, ctx, i) != Status.DONE:
                return self.get(run_id).status

    def _execute(self, run: RunView, playbook: Playbook, ctx: Context, i: int) -> str:
        spec = playbook.steps[i]
        action = ACTIONS[spec.action]
        args = step_args(playbook, spec, ctx)
        # Key changes are marked running first (a crash then repeats an idempotent call); steps
        # that change nothing outside the store are simply done again.
        attempts = self.runs_store.mark_running(run.run_id, i, self.clock()) if action.changes_keys else 1
        idempotency_key = f"{run.run_id}:{i}"
        call = StepCall(run, i, spec.id, idempotency_key, args, ctx.key_id, ctx.incident_id,
                        run.steps[i]["next_attempt_at"], self.ports)  # fmt: skip
        try:
            outcome = action.perform(call)
        except BackendUnavailable as exc:
            return self._retry_or_fail(run, playbook, i, attempts, str(exc))
        except KeyWatchError as exc:
            return self._fail(run, playbook, i, str(exc))
        if not isinstance(outcome, Done):
            if outcome.step_status is not None:
                self._set_step(run.run_id, i, outcome.step_status, next_attempt_at=outcome.until)
            if outcome.run_status is not None:
                self._set_run(run.run_id, outcome.run_status)
            return Status.WAITING
        details = {
            "run_id": run.run_id,
            "step": spec.id,
            "idempotency_key": idempotency_key,
            **outcome.result,
        }
        audit = AuditEntry(run.requested_by, spec.action, str(args.get("key") or ctx.key_id), details)
        self._set_step(run.run_id, i, Status.DONE, result=outcome.result, audit=audit)
        return Status.DONE

    def _retry_or_fail(self, run: RunView, playbook: Playbook, i: int, attempts: int, error: str) -> str:
        spec = playbook.steps[i]
        if attempts < spec.retry.attempts:
            delay = min(spec.retry.backoff_seconds * 2 ** (attempts - 1), self.retry_max)
            self._set_step(run.run_id, i, Status.RETRYING, error=error, next_attempt_at=self.clock() + delay)
            self._set_run(run.run_id, Status.RETRYING)
            log.warning("run %s step %s: backend unavailable (%s); retry %d in %.1f s",
                        run.run_id, spec.id, error, attempts, delay)  # fmt: skip
            return Status.RETRYING
        return self._fail(run, playbook, i, f"gave up after {attempts} attempts: {error}")

    def _fail(self, run: RunView, playbook: Playbook, i: int, error: str) -> str:
        spec = playbook.steps[i]
        audit = AuditEntry(
            SYSTEM, "step_failed", run.key_id, {"run_id": run.run_id, "step": spec.id, "error": error}
        )
        self._set_step(run.run_id, i, Status.FAILED, error=error, audit=audit)
        if spec.on_failure == "continue":
            self._set_step(run.run_id, i, Status.SKIPPED, error=error)
            return Status.DONE
        if spec.on_failure == "escalate":
            self.notifier.notify(
                dedupe_key=f"{run.run_id}:{i}:escalation:{self.get(run.run_id).steps[i]['attempts']}",
                channel=None,
                text=f"ESCALATION: playbook {run.playbook} step {spec.id} on {run.key_id} failed: {error}",
                kind="escalation",
                data={"run_id": run.run_id, "step_index": i, "step_id": spec.id, "key_id": run.key_id,
                      "reason": error},
            )  # fmt: skip
            self._set_run(run.run_id, Status.ESCALATED, error=error)
            return Status.ESCALATED
        self._set_run(run.run_id, Status.FAILED, error=error)
        return Status.FAILED

    def _complete(self, run: RunView, playbook: Playbook) -> str:
        revert_at = None
        contained = any(s["action"] == "disable_key" and s["status"] == Status.DONE for s in run.steps)
        approved = any(s["action"] == "require_approval" and s["status"] == Status.DONE for s in run.steps)
        if playbook.auto_revert_minutes and contained and not approved:
            revert_at = self.clock() + playbook.auto_revert_minutes * 60
        audit = AuditEntry(run.requested_by, "playbook_end", run.key_id,
                           {"run_id": run.run_id, "status": Status.COMPLETED})  # fmt: skip
        self._set_run(run.run_id, Status.COMPLETED, audit=audit, revert_at=revert_at)
        return Status.COMPLETED

    # -- approvals ----------------------------------------------------------------------------

    def approve(self, run_id: str, step_index: int, user: User, comment: str | None = None) -> str:
        """Record an approval; the requester can never approve their own run."""
        return self._decide(run_id, step_index, user, "approve", comment)

    def deny(self, run_id: str, step_index: int, user: User, comment: str | None = None) -> str:
        """Record a denial: the run stops and its remaining steps are skipped."""
        return self._decide(run_id, step_index, user, "deny", comment)

    def _decide(self, run_id: str, i: int, user: User, decision: str, comment: str | None) -> str:
        run = self.get(run_id)
        playbook, _, _ = self._loaded(run)
        if not 0 <= i < len(run.steps) or run.steps[i]["action"] != "require_approval":
            raise RunError(f"step {i} of run {run_id} is not an approval step")
        if run.steps[i]["status"] != Status.WAITING:
            raise RunError(f"step {i} of run {run_id} is not waiting for approval ({run.steps[i]['status']})")
        args = _approval_args(playbook, i)
        if user.name == run.requested_by:
            raise RunError(f"{user.name} requested this run and cannot approve or deny it")
        if user.role < Role(args.role):
            raise RunError(f"approving this step needs the {args.role} role; {user.name} is {user.role}")
        audit = AuditEntry(user.name, "approval" if decision == "approve" else "denial", run.key_id,
                           {"run_id": run_id, "step": playbook.steps[i].id, "comment": comment})  # fmt: skip
        if not self.runs_store.decide(run_id, i, user.name, decision, comment, self.clock(), audit):
            raise RunError(f"{user.name} already decided on step {i} of run {run_id}")
        return self.advance(run_id)

    def _approval_settled(self, run: RunView, i: int, deadline: float | None) -> bool:
        """Close an approval step that has enough approvals, a denial, or ran out of time."""
        decisions = self.runs_store.decisions(run.run_id, i)
        playbook, _, _ = self._loaded(run)
        args = _approval_args(playbook, i)
        denied = [who for who, decision in decisions if decision == "deny"]
        approvers = sorted(who for who, decision in decisions if decision == "approve")
        if denied:
            error = f"denied by {denied[0]}"
            self._set_step(run.run_id, i, Status.FAILED, error=error)
            for s in run.steps[i + 1 :]:
                self._set_step(run.run_id, s["step_index"], Status.SKIPPED, result={"skipped": "run denied"})
            audit = AuditEntry(SYSTEM, "playbook_end", run.key_id, {"run_id": run.run_id, "status": "denied"})
            self._set_run(run.run_id, Status.DENIED, audit=audit, error=error)
            return False
        if len(approvers) >= args.approvers:
            self._set_step(run.run_id, i, Status.DONE, result={"approved_by": approvers})
            self._set_run(run.run_id, Status.RUNNING)
            return True
        if deadline is not None and deadline <= self.clock():
            return self._fail(run, playbook, i, "approval timed out") == Status.DONE
        return False

    # -- resume, tick, rollback -----------------------------------------------------------------

    def resume(self, run_id: str, user: str) -> str:
        """Retry an escalated or failed run from its failed step (the outage is over), or carry on
        a run whose runner was killed midway (its interrupted step is repeated: actions are idempotent)."""
        run = self.get(run_id)
        if run.status not in (Status.ESCALATED, Status.FAILED, *ACTIVE):
            raise RunError(f"run {run_id} is {run.status}; only escalated, failed or unfinished runs resume")
        for s in run.steps:
            if s["status"] == Status.FAILED:
                self._set_step(run_id, s["step_index"], Status.PENDING, attempts=0, error=None)
        audit = AuditEntry(user, "playbook_resume", run.key_id, {"run_id": run_id})
        self._set_run(run_id, Status.RUNNING, audit=audit, error=None)
        return self.advance(run_id)

    def tick(self) -> list[str]:
        """Advance every run whose retry, wait or approval deadline has come; revert due containments."""
        due = self.runs_store.active()
        revert = self.runs_store.due_for_revert(self.clock())
        for run_id in due:
            self.advance(run_id)
        for run_id in revert:
            self.rollback(run_id, SYSTEM, reason="timed auto-revert")
        return due + revert

    def keep(self, run_id: str, user: str) -> None:
        """Cancel a run's timed auto-revert: a person decided the containment stays."""
        run = self.get(run_id)
        audit = AuditEntry(user, "containment_kept", run.key_id, {"run_id": run_id})
        self._set_run(run_id, run.status, audit=audit, revert_at=None)

    def rollback(self, run_id: str, user: str, reason: str = "requested") -> str:
        """Undo what the run changed on keys, newest first (re-enable what it disabled)."""
        run = self.get(run_id)
        if run.status == Status.ROLLED_BACK:
            return run.status
        playbook, ctx, _ = self._loaded(run)
        for s in reversed(run.steps):
            undo = ACTIONS[s["action"]].undo
            if s["status"] != Status.DONE or undo is None:
                continue  # rotation and enabling are not undone
            key_id = str(step_args(playbook, playbook.steps[s["step_index"]], ctx)["key"])
            res = undo(self.backend_for(key_id), key_id)
            audit = AuditEntry(user, f"rollback_{s['action']}", key_id,
                               {"run_id": run_id, "step": s["step_id"], "outcome": str(res.outcome),
                                "reason": reason})  # fmt: skip
            self._set_step(run_id, s["step_index"], Status.ROLLED_BACK, audit=audit,
                           result={"rollback": str(res.outcome)})  # fmt: skip
        self._set_run(run_id, Status.ROLLED_BACK, revert_at=None)
        self.notifier.notify(
            dedupe_key=f"{run_id}:rollback",
            channel=None,
            text=f"Playbook {run.playbook} on {run.key_id} rolled back ({reason}) by {user}",
            kind="playbook_step",
            data={"run_id": run_id, "key_id": run.key_id},
        )
        return Status.ROLLED_BACK

    # -- reading --------------------------------------------------------------------------------

    def get(self, run_id: str) -> RunView:
        """A run and its steps; :class:`RunError` when unknown."""
        return self.runs_store.get(run_id)

    def runs(self, *, incident_id: str | None = None, limit: int = 100) -> list[RunView]:
        """Newest runs first."""
        return [self.get(i) for i in self.runs_store.run_ids(incident_id=incident_id, limit=limit)]

    def plan_for(self, playbook: Playbook, ctx: Context, mode: Mode) -> list[str]:
        """The plan in plain words (what ``dry-run`` prints)."""
        return plan(playbook, ctx, mode).lines()

    def _loaded(self, run: RunView) -> tuple[Playbook, Context, Mode]:
        params = self.runs_store.params(run.run_id)
        playbook = Playbook.model_validate(params["playbook"])
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in params["context"].items()
        }
        return playbook, Context(**values), Mode(run.mode)

    # -- writing ----------------------------------------------------------------------------------

    def _set_step(
        self, run_id: str, i: int, status: str, *, audit: AuditEntry | None = None, **values: Any
    ) -> None:
        self.runs_store.set_step(run_id, i, status, self.clock(), audit, **values)

    def _set_run(self, run_id: str, status: str, *, audit: AuditEntry | None = None, **values: Any) -> None:
        self.runs_store.set_run(run_id, status, self.clock(), audit, **values)


def _approval_args(playbook: Playbook, i: int) -> ApprovalArgs:
    args = playbook.steps[i].args()
    if not isinstance(args, ApprovalArgs):
        raise RunError(f"step {i} of playbook {playbook.name} is not an approval step")
    return args


def context_dict(ctx: Context) -> dict[str, Any]:
    """A context as stored with its run (tuples as lists)."""
    return {f.name: (list(v) if isinstance(v := getattr(ctx, f.name), tuple) else v) for f in fields(ctx)}


def with_incident(ctx: Context, incident_id: str) -> Context:
    """The same context attached to an incident."""
    return replace(ctx, incident_id=incident_id)
