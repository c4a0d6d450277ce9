"""What routes depend on: the API context, the authenticated user, roles, and auditing."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry, Counter

from detector.adapters.audit import Ledger
from detector.adapters.responder import default_playbooks_dir, load_library
from detector.adapters.store import Store
from detector.adapters.store.users import UserRepository, hash_token
from detector.api.auth import FailedLogins, forbidden_unless, throttled, unauthorized
from detector.api.backends import Backends
from detector.config import Settings
from detector.domain.users import Role, User
from detector.response.playbook import Playbook
from detector.response.runner import PlaybookRunner

log = logging.getLogger(__name__)

# the largest page offset: beyond it every page is empty anyway, and SQLite's OFFSET (a signed
# 64-bit integer) overflows, a 500 instead of a 422
MAX_OFFSET = 2**31 - 1
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
Limit = Annotated[int, Query(ge=1, le=500)]  # a page: at most 500 items
NOT_AUDITED = "actions are audited: set audit.signing_key (create one with `keywatch audit keygen`)"


@dataclass
class ApiContext:
    """Everything the routes use, built once by ``create_app``."""

    settings: Settings
    store: Store
    runner: PlaybookRunner
    backends: Backends
    ledger: Ledger | None
    clock: Callable[[], float] = time.time
    broker_check: Callable[[], object] | None = None
    logins: FailedLogins = field(default_factory=FailedLogins)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    _playbooks: list[Playbook] | None = None

    def __post_init__(self) -> None:
        """Users and the API's own metrics."""
        self.users = UserRepository(self.store, clock=self.clock)
        self.requests = Counter(
            "keywatch_api_requests", "API requests", ["method", "route", "status"], registry=self.registry
        )
        self.auth_failures = Counter(
            "keywatch_api_auth_failures", "Failed API authentications", registry=self.registry
        )

    @property
    def audited(self) -> bool:
        """Whether a ledger with a signing key records actions."""
        return self.ledger is not None and self.ledger.signer is not None

    def playbooks(self) -> Sequence[Playbook]:
        """The playbook library (``response.playbooks_dir``, else the shipped one), loaded once."""
        if self._playbooks is None:
            directory = self.settings.response.playbooks_dir or default_playbooks_dir()
            self._playbooks = load_library(directory)
        return self._playbooks


def get_context(request: Request) -> ApiContext:
    """The context ``create_app`` stored on the app."""
    ctx: ApiContext = request.app.state.keywatch
    return ctx


Ctx = Annotated[ApiContext, Depends(get_context)]
_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer kw_...` (keywatch users add)")


def current_user(
    request: Request,
    ctx: Ctx,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    """The active user the bearer token belongs to; 401 otherwise, 429 after repeated failures."""
    client = request.client.host if request.client else "unknown"
    wait = ctx.logins.retry_after(client)
    if wait > 0:
        raise throttled(wait)
    user = ctx.users.by_token_hash(hash_token(credentials.credentials)) if credentials else None
    if user is None or user.disabled:
        ctx.logins.failed(client)
        ctx.auth_failures.inc()
        problem = "missing bearer token" if credentials is None else "invalid or revoked token"
        log.warning("API authentication from %s failed: %s", client, problem)
        raise unauthorized(problem)
    return user


def _role(role: Role) -> Callable[[Request, User], User]:
    def check(request: Request, user: Annotated[User, Depends(current_user)]) -> User:
        route = getattr(request.scope.get("route"), "path", request.url.path)
        forbidden_unless(user, role, f"{request.method} {route}")
        return user

    return check


Analyst = Annotated[User, Depends(_role(Role.ANALYST))]
Responder = Annotated[User, Depends(_role(Role.RESPONDER))]
Admin = Annotated[User, Depends(_role(Role.ADMIN))]


def require_audit(ctx: ApiContext) -> None:
    """503 unless actions can be audited (key changes and runs are never made unrecorded)."""
    if not ctx.audited:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, NOT_AUDITED)


def audit(ctx: ApiContext, user: User, action: str, target: str, details: dict[str, Any]) -> None:
    """Record a mutating call in the ledger when one with a signing key is configured."""
    if ctx.ledger is not None and ctx.ledger.signer is not None:
        ctx.ledger.append(user.name, action, target, details)
    else:
        log.info("unaudited (no audit.signing_key): %s %s %s", user.name, action, target)
