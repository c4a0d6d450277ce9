"""``/v1/models``: registered model versions with their cards; admins choose the active one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status

from detector.api import schemas
from detector.api.deps import Admin, Analyst, Ctx, audit
from detector.api.problems import problems
from detector.api.routes.verdicts import feedback

router = APIRouter(prefix="/models", tags=["models"])


@router.get("", response_model=schemas.ModelList, operation_id="list_models")
def list_models(ctx: Ctx, _: Analyst) -> dict[str, Any]:
    """Every registered version with its model card, newest first."""
    return {"items": [m.to_dict() for m in feedback(ctx).list_models()]}


@router.get(
    "/active", response_model=schemas.ModelVersion, operation_id="get_active_model", responses=problems(404)
)
def active_model(ctx: Ctx, _: Analyst) -> dict[str, Any]:
    """The active version (404 before any is registered)."""
    active = feedback(ctx).active_model()
    if active is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no model registered (keywatch models register)")
    return active.to_dict()


@router.post(
    "/{version}/activate",
    response_model=schemas.ModelVersion,
    operation_id="activate_model",
    responses=problems(403, 404),
)
def activate(ctx: Ctx, admin: Admin, version: str) -> dict[str, Any]:
    """Make ``version`` the only active one."""
    before = feedback(ctx).active_model()
    activated = feedback(ctx).activate_model(version)
    if activated is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no model version {version}")
    previous = before.version if before else None
    audit(ctx, admin, "api.model_activate", version, {"previous": previous, "path": activated.path})
    return activated.to_dict()
