"""The error answers of the REST API, for its OpenAPI document.

Every error is ``{"detail": "one sentence"}`` (:class:`Problem`), from ``HTTPException``, from
the store errors ``create_app`` maps to HTTP, or from FastAPI for a body that is not JSON (400);
a request that fails validation is 422 with the fields at fault as a list instead
(:class:`ValidationProblem`). Routes document the codes they can answer with :func:`problems`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Problem(BaseModel):
    """Why a request failed, in one sentence."""

    detail: str


class FieldError(BaseModel):
    """One invalid part of a request: where it is (``loc``), what is wrong, and the error type.

    The offending input is never echoed back: it can be huge, hostile or not representable in
    JSON (``1e400``).
    """

    loc: list[str | int]
    msg: str
    type: str


class ValidationProblem(BaseModel):
    """Invalid input: the fields at fault, or one sentence (a NUL character, a refused value)."""

    detail: list[FieldError] | str


def _header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string"}}


_RESPONSES: dict[int, dict[str, Any]] = {
    400: {"model": Problem, "description": "The request body is not valid JSON"},
    401: {
        "model": Problem,
        "description": "Missing, invalid or revoked bearer token, or a disabled user",
        "headers": {"WWW-Authenticate": _header("`Bearer`")},
    },
    403: {"model": Problem, "description": "Not allowed: the detail names the role needed or the rule"},
    404: {"model": Problem, "description": "Not found: the detail names what"},
    409: {"model": Problem, "description": "Conflicts with the current state: the detail says why"},
    422: {"model": ValidationProblem, "description": "Invalid input"},
    429: {
        "model": Problem,
        "description": "Too many failed authentications from this address",
        "headers": {"Retry-After": _header("seconds to wait")},
    },
    502: {"model": Problem, "description": "The key backend refused or failed the operation"},
    503: {
        "model": Problem,
        "description": "The store, the audit ledger or a key backend is unavailable, "
        "or the action cannot be audited (no `audit.signing_key`)",
    },
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of the error answers ``codes``."""
    return {code: _RESPONSES[code] for code in codes}


# every ``/v1`` route authenticates (throttled), validates its input and uses the store
AUTHENTICATED = problems(401, 422, 429, 503)
