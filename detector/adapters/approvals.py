"""Approval steps waiting for a decision, read straight from the store (``GET /v1/approvals``).

One query over ``playbook_steps`` joined to ``playbook_runs`` finds every ``require_approval``
step that waits in a run that waits, however old the run; pages of it come newest run first,
with the total, so a long queue is paged through instead of cut off.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from detector.adapters.store import Store
from detector.adapters.store import tables as t
from detector.domain.runs import Status

APPROVAL_ACTION = "require_approval"


@dataclass(frozen=True, slots=True)
class PendingApproval:
    """One approval step waiting for a decision; ``deadline`` in epoch seconds (None: no timeout)."""

    run_id: str
    playbook: str
    key_id: str
    incident_id: str | None
    requested_by: str
    step_index: int
    step_id: str
    deadline: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def _waiting(*columns: sa.ColumnElement[Any]) -> sa.Select[Any]:
    """``columns`` of the waiting approval steps joined to their runs."""
    runs, steps = t.playbook_runs.c, t.playbook_steps.c
    return (
        sa.select(*columns)
        .select_from(t.playbook_steps.join(t.playbook_runs))
        .where(steps.action == APPROVAL_ACTION, steps.status == Status.WAITING, runs.status == Status.WAITING)
    )


def pending_approvals(store: Store, *, limit: int, offset: int = 0) -> list[PendingApproval]:
    """Waiting approval steps, newest run first (then run id and step, so pages never overlap)."""
    runs, steps = t.playbook_runs.c, t.playbook_steps.c
    columns = (runs.run_id, runs.playbook, runs.params, runs.incident_id, runs.requested_by, steps.step_index,
               steps.step_id, steps.next_attempt_at)  # fmt: skip
    order = (runs.created_at.desc(), runs.run_id, steps.step_index)
    with store.reading() as conn:
        rows = conn.execute(_waiting(*columns).order_by(*order).limit(limit).offset(offset)).all()
    return [_pending(row) for row in rows]


def count_pending_approvals(store: Store) -> int:
    """How many approval steps wait, in all."""
    with store.reading() as conn:
        return int(conn.execute(_waiting(sa.func.count())).scalar_one())


def _pending(row: sa.Row[Any]) -> PendingApproval:
    deadline = None if row.next_attempt_at is None else row.next_attempt_at.timestamp()
    key_id = row.params["context"]["key_id"]
    return PendingApproval(row.run_id, row.playbook, key_id, row.incident_id, row.requested_by,
                           row.step_index, row.step_id, deadline)  # fmt: skip
