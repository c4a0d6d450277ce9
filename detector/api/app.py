"""``create_app``: the KeyWatch REST API (OpenAPI at ``/v1/openapi.json``, docs at ``/v1/docs``).

Health, readiness and metrics sit at the root without authentication; everything else is under
``/v1`` behind a bearer token and a role (analyst < responder < admin). Expected failures of the
store layer map to HTTP: unknown incident or user 404, disallowed transition 409, invalid input 422,
duplicate user 409, a refused user change 409 (disabling the last enabled admin, a token for a
disabled user), database or ledger unavailable 503. A NUL character anywhere in a request is 422
(:mod:`detector.api.nul_guard`). Every JSON answer is a named schema (:mod:`detector.api.schemas`), and
every operation has a stable ``operationId`` and documents its errors (:mod:`detector.api.problems`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter, FastAPI, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from detector.adapters.audit import Ledger
from detector.adapters.responder import LedgerAuditor
from detector.adapters.runner import playbook_runner
from detector.adapters.slack.interactions import interactions_router
from detector.adapters.slack.notifier import SlackNotifier
from detector.adapters.store import Store, StoreError
from detector.adapters.store.users import DuplicateUserError, UnknownUserError
from detector.api.backends import Backends
from detector.api.body_limit import BodyLimit
from detector.api.deps import NOT_AUDITED, ApiContext
from detector.api.nul_guard import NulGuard
from detector.api.problems import AUTHENTICATED
from detector.api.routes import (
    alerts,
    console,
    health,
    incidents,
    keys,
    me,
    models,
    runs,
    suppressions,
    users,
    verdicts,
)
from detector.api.slack import RunnerInteractions
from detector.config import Settings
from detector.domain.errors import ConfigError
from detector.domain.incidents import IncidentError, TransitionError, UnknownIncidentError
from detector.domain.keys import KeyBackend
from detector.domain.ledger import LedgerError
from detector.domain.users import UserError, UserStateError
from detector.response.runner import PlaybookRunner

log = logging.getLogger(__name__)

API_PREFIX = "/v1"
_ERRORS: dict[type[Exception], int] = {
    UnknownIncidentError: status.HTTP_404_NOT_FOUND,
    TransitionError: status.HTTP_409_CONFLICT,
    IncidentError: 422,
    DuplicateUserError: status.HTTP_409_CONFLICT,
    UnknownUserError: status.HTTP_404_NOT_FOUND,
    UserStateError: status.HTTP_409_CONFLICT,
    UserError: 422,
    StoreError: status.HTTP_503_SERVICE_UNAVAILABLE,
    LedgerError: status.HTTP_503_SERVICE_UNAVAILABLE,
    ConfigError: status.HTTP_503_SERVICE_UNAVAILABLE,
}


class _RefusingAuditor:
    """The runner's auditor when no signing key is configured: actions are refused (routes check first)."""

    def record(self, *_: object, **__: object) -> None:
        raise LedgerError(NOT_AUDITED)


def create_app(
    settings: Settings,
    store: Store,
    *,
    runner: PlaybookRunner | None = None,
    backends: Mapping[str, KeyBackend] | None = None,
    ledger: Ledger | None = None,
    clock: Callable[[], float] = time.time,
    broker_check: Callable[[], object] | None = None,
) -> FastAPI:
    """The API over a migrated ``store``.

    ``backends`` maps backend names to backends (default: those the settings configure, loaded
    on first use); ``ledger`` defaults to ``audit.signing_key``'s; ``runner`` defaults to one on
    the same store, backends, Slack outbox and ledger; ``broker_check`` (raising when the broker
    does not answer) joins ``/readyz``.
    """
    if ledger is None and settings.audit.signing_key is not None:
        ledger = Ledger.from_settings(store, settings.audit)
    keyring = Backends(settings, backends)
    if runner is None:
        auditor = LedgerAuditor(ledger) if ledger is not None and ledger.signer else _RefusingAuditor()
        notifier = SlackNotifier(store, settings.slack.default_channel)
        r = settings.response
        runner = playbook_runner(store, keyring, notifier, auditor, retry_base_seconds=r.retry_base_seconds,
                                retry_max_seconds=r.retry_max_seconds, clock=clock)  # fmt: skip
    ctx = ApiContext(settings, store, runner, keyring, ledger, clock, broker_check)
    app = FastAPI(
        title="KeyWatch",
        description="Detects misuse of encryption keys and contains it.",
        version="1",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,  # bearer tokens only: no OAuth2 flow
    )
    app.state.keywatch = ctx
    _install_errors(app)
    app.add_middleware(NulGuard)
    app.add_middleware(BodyLimit, max_bytes=settings.api.max_body_bytes)  # outside: before any body is read
    _install_metrics(app, ctx)
    app.include_router(health.router)
    v1 = APIRouter(prefix=API_PREFIX, responses=AUTHENTICATED)
    for module in (alerts, incidents, runs, keys, users, me):
        v1.include_router(module.router)
    for module in (verdicts, suppressions, models):  # analysts' feedback
        v1.include_router(module.router)
    app.include_router(v1)
    console.install(app)
    secret = settings.slack.signing_secret
    if secret is not None and secret.get_secret_value().strip():
        app.include_router(interactions_router(RunnerInteractions(ctx), secret, store, clock=clock))
    return app


def _install_errors(app: FastAPI) -> None:
    for error, code in _ERRORS.items():
        app.add_exception_handler(error, _handler(code))
    app.add_exception_handler(RequestValidationError, _invalid)


async def _invalid(request: Request, exc: Exception) -> Response:
    """422 naming each field at fault and why, without echoing what was sent."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [{"loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
               "msg": str(e.get("msg", ""))[:500], "type": str(e.get("type", ""))}
              for e in errors[:50]]  # fmt: skip
    return JSONResponse({"detail": detail}, status_code=422)


def _handler(code: int) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handle(request: Request, exc: Exception) -> Response:
        if code >= 500:
            log.warning("%s %s failed: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": str(exc)}, status_code=code)

    return handle


def _install_metrics(app: FastAPI, ctx: ApiContext) -> None:
    @app.middleware("http")
    async def count(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        status = 500  # an exception nothing handled becomes a 500 outside this middleware
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = getattr(request.scope.get("route"), "path", "unmatched")
            ctx.requests.labels(request.method, route, str(status)).inc()
