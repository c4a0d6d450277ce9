"""``/console/``: the SOC console, static files served under a strict Content-Security-Policy.

The console is plain HTML, CSS and one script from ``detector/api/console``; it talks only to
this API (``connect-src 'self'``) with the bearer token the user pastes, so no inline script,
no framework and nothing from another origin is ever allowed to run.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import Scope

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
router = APIRouter(include_in_schema=False)


class ConsoleFiles(StaticFiles):
    """StaticFiles whose every answer (404 included) carries the console's security headers."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        """The file, with the headers."""
        try:
            response = await super().get_response(path, scope)
        except HTTPException as exc:  # a missing file: answer here so the headers still apply
            response = PlainTextResponse(exc.detail, status_code=exc.status_code)
        response.headers.update(SECURITY_HEADERS)
        return response


@router.get("/console")
def console_root() -> RedirectResponse:
    """``/console`` without the slash: relative asset paths need it."""
    return RedirectResponse("/console/", headers=SECURITY_HEADERS)


def install(app: FastAPI) -> None:
    """Mount the console on ``app``."""
    app.include_router(router)
    app.mount("/console", ConsoleFiles(directory=CONSOLE_DIR, html=True), name="console")
