"""``/v1/runs`` and ``/v1/approvals``: playbook runs, their steps, pending approvals, and decisions.

Steps are numbered by ``step_index`` (from 0), as ``GET /v1/runs/{id}`` shows them. The one who
requested a run can never approve or deny it (separation of duties: 403).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from detector.adapters import approvals
from detector.api import schemas
from detector.api.deps import Analyst, ApiContext, Ctx, Limit, Offset, Responder, audit, require_audit
from detector.api.problems import problems
from detector.domain.runs import RunError, RunView, Status, is_queued
from detector.domain.users import User

router = APIRouter(tags=["runs"])
DECISION_PROBLEMS = problems(400, 403, 404, 409)
STEP_FIELDS = ("step_index", "step_id", "action", "status", "attempts", "result", "error", "next_attempt_at")


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str | None = Field(None, max_length=2000)


def run_dict(run: RunView) -> dict[str, Any]:
    """JSON form of a run; an enqueued run nobody picked up yet shows as ``queued``."""
    return {
        "run_id": run.run_id,
        "playbook": run.playbook,
        "mode": run.mode,
        "status": Status.QUEUED if is_queued(run) else run.status,
        "incident_id": run.incident_id,
        "key_id": run.key_id,
        "requested_by": run.requested_by,
        "revert_at": run.revert_at,
        "error": run.error,
        "steps": [{k: s[k] for k in STEP_FIELDS} for s in run.steps],
    }


@router.get("/runs", response_model=schemas.RunList, operation_id="list_runs")
def list_runs(
    ctx: Ctx,
    _: Analyst,
    incident: str | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Runs, newest first."""
    return {"items": [run_dict(r) for r in ctx.runner.runs(incident_id=incident, limit=limit)]}


@router.get("/runs/{run_id}", response_model=schemas.Run, operation_id="get_run", responses=problems(404))
def get_run(ctx: Ctx, _: Analyst, run_id: str) -> dict[str, Any]:
    """One run with its steps."""
    return run_dict(_run(ctx, run_id))


@router.get(
    "/approvals",
    response_model=schemas.ApprovalPage,
    operation_id="list_pending_approvals",
    responses=problems(403),
)
def pending_approvals(
    ctx: Ctx,
    _: Responder,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Approval steps waiting in waiting runs, newest run first, paged; ``total`` counts them all."""
    items = approvals.pending_approvals(ctx.store, limit=limit, offset=offset)
    total = approvals.count_pending_approvals(ctx.store)
    return {"items": [a.to_dict() for a in items], "total": total, "limit": limit, "offset": offset}


@router.post(
    "/runs/{run_id}/steps/{step_index}/approve",
    response_model=schemas.Run,
    operation_id="approve_step",
    responses=DECISION_PROBLEMS,
)
def approve(
    ctx: Ctx, user: Responder, run_id: str, step_index: int, body: Decision | None = None
) -> dict[str, Any]:
    """Approve a waiting approval step."""
    return _decide(ctx, user, run_id, step_index, "approve", body)


@router.post(
    "/runs/{run_id}/steps/{step_index}/deny",
    response_model=schemas.Run,
    operation_id="deny_step",
    responses=DECISION_PROBLEMS,
)
def deny(
    ctx: Ctx, user: Responder, run_id: str, step_index: int, body: Decision | None = None
) -> dict[str, Any]:
    """Deny a waiting approval step: the run stops."""
    return _decide(ctx, user, run_id, step_index, "deny", body)


def _decide(
    ctx: ApiContext, user: User, run_id: str, step_index: int, decision: str, body: Decision | None
) -> dict[str, Any]:
    run = _run(ctx, run_id)
    if user.name == run.requested_by:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"{user.name} requested run {run_id} and cannot approve or deny it"
        )
    require_audit(ctx)
    comment = body.comment if body else None
    act = ctx.runner.approve if decision == "approve" else ctx.runner.deny
    try:
        act(run_id, step_index, user, comment)
    except RunError as exc:
        refused = "needs the" in str(exc) or "cannot approve" in str(exc)
        raise HTTPException(
            status.HTTP_403_FORBIDDEN if refused else status.HTTP_409_CONFLICT, str(exc)
        ) from None
    audit(ctx, user, f"api.run_{decision}", run.key_id, {"run_id": run_id, "step_index": step_index})
    return run_dict(ctx.runner.get(run_id))


def _run(ctx: ApiContext, run_id: str) -> RunView:
    try:
        return ctx.runner.get(run_id)
    except RunError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no playbook run {run_id}") from None
