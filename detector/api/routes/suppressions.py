"""``/v1/suppressions``: admins silence known-benign alerts for a while, with a reason; analysts preview."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from detector.api import schemas
from detector.api.deps import Admin, Analyst, Ctx, Limit, Offset, audit
from detector.api.problems import problems
from detector.api.routes.alerts import epoch
from detector.api.routes.verdicts import feedback
from detector.domain.suppressions import PREVIEW_DAYS, FeedbackError, Match

router = APIRouter(prefix="/suppressions", tags=["suppressions"])
PREVIEW_ITEMS = 100


class MatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key_id: str | None = Field(None, max_length=512)
    principal: str | None = Field(None, max_length=512)
    detector: str | None = Field(None, max_length=64)
    country: str | None = Field(None, min_length=2, max_length=8)

    def match(self) -> Match:
        """The domain match."""
        return Match(self.key_id, self.principal, self.detector, self.country)


class NewSuppression(MatchBody):
    reason: str = Field(max_length=4000)
    expires_at: datetime = Field(description="RFC 3339, in the future, at most 90 days ahead")


@router.get("", response_model=schemas.SuppressionPage, operation_id="list_suppressions")
def list_suppressions(
    ctx: Ctx,
    _: Analyst,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Suppressions, newest first, each saying whether it is active now."""
    now = ctx.clock()
    found = feedback(ctx).list_suppressions(limit, offset)
    return {"items": [s.to_dict(now) for s in found], "limit": limit, "offset": offset}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.Suppression,
    operation_id="add_suppression",
    responses=problems(400, 403),
)
def add_suppression(ctx: Ctx, admin: Admin, body: NewSuppression) -> dict[str, Any]:
    """Create a suppression (422 without a match field or reason, or expiring past 90 days)."""
    expires = epoch(body.expires_at)
    assert expires is not None  # noqa: S101 - the field is required
    try:
        made = feedback(ctx).add_suppression(body.match(), body.reason, expires, admin.name)
    except FeedbackError as exc:
        raise HTTPException(422, str(exc)) from None
    audit(ctx, admin, "api.suppression_add", made.suppression_id, made.to_dict())
    return made.to_dict(ctx.clock())


@router.delete(
    "/{suppression_id}",
    response_model=schemas.Suppression,
    operation_id="revoke_suppression",
    responses=problems(403, 404),
)
def revoke_suppression(ctx: Ctx, admin: Admin, suppression_id: str) -> dict[str, Any]:
    """Revoke a suppression: alerts it matches are published again from now on."""
    revoked = feedback(ctx).revoke(suppression_id)
    if revoked is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no suppression {suppression_id}")
    audit(ctx, admin, "api.suppression_revoke", suppression_id, revoked.match.to_dict())
    return revoked.to_dict(ctx.clock())


@router.post(
    "/preview",
    response_model=schemas.SuppressionPreview,
    operation_id="preview_suppression",
    responses=problems(400),
)
def preview(ctx: Ctx, _: Analyst, body: MatchBody) -> dict[str, Any]:
    """Stored alerts of the last 7 days the match would have suppressed (nothing is created)."""
    match = body.match()
    if match.is_empty():
        raise HTTPException(422, "a suppression needs at least one of key_id, principal, detector, country")
    found = feedback(ctx).preview(match)
    return {"days": PREVIEW_DAYS, "matched": len(found),
            "items": [a.to_dict() for a in found[:PREVIEW_ITEMS]]}  # fmt: skip
