"""``/v1/alerts/{alert_id}/verdict`` and ``/v1/verdicts``: analysts say whether an alert was right."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from detector.adapters.store.feedback import FeedbackRepository
from detector.api import schemas
from detector.api.deps import Analyst, ApiContext, Ctx, Limit, Offset, audit
from detector.api.problems import problems
from detector.domain.suppressions import Verdict, proposal

router = APIRouter(tags=["verdicts"])


class VerdictBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verdict: Verdict
    comment: str | None = Field(None, max_length=4000)


def feedback(ctx: ApiContext) -> FeedbackRepository:
    """The feedback repository on the API's store and clock."""
    return FeedbackRepository(ctx.store, clock=ctx.clock)


@router.post(
    "/alerts/{alert_id}/verdict",
    response_model=schemas.VerdictRecord | schemas.FalsePositiveVerdict,
    operation_id="set_verdict",
    responses=problems(400, 404),
)
def set_verdict(ctx: Ctx, user: Analyst, alert_id: str, body: VerdictBody) -> dict[str, Any]:
    """Record the verdict; a false positive also proposes a 7-day suppression (not created)."""
    alert = ctx.store.get_alert(alert_id)
    if alert is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alert {alert_id}")
    record = feedback(ctx).set_verdict(alert_id, body.verdict, body.comment, user.name)
    audit(ctx, user, "api.verdict", alert_id, {"verdict": body.verdict.value, "comment": body.comment})
    answer = record.to_dict()
    if body.verdict is Verdict.FALSE_POSITIVE:
        answer["proposed_suppression"] = proposal(alert, ctx.clock())
    return answer


@router.get("/verdicts", response_model=schemas.VerdictPage, operation_id="list_verdicts")
def list_verdicts(
    ctx: Ctx,
    _: Analyst,
    verdict: Verdict | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Verdicts, newest first."""
    found = feedback(ctx).list_verdicts(verdict, limit, offset)
    return {"items": [v.to_dict() for v in found], "limit": limit, "offset": offset}
