"""Playbook runs, steps and approvals in the SQL store (the runner's ``RunStore`` port).

A change that comes with an audit entry is written in one transaction with its ledger record.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from detector.adapters.store import tables as t
from detector.adapters.store.store import Store
from detector.domain.runs import ACTIVE, FINISHED_STEP, AuditEntry, RunError, RunView, Status


class TransactionalAuditor(Protocol):
    """An auditor that can append inside a store transaction (the ledger on the same database)."""

    def record(
        self, actor: str, action: str, target: str, details: dict[str, Any], *, conn: Connection | None = None
    ) -> None:
        """Append one record, inside ``conn``'s transaction when given."""


class RunRepository:
    """Runs on ``store``; audit entries through ``auditor`` in the same transactions."""

    def __init__(self, store: Store, auditor: TransactionalAuditor) -> None:
        """Keep runs in ``store`` and their ledger records through ``auditor``."""
        self.store = store
        self.auditor = auditor

    def create(
        self, run: dict[str, Any], steps: Sequence[dict[str, Any]], audit: AuditEntry, now: float
    ) -> bool:
        """Persist a new run and its steps with its ledger record; False when the run exists."""
        at = _dt(now)
        with self.store.writing() as conn:
            runs = t.playbook_runs
            if conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id == run["run_id"])).first():
                return False
            conn.execute(runs.insert().values(**run, created_at=at, updated_at=at))
            for step in steps:
                conn.execute(t.playbook_steps.insert().values(run_id=run["run_id"], **step))
            self._audit(conn, audit)
        return True

    def get(self, run_id: str) -> RunView:
        """A run with its steps; :class:`RunError` when unknown."""
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

    def params(self, run_id: str) -> dict[str, Any]:
        """The playbook and context the run was started with."""
        with self.store.reading() as conn:
            params: dict[str, Any] = conn.execute(
                sa.select(t.playbook_runs.c.params).where(t.playbook_runs.c.run_id == run_id)
            ).scalar_one()
        return params

    def run_ids(self, *, incident_id: str | None, limit: int) -> list[str]:
        """Newest runs first, of one incident when given."""
        q = sa.select(t.playbook_runs.c.run_id).order_by(t.playbook_runs.c.created_at.desc()).limit(limit)
        if incident_id is not None:
            q = q.where(t.playbook_runs.c.incident_id == incident_id)
        with self.store.reading() as conn:
            return list(conn.execute(q).scalars().all())

    def active(self) -> list[str]:
        """Runs with steps still to take."""
        q = sa.select(t.playbook_runs.c.run_id).where(t.playbook_runs.c.status.in_(ACTIVE))
        with self.store.reading() as conn:
            return list(conn.execute(q).scalars().all())

    def due_for_revert(self, now: float) -> list[str]:
        """Completed runs whose timed auto-revert has come."""
        runs = t.playbook_runs.c
        q = sa.select(runs.run_id).where(
            runs.status == Status.COMPLETED, runs.revert_at.is_not(None), runs.revert_at <= _dt(now)
        )
        with self.store.reading() as conn:
            return list(conn.execute(q).scalars().all())

    def mark_running(self, run_id: str, index: int, now: float) -> int:
        """Mark a step running; its attempts, this one included."""
        steps = t.playbook_steps.c
        with self.store.writing() as conn:
            attempts = 1 + int(conn.execute(
                sa.select(steps.attempts).where(steps.run_id == run_id, steps.step_index == index)
            ).scalar_one())  # fmt: skip
            _update_step(conn, run_id, index, status=Status.RUNNING, attempts=attempts, started_at=_dt(now))
        return attempts

    def set_step(
        self, run_id: str, index: int, status: str, now: float, audit: AuditEntry | None = None, **values: Any
    ) -> None:
        """Update a step, with its ledger record when given."""
        if values.get("next_attempt_at") is not None:
            values["next_attempt_at"] = _dt(values["next_attempt_at"])
        if "result" in values:
            values["result"] = json.loads(json.dumps(values["result"], default=str))
        if status in FINISHED_STEP:
            values.setdefault("finished_at", _dt(now))
        with self.store.writing() as conn:
            _update_step(conn, run_id, index, status=status, **values)
            self._audit(conn, audit)

    def set_run(
        self, run_id: str, status: str, now: float, audit: AuditEntry | None = None, **values: Any
    ) -> None:
        """Update a run, with its ledger record when given."""
        if values.get("revert_at") is not None:
            values["revert_at"] = _dt(values["revert_at"])
        with self.store.writing() as conn:
            conn.execute(
                t.playbook_runs.update()
                .where(t.playbook_runs.c.run_id == run_id)
                .values(status=status, updated_at=_dt(now), **values)
            )
            self._audit(conn, audit)

    def decisions(self, run_id: str, index: int) -> list[tuple[str, str]]:
        """(approver, decision) of an approval step."""
        a = t.approvals.c
        q = sa.select(a.approver, a.decision).where(a.run_id == run_id, a.step_index == index)
        with self.store.reading() as conn:
            return [(row.approver, row.decision) for row in conn.execute(q).all()]

    def decide(
        self, run_id: str, index: int, approver: str, decision: str, comment: str | None, now: float,
        audit: AuditEntry,
    ) -> bool:  # fmt: skip
        """Record one decision with its ledger record; False when this approver already decided."""
        a = t.approvals.c
        with self.store.writing() as conn:
            if conn.execute(
                sa.select(a.decision).where(a.run_id == run_id, a.step_index == index, a.approver == approver)
            ).first():
                return False
            row = {"run_id": run_id, "step_index": index, "approver": approver, "decision": decision,
                   "comment": comment, "decided_at": _dt(now)}  # fmt: skip
            conn.execute(t.approvals.insert().values(**row))
            self._audit(conn, audit)
        return True

    def _audit(self, conn: Connection, audit: AuditEntry | None) -> None:
        if audit is not None:
            self.auditor.record(audit.actor, audit.action, audit.target, audit.details, conn=conn)


def _update_step(conn: Connection, run_id: str, index: int, **values: Any) -> None:
    steps = t.playbook_steps.c
    conn.execute(
        t.playbook_steps.update().where(steps.run_id == run_id, steps.step_index == index).values(**values)
    )


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()
