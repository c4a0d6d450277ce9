"""``/v1/keys``: the inventory of the configured key backends, and disabling or enabling a key.

Key ids contain ``/`` and ``:`` (KMS ARNs, ``alias/...``), so the key id is the rest of the path
before the action (a ``:path`` parameter): ``POST /v1/keys/arn:aws:kms:eu-west-1:1:key/abc/disable``.
Percent-encoding is accepted too.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException, status

from detector.api import schemas
from detector.api.deps import Analyst, ApiContext, Ctx, Responder, audit, require_audit
from detector.api.problems import problems
from detector.domain.keys import ActionResult, BackendUnavailable, KeyBackendError, KeyInfo, Outcome
from detector.domain.users import User

log = logging.getLogger(__name__)
router = APIRouter(prefix="/keys", tags=["keys"])
ACTION_PROBLEMS = problems(403, 404, 502)


@router.get("", response_model=schemas.KeyInventory, operation_id="list_keys")
def inventory(ctx: Ctx, _: Analyst) -> dict[str, Any]:
    """Every key of every configured backend with its newest alert; unreachable backends under ``errors``."""
    items: list[dict[str, Any]] = []
    errors = []
    for name in ctx.backends.names():
        try:
            keys = ctx.backends.get(name).inventory()
        except Exception as exc:  # one backend down must not hide the others
            log.warning("inventory of key backend %s failed: %s", name, exc)
            errors.append({"backend": name, "error": f"{type(exc).__name__}: {exc}"[:300]})
            continue
        items += [_key_dict(ctx, k) for k in keys]
    return {"items": items, "errors": errors}


@router.post(
    "/{key_id:path}/disable",
    response_model=schemas.KeyAction,
    operation_id="disable_key",
    responses=ACTION_PROBLEMS,
)
def disable(ctx: Ctx, user: Responder, key_id: str) -> dict[str, Any]:
    """Disable a key now (idempotent: ``already_disabled``)."""
    return _act(ctx, user, key_id, "disable")


@router.post(
    "/{key_id:path}/enable",
    response_model=schemas.KeyAction,
    operation_id="enable_key",
    responses=ACTION_PROBLEMS,
)
def enable(ctx: Ctx, user: Responder, key_id: str) -> dict[str, Any]:
    """Re-enable a key KeyWatch disabled, restoring exactly what it turned off."""
    return _act(ctx, user, key_id, "enable")


def _act(ctx: ApiContext, user: User, key_id: str, verb: str) -> dict[str, Any]:
    require_audit(ctx)
    try:
        backend = ctx.backends(key_id)
        result: ActionResult = backend.disable(key_id) if verb == "disable" else backend.enable(key_id)
    except BackendUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    except KeyBackendError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, str(exc)) from None
    if result.outcome is Outcome.NOT_FOUND:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no key {key_id} in backend {result.backend}")
    audit(ctx, user, f"api.key_{verb}", key_id, {"outcome": str(result.outcome), "backend": result.backend})
    return {
        "key_id": key_id,
        "backend": result.backend,
        "outcome": str(result.outcome),
        "detail": result.detail,
    }


RECENT_ALERTS = 200  # how far back "recent callers" looks, in alerts on the key


def _key_dict(ctx: ApiContext, key: KeyInfo) -> dict[str, Any]:
    recent = ctx.store.list_alerts(key_id=key.key_id, limit=RECENT_ALERTS)
    last = recent[:1]
    callers = sorted({a.principal for a in recent if a.principal})
    return {
        "key_id": key.key_id,
        "backend": key.backend,
        "label": key.label,
        "key_type": key.key_type,
        "state": str(key.state),
        "allowed_uses": list(key.allowed_uses),
        "version": key.version,
        "recent_callers": callers,  # principals of the key's recent alerts (who a change would hit)
        "last_alert": None
        if not last
        else {k: last[0].to_dict()[k] for k in ("alert_id", "detector", "severity", "window_end")},
    }
