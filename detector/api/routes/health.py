"""``/healthz``, ``/readyz`` and ``/metrics``: no authentication, for orchestrators and Prometheus."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from detector.api import schemas
from detector.api.deps import ApiContext, Ctx

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=schemas.Health, operation_id="get_health")
def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=schemas.Readiness,
    operation_id="get_readiness",
    responses={503: {"model": schemas.Readiness, "description": "A component does not answer"}},
)
def readyz(ctx: Ctx) -> JSONResponse:
    """Per-component status: the store, the broker (when a check is configured), each key backend."""
    checks = {"store": _check(ctx.store.ping)}
    if ctx.broker_check is not None:
        checks["broker"] = _check(ctx.broker_check)
    for name in ctx.backends.names():
        checks[f"key_backend:{name}"] = _check(lambda n=name: _inventory(ctx, n))
    ready = all(c["status"] == "ok" for c in checks.values())
    body = {"status": "ready" if ready else "not ready", "components": checks}
    return JSONResponse(body, status_code=200 if ready else 503)


def _inventory(ctx: ApiContext, name: str) -> None:
    ctx.backends.get(name).inventory()


def _check(probe: object) -> dict[str, str]:
    try:
        probe()  # type: ignore[operator]
    except Exception as exc:  # any failure means not ready; the reason is shown, never a secret
        log.warning("readiness check failed: %s", exc)
        return {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"status": "ok"}


@router.get(
    "/metrics",
    response_class=Response,
    operation_id="get_metrics",
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def metrics(ctx: Ctx) -> Response:
    """The API's Prometheus metrics (text exposition format)."""
    return Response(generate_latest(ctx.registry), media_type=CONTENT_TYPE_LATEST)
