"""The playbook runner: persisted runs that act on keys, ask for approvals, retry and roll back.

Every run and step lives in the store (``playbook_runs``, ``playbook_steps``, ``approvals``), so
a runner that crashes resumes where it stopped: a step is marked running before it acts and done
after, and re-running a step that was running is harmless because every action is idempotent
(a second disable finds the key ``already_disabled``; notifications carry the step's idempotency
key ``<run_id>:<step>`` into the Slack outbox). Backend outages (``BackendUnavailable``) are
retried with exponential backoff; when they persist the step fails and, by default, the run
escalates (a message to people) and waits for ``resume``. Every action taken or approved is
recorded through the auditor, before the step is marked done, so a crash can repeat an audit
record but never lose one.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from detector.adapters.store import Store
from detector.adapters.store import tables as t
from detector.domain.errors import KeyWatchError
from detector.domain.incidents import IncidentStatus
from detector.domain.keys import BackendUnavailable, KeyBackend, KeyBackendError
from detector.domain.users import Role, User
from detector.response.planning import Context, plan, skip_reason, step_args
from detector.response.playbook import ACTIONS, ApprovalArgs, Mode, Playbook

log = logging.getLogger(__name__)

SYSTEM = "keywatch"  # the requester of automatic runs


class RunError(KeyWatchError):
    """A run that cannot do what was asked (unknown run, refused approval, ...)."""


class Notifier(Protocol):
    """Where messages to people go (the Slack outbox in production)."""

    def notify(
        self, *, dedupe_key: str, channel: str | None, text: str, kind: str, data: dict[str, Any]
    ) -> None:
        """Queue one message; the same ``dedupe_key`` twice sends it once."""


class Auditor(Protocol):
    """The audit ledger."""

    def record(
        self, actor: str, action: str, target: str, details: dict[str, Any], *, conn: Connection | None = None
    ) -> None:
        """Append one record (inside ``conn``'s transaction when given)."""


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


@dataclass(frozen=True, slots=True)
class RunView:
    """A run as stored, with its steps."""

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


def _now_dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


class PlaybookRunner:
    """Starts, advances, approves, resumes and rolls back playbook runs."""

    def __init__(
        self,
        store: Store,
        backend_for: Callable[[str], KeyBackend],
        notifier: Notifier,
        auditor: Auditor,
        *,
        retry_base_seconds: float = 0.5,
        retry_max_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Wire the runner to the store, key backends, notifications and the ledger."""
        self.store = store
        self.backend_for = backend_for
        self.notifier = notifier
        self.auditor = auditor
        self.retry_base = retry_base_seconds
        self.retry_max = retry_max_seconds
        self.clock = clock

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
        now = self.clock()
        params = {"context": _context_dict(ctx), "playbook": playbook.model_dump(mode="json", by_alias=True)}
        with self.store.writing() as conn:
            if conn.execute(
                sa.select(t.playbook_runs.c.run_id).where(t.playbook_runs.c.run_id == run_id)
            ).first():
                return run_id
            status = Status.PLANNED if mode is Mode.DRY_RUN else Status.RUNNING
            conn.execute(
                t.playbook_runs.insert().values(
                    run_id=run_id,
                    playbook=playbook.name,
                    playbook_digest=playbook.digest,
                    incident_id=ctx.incident_id,
                    mode=str(mode),
                    status=status,
                    requested_by=requested_by,
                    params=params,
                    created_at=_now_dt(now),
                    updated_at=_now_dt(now),
                )
            )
            for i, step in enumerate(playbook.steps):
                conn.execute(
                    t.playbook_steps.insert().values(
                        run_id=run_id,
                        step_index=i,
                        step_id=step.id,
                        action=step.action,
                        status=Status.PENDING,
                        idempotency_key=f"{run_id}:{i}",
                        attempts=0,
                    )
                )
        self.auditor.record(
            requested_by,
            "playbook_start",
            ctx.key_id,
            {
                "run_id": run_id,
                "playbook": playbook.name,
                "digest": playbook.digest,
                "mode": str(mode),
                "incident_id": ctx.incident_id,
            },
        )
        if mode is Mode.DRY_RUN:
            return run_id
        if advance:
            self.advance(run_id)
        return run_id

    def enqueue(
        self, playbook: Playbook, ctx: Context, mode: Mode, requested_by: str, *, run_id: str | None = None
    ) -> str:
        """Persist a run without executing any step; :meth:`tick` (``keywatch respond``) advances it.

        The run is stored as ``running`` with every step pending, which is what "queued" means
        (:func:`is_queued`); a dry run is only planned.
        """
        return self.start(playbook, ctx, mode, requested_by, run_id=run_id, advance=False)

    # -- advancing ----------------------------------------------------------------------------

    def advance(self, run_id: str) -> str:
        """Run steps until the run waits, retries later, fails or completes; return its status."""
        loaded: tuple[Playbook, Context, Mode] | None = None
        while True:
            run = self.get(run_id)
            if run.status not in (Status.RUNNING, Status.RETRYING, Status.WAITING):
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
            outcome = self._execute(run, playbook, ctx, i)
            if outcome != Status.DONE:
                return self.get(run_id).status

    def _execute(self, run: RunView, playbook: Playbook, ctx: Context, i: int) -> str:
        spec = playbook.steps[i]
        args = step_args(playbook, spec, ctx)
        # Key changes are marked running first (a crash then repeats an idempotent call); steps
        # that change nothing outside the store are simply done again.
        attempts = self._mark_running(run.run_id, i) if ACTIONS[spec.action].changes_keys else 1
        key = f"{run.run_id}:{i}"
        try:
            result = self._act(run, spec.action, args, ctx, key, spec.id)
        except BackendUnavailable as exc:
            return self._retry_or_fail(run, playbook, i, attempts, str(exc))
        except KeyWatchError as exc:
            return self._fail(run, playbook, i, str(exc))
        if result.get("status") == Status.WAITING:
            return Status.WAITING
        audit = (run.requested_by, spec.action, str(args.get("key") or ctx.key_id),
                 {"run_id": run.run_id, "step": spec.id, "idempotency_key": key, **result})  # fmt: skip
        self._set_step(run.run_id, i, Status.DONE, result=result, audit=audit)
        return Status.DONE

    def _act(
        self, run: RunView, action: str, args: dict[str, Any], ctx: Context, key: str, step_id: str
    ) -> dict[str, Any]:
        if action == "notify":
            self.notifier.notify(
                dedupe_key=key,
                channel=args.get("channel"),
                text=args["message"],
                kind="playbook_step",
                data={"run_id": run.run_id, "key_id": ctx.key_id},
            )
            return {"outcome": "queued"}
        if action == "annotate_incident":
            return self._annotate(run, ctx, args)
        if action == "wait":
            return self._wait(run, key, float(args["seconds"]))
        if action == "require_approval":
            self._set_step(
                run.run_id,
                int(key.rsplit(":", 1)[1]),
                Status.WAITING,
                next_attempt_at=self.clock() + float(args["timeout_minutes"]) * 60,
            )
            self._set_run(run.run_id, Status.WAITING)
            self.notifier.notify(
                dedupe_key=key,
                channel=None,
                text=f"Approval needed: {run.playbook} on "
                f"{ctx.key_id} ({args['approvers']} × {args['role']})",
                kind="approval",
                data={
                    "run_id": run.run_id,
                    "step_index": int(key.rsplit(":", 1)[1]),
                    "step_id": step_id,
                    "key_id": ctx.key_id,
                    "requested_by": run.requested_by,
                    "approvers": int(args["approvers"]),
                    "summary": f"Playbook {run.playbook} ({run.mode}) waits for {args['approvers']} "
                    f"approval(s) by a {args['role']} before it goes on.",
                },
            )
            return {"status": Status.WAITING}
        if action == "webhook":
            raise KeyBackendError("webhook steps are validated but not executed by this release")
        backend = self.backend_for(str(args["key"]))
        key_id = str(args["key"])
        if action == "disable_key":
            res = backend.disable(key_id)
        elif action == "enable_key":
            res = backend.enable(key_id)
        elif action == "rotate_key":
            res = backend.rotate(key_id)
        elif action == "revoke_key":
            res = backend.revoke(key_id, approved=True, backup=bool(args.get("backup", True)))
        else:  # pragma: no cover - the playbook validator knows every action
            raise RunError(f"unknown action {action}")
        return {
            "outcome": str(res.outcome),
            "backend": res.backend,
            "key_id": res.key_id,
            "detail": res.detail,
        }

    def _annotate(self, run: RunView, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        if ctx.incident_id is None:
            return {"outcome": "no incident"}
        actor = f"playbook:{run.playbook}"
        if args.get("status"):
            try:
                self.store.set_incident_status(
                    ctx.incident_id, IncidentStatus(args["status"]), actor, args["note"]
                )
                return {"outcome": f"incident {args['status']}"}
            except KeyWatchError as exc:  # e.g. already resolved: keep the note at least
                log.info("incident %s status unchanged: %s", ctx.incident_id, exc)
        self.store.add_incident_note(ctx.incident_id, actor, args["note"])
        return {"outcome": "noted"}

    def _wait(self, run: RunView, key: str, seconds: float) -> dict[str, Any]:
        i = int(key.rsplit(":", 1)[1])
        step = run.steps[i]
        if step["next_attempt_at"] is None:
            self._set_step(run.run_id, i, Status.RETRYING, next_attempt_at=self.clock() + seconds)
            return {"status": Status.WAITING}
        if step["next_attempt_at"] > self.clock():
            return {"status": Status.WAITING}
        return {"outcome": "waited", "seconds": seconds}

    def _retry_or_fail(self, run: RunView, playbook: Playbook, i: int, attempts: int, error: str) -> str:
        spec = playbook.steps[i]
        if attempts < spec.retry.attempts:
            delay = min(spec.retry.backoff_seconds * 2 ** (attempts - 1), self.retry_max)
            self._set_step(run.run_id, i, Status.RETRYING, error=error, next_attempt_at=self.clock() + delay)
            self._set_run(run.run_id, Status.RETRYING)
            log.warning(
                "run %s step %s: backend unavailable (%s); retry %d in %.1f s",
                run.run_id,
                spec.id,
                error,
                attempts,
                delay,
            )
            return Status.RETRYING
        return self._fail(run, playbook, i, f"gave up after {attempts} attempts: {error}")

    def _fail(self, run: RunView, playbook: Playbook, i: int, error: str) -> str:
        spec = playbook.steps[i]
        self._set_step(run.run_id, i, Status.FAILED, error=error)
        self.auditor.record(
            SYSTEM, "step_failed", run.key_id, {"run_id": run.run_id, "step": spec.id, "error": error}
        )
        if spec.on_failure == "continue":
            self._set_step(run.run_id, i, Status.SKIPPED, error=error)
            return Status.DONE
        if spec.on_failure == "escalate":
            self.notifier.notify(
                dedupe_key=f"{run.run_id}:{i}:escalation:{self._attempts(run.run_id, i)}",
                channel=None,
                text=f"ESCALATION: playbook {run.playbook} step {spec.id} on {run.key_id} failed: {error}",
                kind="escalation",
                data={
                    "run_id": run.run_id,
                    "step_index": i,
                    "step_id": spec.id,
                    "key_id": run.key_id,
                    "reason": error,
                },
            )
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
        self._set_run(run.run_id, Status.COMPLETED, revert_at=revert_at)
        self.auditor.record(
            run.requested_by, "playbook_end", run.key_id, {"run_id": run.run_id, "status": Status.COMPLETED}
        )
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
        args = playbook.steps[i].args()
        assert isinstance(args, ApprovalArgs)  # noqa: S101 - the action says so
        if user.name == run.requested_by:
            raise RunError(f"{user.name} requested this run and cannot approve or deny it")
        if user.role < Role(args.role):
            raise RunError(f"approving this step needs the {args.role} role; {user.name} is {user.role}")
        with self.store.writing() as conn:
            exists = conn.execute(
                sa.select(t.approvals.c.decision).where(
                    t.approvals.c.run_id == run_id,
                    t.approvals.c.step_index == i,
                    t.approvals.c.approver == user.name,
                )
            ).first()
            if exists:
                raise RunError(f"{user.name} already decided on step {i} of run {run_id}")
            conn.execute(
                t.approvals.insert().values(
                    run_id=run_id,
                    step_index=i,
                    approver=user.name,
                    decision=decision,
                    comment=comment,
                    decided_at=_now_dt(self.clock()),
                )
            )
        self.auditor.record(
            user.name,
            "approval" if decision == "approve" else "denial",
            run.key_id,
            {"run_id": run_id, "step": playbook.steps[i].id, "comment": comment},
        )
        return self.advance(run_id)

    def _approval_settled(self, run: RunView, i: int, deadline: float | None) -> bool:
        """Close an approval step that has enough approvals, a denial, or ran out of time."""
        with self.store.reading() as conn:
            rows = conn.execute(
                sa.select(t.approvals.c.approver, t.approvals.c.decision).where(
                    t.approvals.c.run_id == run.run_id, t.approvals.c.step_index == i
                )
            ).all()
        playbook, _, _ = self._loaded(run)
        args = playbook.steps[i].args()
        assert isinstance(args, ApprovalArgs)  # noqa: S101 - the action says so
        denied = [r.approver for r in rows if r.decision == "deny"]
        approvers = sorted(r.approver for r in rows if r.decision == "approve")
        if denied:
            self._set_step(run.run_id, i, Status.FAILED, error=f"denied by {denied[0]}")
            for s in run.steps[i + 1 :]:
                self._set_step(run.run_id, s["step_index"], Status.SKIPPED, result={"skipped": "run denied"})
            self._set_run(run.run_id, Status.DENIED, error=f"denied by {denied[0]}")
            self.auditor.record(
                SYSTEM, "playbook_end", run.key_id, {"run_id": run.run_id, "status": "denied"}
            )
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
        """Retry an escalated or failed run from its failed step (the outage is over)."""
        run = self.get(run_id)
        if run.status not in (Status.ESCALATED, Status.FAILED):
            raise RunError(f"run {run_id} is {run.status}; only escalated or failed runs resume")
        failed = [s for s in run.steps if s["status"] == Status.FAILED]
        for s in failed:
            self._set_step(run_id, s["step_index"], Status.PENDING, attempts=0, error=None)
        self._set_run(run_id, Status.RUNNING, error=None)
        self.auditor.record(user, "playbook_resume", run.key_id, {"run_id": run_id})
        return self.advance(run_id)

    def tick(self) -> list[str]:
        """Advance every run whose retry, wait or approval deadline has come; revert due containments."""
        now = self.clock()
        with self.store.reading() as conn:
            due = (
                conn.execute(
                    sa.select(t.playbook_runs.c.run_id).where(
                        t.playbook_runs.c.status.in_([Status.RUNNING, Status.RETRYING, Status.WAITING])
                    )
                )
                .scalars()
                .all()
            )
            revert = (
                conn.execute(
                    sa.select(t.playbook_runs.c.run_id).where(
                        t.playbook_runs.c.status == Status.COMPLETED,
                        t.playbook_runs.c.revert_at.is_not(None),
                        t.playbook_runs.c.revert_at <= _now_dt(now),
                    )
                )
                .scalars()
                .all()
            )
        for run_id in due:
            self.advance(run_id)
        for run_id in revert:
            self.rollback(run_id, SYSTEM, reason="timed auto-revert")
        return list(due) + list(revert)

    def keep(self, run_id: str, user: str) -> None:
        """Cancel a run's timed auto-revert: a person decided the containment stays."""
        self._set_run(run_id, self.get(run_id).status, revert_at=None)
        self.auditor.record(user, "containment_kept", self.get(run_id).key_id, {"run_id": run_id})

    def rollback(self, run_id: str, user: str, reason: str = "requested") -> str:
        """Undo what the run changed on keys, newest first (re-enable what it disabled)."""
        run = self.get(run_id)
        if run.status == Status.ROLLED_BACK:
            return run.status
        playbook, ctx, _ = self._loaded(run)
        for s in reversed(run.steps):
            if s["status"] != Status.DONE or not ACTIONS[s["action"]].changes_keys:
                continue
            args = step_args(playbook, playbook.steps[s["step_index"]], ctx)
            key_id = str(args["key"])
            backend = self.backend_for(key_id)
            if s["action"] == "disable_key":
                res = backend.enable(key_id)
            elif s["action"] == "revoke_key":
                res = backend.rollback_revoke(key_id)
            else:
                continue  # rotation and enabling are not undone
            self.auditor.record(
                user,
                f"rollback_{s['action']}",
                key_id,
                {"run_id": run_id, "step": s["step_id"], "outcome": str(res.outcome), "reason": reason},
            )
            self._set_step(run_id, s["step_index"], Status.ROLLED_BACK, result={"rollback": str(res.outcome)})
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
        with self.store.reading() as conn:
            row = conn.execute(sa.select(t.playbook_runs).where(t.playbook_runs.c.run_id == run_id)).first()
            if row is None:
                raise RunError(f"no playbook run {run_id}")
            steps = (
                conn.execute(
                    sa.select(t.playbook_steps)
                    .where(t.playbook_steps.c.run_id == run_id)
                    .order_by(t.playbook_steps.c.step_index)
                )
                .mappings()
                .all()
            )
        return RunView(
            run_id=row.run_id,
            playbook=row.playbook,
            mode=row.mode,
            status=row.status,
            incident_id=row.incident_id,
            requested_by=row.requested_by,
            key_id=row.params["context"]["key_id"],
            steps=[{**dict(s), "next_attempt_at": _ts(s["next_attempt_at"])} for s in steps],
            revert_at=_ts(row.revert_at),
            error=row.error,
        )

    def runs(self, *, incident_id: str | None = None, limit: int = 100) -> list[RunView]:
        """Newest runs first."""
        q = sa.select(t.playbook_runs.c.run_id).order_by(t.playbook_runs.c.created_at.desc()).limit(limit)
        if incident_id is not None:
            q = q.where(t.playbook_runs.c.incident_id == incident_id)
        with self.store.reading() as conn:
            ids = conn.execute(q).scalars().all()
        return [self.get(i) for i in ids]

    def _loaded(self, run: RunView) -> tuple[Playbook, Context, Mode]:
        with self.store.reading() as conn:
            params = conn.execute(
                sa.select(t.playbook_runs.c.params).where(t.playbook_runs.c.run_id == run.run_id)
            ).scalar_one()
        playbook = Playbook.model_validate(params["playbook"])
        fields: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in params["context"].items()
        }
        ctx = Context(**fields)
        return playbook, ctx, Mode(run.mode)

    def plan_for(self, playbook: Playbook, ctx: Context, mode: Mode) -> list[str]:
        """The plan in plain words (what ``dry-run`` prints)."""
        return plan(playbook, ctx, mode).lines()

    # -- writing ----------------------------------------------------------------------------------

    def _mark_running(self, run_id: str, i: int) -> int:
        with self.store.writing() as conn:
            attempts = (
                int(
                    conn.execute(
                        sa.select(t.playbook_steps.c.attempts).where(
                            t.playbook_steps.c.run_id == run_id, t.playbook_steps.c.step_index == i
                        )
                    ).scalar_one()
                )
                + 1
            )
            _update_step(
                conn, run_id, i, status=Status.RUNNING, attempts=attempts, started_at=_now_dt(self.clock())
            )
        return attempts

    def _attempts(self, run_id: str, i: int) -> int:
        return int(self.get(run_id).steps[i]["attempts"])

    def _set_step(
        self,
        run_id: str,
        i: int,
        status: str,
        *,
        audit: tuple[str, str, str, dict[str, Any]] | None = None,
        **values: Any,
    ) -> None:
        """Update a step; ``audit`` is recorded in the same transaction (the record and the state agree)."""
        if "next_attempt_at" in values and values["next_attempt_at"] is not None:
            values["next_attempt_at"] = _now_dt(values["next_attempt_at"])
        if "result" in values:
            values["result"] = json.loads(json.dumps(values["result"], default=str))
        if status in (Status.DONE, Status.FAILED, Status.SKIPPED, Status.ROLLED_BACK):
            values.setdefault("finished_at", _now_dt(self.clock()))
        with self.store.writing() as conn:
            _update_step(conn, run_id, i, status=status, **values)
            if audit is not None:
                self.auditor.record(*audit, conn=conn)

    def _set_run(self, run_id: str, status: str, **values: Any) -> None:
        if "revert_at" in values and values["revert_at"] is not None:
            values["revert_at"] = _now_dt(values["revert_at"])
        with self.store.writing() as conn:
            conn.execute(
                t.playbook_runs.update()
                .where(t.playbook_runs.c.run_id == run_id)
                .values(status=status, updated_at=_now_dt(self.clock()), **values)
            )


def is_queued(run: RunView) -> bool:
    """A run enqueued and not yet picked up: running, no step started."""
    return run.status == Status.RUNNING and all(
        s["status"] == Status.PENDING and not s["attempts"] for s in run.steps
    )


def _update_step(conn: Connection, run_id: str, i: int, **values: Any) -> None:
    conn.execute(
        t.playbook_steps.update()
        .where(t.playbook_steps.c.run_id == run_id, t.playbook_steps.c.step_index == i)
        .values(**values)
    )


def _context_dict(ctx: Context) -> dict[str, Any]:
    return {
        f: (list(v) if isinstance(v, tuple) else v)
        for f, v in ((name, getattr(ctx, name)) for name in Context.__slots__)
    }


def with_incident(ctx: Context, incident_id: str) -> Context:
    """The same context attached to an incident."""
    return replace(ctx, incident_id=incident_id)
