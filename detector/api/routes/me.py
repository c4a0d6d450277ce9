"""``/v1/me`` and ``/v1/playbooks``: who the token belongs to, and what playbooks a run may name."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from detector.api import schemas
from detector.api.deps import Analyst, Ctx
from detector.response.playbook import Mode

router = APIRouter(tags=["session"])


@router.get("/me", response_model=schemas.Me, operation_id="get_me")
def me(user: Analyst) -> dict[str, str]:
    """The caller's name and role (the console shows only the buttons this role may use)."""
    return {"name": user.name, "role": user.role.label}


@router.get("/playbooks", response_model=schemas.PlaybookLibrary, operation_id="list_playbooks")
def list_playbooks(ctx: Ctx, _: Analyst) -> dict[str, Any]:
    """The playbook library: names, descriptions, step actions, and the modes a run may use."""
    items = [
        {
            "name": p.name,
            "description": p.description,
            "steps": [{"id": s.id, "action": s.action} for s in p.steps],
        }
        for p in ctx.playbooks()
    ]
    return {"items": items, "modes": [str(m) for m in Mode]}
