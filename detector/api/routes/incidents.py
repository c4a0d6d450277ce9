"""``/v1/incidents``: list, read with timeline and evidence, change status, assign, note, start runs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, ConfigDict, Field

from detector.adapters.responder import incident_context
from detector.api import schemas
from detector.api.auth import forbidden_unless
from detector.api.deps import Analyst, ApiContext, Ctx, Limit, Offset, Responder, audit, require_audit
from detector.api.problems import problems
from detector.domain.incidents import Incident, IncidentStatus
from detector.domain.users import Role
from detector.response.playbook import Mode, Playbook

router = APIRouter(prefix="/incidents", tags=["incidents"])
ANALYST_STATUSES = frozenset({IncidentStatus.ACKNOWLEDGED})  # analysts may only acknowledge


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StatusChange(_Body):
    status: IncidentStatus
    note: str | None = Field(None, max_length=4000)


class Assignment(_Body):
    assignee: str | None = Field(None, max_length=128, description="null unassigns")


class Note(_Body):
    text: str = Field(min_length=1, max_length=4000)


class RunRequest(_Body):
    playbook: str = Field(max_length=128)
    mode: Mode


@router.get("", response_model=schemas.IncidentPage, operation_id="list_incidents")
def list_incidents(
    ctx: Ctx,
    _: Analyst,
    status: IncidentStatus | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Incidents, most recently active first."""
    found = ctx.store.list_incidents(status=status, limit=limit, offset=offset)
    return {"items": [i.to_dict() for i in found], "limit": limit, "offset": offset}


@router.get(
    "/{incident_id}",
    response_model=schemas.IncidentDetail,
    operation_id="get_incident",
    responses=problems(404),
)
def get_incident(ctx: Ctx, _: Analyst, incident_id: str) -> dict[str, Any]:
    """An incident with its timeline, its alerts (with reasons) and the evidence event ids."""
    return _detail(ctx, _incident(ctx, incident_id))


@router.post(
    "/{incident_id}/status",
    response_model=schemas.IncidentDetail,
    operation_id="set_incident_status",
    responses=problems(400, 403, 404, 409),
)
def set_status(ctx: Ctx, user: Analyst, incident_id: str, body: StatusChange) -> dict[str, Any]:
    """Change the status: analysts may acknowledge, responders make any allowed transition."""
    if body.status not in ANALYST_STATUSES:
        forbidden_unless(user, Role.RESPONDER, f"setting an incident to {body.status.value}")
    incident = ctx.store.set_incident_status(incident_id, body.status, user.name, body.note)
    audit(ctx, user, "api.incident_status", incident_id, {"status": body.status.value, "note": body.note})
    return _detail(ctx, incident)


@router.post(
    "/{incident_id}/assignee",
    response_model=schemas.IncidentDetail,
    operation_id="set_incident_assignee",
    responses=problems(400, 404),
)
def set_assignee(ctx: Ctx, user: Analyst, incident_id: str, body: Assignment) -> dict[str, Any]:
    """Assign the incident (null: unassign)."""
    incident = ctx.store.assign_incident(incident_id, body.assignee, user.name)
    audit(ctx, user, "api.incident_assignee", incident_id, {"assignee": body.assignee})
    return _detail(ctx, incident)


@router.post(
    "/{incident_id}/notes",
    response_model=schemas.IncidentDetail,
    operation_id="add_incident_note",
    responses=problems(400, 404),
)
def add_note(ctx: Ctx, user: Analyst, incident_id: str, body: Note) -> dict[str, Any]:
    """Add a note to the timeline."""
    incident = ctx.store.add_incident_note(incident_id, user.name, body.text)
    audit(ctx, user, "api.incident_note", incident_id, {"length": len(body.text)})
    return _detail(ctx, incident)


@router.post(
    "/{incident_id}/runs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=schemas.QueuedRun,
    response_description="Run queued",
    operation_id="start_run",
    responses=problems(400, 403, 404) | {200: {"model": schemas.RunPlan, "description": "Dry run: the plan"}},
)
def start_run(
    ctx: Ctx, user: Responder, incident_id: str, body: RunRequest, response: Response
) -> dict[str, Any] | Response:
    """Dry run: return the plan. Otherwise only queue the run; ``keywatch respond`` executes it."""
    incident = _incident(ctx, incident_id)
    playbook = _playbook(ctx, body.playbook)
    run_ctx = incident_context(ctx.store, incident)
    if body.mode is Mode.DRY_RUN:  # a 200 with its own body, so answered here rather than as a 202
        plan = ctx.runner.plan_for(playbook, run_ctx, body.mode)
        answer = schemas.RunPlan(playbook=playbook.name, mode=body.mode, plan=plan)
        return Response(answer.model_dump_json(), media_type="application/json")
    require_audit(ctx)
    run_id = ctx.runner.enqueue(playbook, run_ctx, body.mode, user.name)
    details = {
        "run_id": run_id,
        "playbook": playbook.name,
        "mode": str(body.mode),
        "incident_id": incident_id,
    }
    audit(ctx, user, "api.run_start", run_ctx.key_id, details)
    response.headers["Location"] = f"/v1/runs/{run_id}"
    return {"run_id": run_id, "status": "queued", "playbook": playbook.name, "mode": str(body.mode)}


def _incident(ctx: ApiContext, incident_id: str) -> Incident:
    incident = ctx.store.get_incident(incident_id)
    if incident is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no incident {incident_id}")
    return incident


def _playbook(ctx: ApiContext, name: str) -> Playbook:
    for playbook in ctx.playbooks():
        if playbook.name == name:
            return playbook
    known = ", ".join(p.name for p in ctx.playbooks())
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"no playbook {name!r} (known: {known})")


def _detail(ctx: ApiContext, incident: Incident) -> dict[str, Any]:
    alerts = [a for a in map(ctx.store.get_alert, incident.alert_ids) if a is not None]
    evidence = sorted({e for a in alerts for e in a.event_ids})
    return incident.to_dict() | {
        "timeline": [e.to_dict() for e in incident.timeline],
        "alerts": [a.to_dict() for a in alerts],
        "evidence_event_ids": evidence,
    }
