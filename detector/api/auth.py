"""Bearer-token authentication, roles, and the slowdown of repeated failed logins.

A token is ``kw_`` plus 43 random URL-safe characters, made by ``keywatch users add`` or
``POST /v1/users`` and shown once; the store keeps only its SHA-256 hash (``users.token_hash``),
so a lookup by hash needs no constant-time comparison and a stolen database yields no token.

Failed logins are counted per client address **in this process's memory** (several API
processes each count their own; a restart forgets): after ``max_failures`` failures within
``window_seconds``, every further request from that address gets 429 with ``Retry-After``
until the oldest failure leaves the window, without the token being looked at. The address is
the peer's; ``X-Forwarded-For`` counts only from the reverse proxies listed in
``api.trusted_proxies`` (none by default), so a client cannot name itself a new address.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable

from fastapi import HTTPException, status

from detector.domain.users import Role, User

log = logging.getLogger(__name__)

MAX_FAILURES = 5
WINDOW_SECONDS = 60.0
BEARER = {"WWW-Authenticate": "Bearer"}


class FailedLogins:
    """Failures per client address within a sliding window; thread-safe, in memory only."""

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_seconds: float = WINDOW_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Allow ``max_failures`` failures per ``window_seconds`` before answering 429."""
        self.max_failures = max_failures
        self.window = window_seconds
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> float:
        """Seconds ``client`` must wait before trying again; 0 when it may try now."""
        with self._lock:
            recent = self._recent(client)
            if len(recent) < self.max_failures:
                return 0.0
            return max(recent[-self.max_failures] + self.window - self._clock(), 0.0)

    def failed(self, client: str) -> None:
        """Count one failed authentication of ``client``."""
        with self._lock:
            self._recent(client).append(self._clock())

    def _recent(self, client: str) -> deque[float]:
        recent = self._failures.setdefault(client, deque())
        while recent and recent[0] <= self._clock() - self.window:
            recent.popleft()
        return recent


def throttled(wait: float) -> HTTPException:
    """429 with the seconds to wait."""
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        "too many failed authentications from this address; try again later",
        headers={"Retry-After": str(max(math.ceil(wait), 1))},
    )


def unauthorized(detail: str) -> HTTPException:
    """401 with ``WWW-Authenticate: Bearer``."""
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers=BEARER)


def forbidden_unless(user: User, role: Role, doing: str) -> None:
    """Raise 403, naming the role needed, unless ``user`` has ``role`` or a higher one."""
    if user.role < role:
        higher = " or ".join(r.label for r in Role if r >= role)
        article = "an" if user.role.label[0] in "aeiou" else "a"
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"{user.name} is {article} {user.role.label}: {doing} needs the {higher} role",
        )
