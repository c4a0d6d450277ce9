"""``/v1/users``: admins list, add, disable and enable users and rotate their API tokens.

A token is shown only in the answer that made it (the store keeps its SHA-256 hash). Disabling a
user revokes their token at once (401 from then on) and is refused with 409 for the last enabled
admin, whoever asks: nobody could manage users afterwards. A disabled user gets no new token (409)
until an admin enables them again, which gives them a new one (their old token stays revoked).
User names may contain ``/``, so the name is the rest of the path before the action.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from detector.api import schemas
from detector.api.deps import Admin, Ctx, audit
from detector.api.problems import problems
from detector.domain.users import Role

router = APIRouter(prefix="/users", tags=["users"], responses=problems(403))  # admins only


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    role: Role
    slack_id: str | None = Field(None, max_length=64)


@router.get("", response_model=schemas.UserList, operation_id="list_users")
def list_users(ctx: Ctx, _: Admin) -> dict[str, Any]:
    """Every user by name: role, Slack id, whether disabled and whether a token is set (never the hash)."""
    return {"items": [a.to_dict() for a in ctx.users.accounts()]}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.CreatedUser,
    operation_id="add_user",
    responses=problems(400, 409),
)
def add_user(ctx: Ctx, admin: Admin, body: NewUser) -> dict[str, Any]:
    """Create a user; ``token`` is shown only in this answer (the store keeps its SHA-256 hash)."""
    user = ctx.users.add(body.name, body.role, body.slack_id)
    token = ctx.users.issue_token(user.name)
    audit(
        ctx, admin, "api.user_add", user.name, {"role": user.role.label, "slack_user_id": user.slack_user_id}
    )
    return {"name": user.name, "role": user.role.label, "slack_user_id": user.slack_user_id, "token": token}


@router.post(
    "/{name:path}/disable",
    response_model=schemas.DisabledUser,
    operation_id="disable_user",
    responses=problems(404, 409),
)
def disable_user(ctx: Ctx, admin: Admin, name: str) -> dict[str, Any]:
    """Disable a user and revoke their token; 404 unknown, 409 for the last enabled admin."""
    user = ctx.users.disable(name)
    audit(ctx, admin, "api.user_disable", user.name, {"role": user.role.label})
    return {"name": user.name, "role": user.role.label, "disabled": True, "has_token": False}


@router.post(
    "/{name:path}/enable",
    response_model=schemas.EnabledUser,
    operation_id="enable_user",
    responses=problems(404, 409),
)
def enable_user(ctx: Ctx, admin: Admin, name: str) -> dict[str, Any]:
    """Enable a disabled user with a new token, shown only in this answer; 404 unknown, 409 not disabled."""
    user, token = ctx.users.enable(name)
    audit(ctx, admin, "api.user_enable", user.name, {"role": user.role.label})
    return {"name": user.name, "role": user.role.label, "disabled": False, "token": token}


@router.post(
    "/{name:path}/rotate-token",
    response_model=schemas.UserToken,
    operation_id="rotate_user_token",
    responses=problems(404, 409),
)
def rotate_token(ctx: Ctx, admin: Admin, name: str) -> dict[str, Any]:
    """Give a user a new token, shown only in this answer; the old one stops working at once."""
    token = ctx.users.issue_token(name)
    audit(ctx, admin, "api.user_token_rotate", name, {})
    return {"name": name, "token": token}
