"""``/v1/alerts``: stored alerts, filtered and paged."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, status

from detector.api import schemas
from detector.api.deps import Analyst, Ctx, Limit, Offset
from detector.api.problems import problems
from detector.domain.alerts import Severity

router = APIRouter(prefix="/alerts", tags=["alerts"])


def epoch(value: datetime | None) -> float | None:
    """Epoch seconds of an RFC 3339 time; a time without offset is UTC."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


@router.get("", response_model=schemas.AlertPage, operation_id="list_alerts")
def list_alerts(
    ctx: Ctx,
    _: Analyst,
    key: str | None = None,
    principal: str | None = None,
    detector: str | None = None,
    severity: Literal["low", "medium", "high", "critical"] | None = None,
    since: Annotated[datetime | None, Query(description="RFC 3339; alerts whose window ends after")] = None,
    until: Annotated[
        datetime | None, Query(description="RFC 3339; alerts whose window starts before")
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Alerts newest first; ``severity`` is a minimum."""
    alerts = ctx.store.list_alerts(
        key_id=key,
        principal=principal,
        detector=detector,
        min_severity=Severity.parse(severity) if severity else None,
        since=epoch(since),
        until=epoch(until),
        limit=limit,
        offset=offset,
    )
    return {"items": [a.to_dict() for a in alerts], "limit": limit, "offset": offset}


@router.get("/{alert_id}", response_model=schemas.Alert, operation_id="get_alert", responses=problems(404))
def get_alert(ctx: Ctx, _: Analyst, alert_id: str) -> dict[str, Any]:
    """One alert with its reasons and evidence event ids."""
    alert = ctx.store.get_alert(alert_id)
    if alert is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alert {alert_id}")
    return alert.to_dict()
