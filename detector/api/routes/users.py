"""``/v1/users``: admins add users; the new user's API token is in the answer, once."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from detector.api.deps import Admin, Ctx, audit
from detector.domain.users import Role

router = APIRouter(prefix="/users", tags=["users"])


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    role: Role
    slack_id: str | None = Field(None, max_length=64)


@router.post("", status_code=status.HTTP_201_CREATED)
def add_user(ctx: Ctx, admin: Admin, body: NewUser) -> dict[str, Any]:
    """Create a user; ``token`` is shown only in this answer (the store keeps its SHA-256 hash)."""
    user = ctx.users.add(body.name, body.role, body.slack_id)
    token = ctx.users.issue_token(user.name)
    audit(
        ctx, admin, "api.user_add", user.name, {"role": user.role.label, "slack_user_id": user.slack_user_id}
    )
    return {"name": user.name, "role": user.role.label, "slack_user_id": user.slack_user_id, "token": token}
