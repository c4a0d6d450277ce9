"""Bound what a request may make the server read: anonymous API bodies are refused unread, and
every body is capped (413), so one request cannot stall the API or grow its memory.

A ``/v1`` request that carries a body but no bearer token gets its 401 before a byte of the body
is read; a body whose declared or actual length passes ``api.max_body_bytes`` gets 413. What is
read is handed to the application as if unread.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_PREFIX = "/v1"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_BEARER = {"WWW-Authenticate": "Bearer"}


class BodyLimit:
    """ASGI middleware: 401 for an anonymous API body, 413 for one over ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        """Wrap ``app``; bodies may hold at most ``max_bytes`` bytes."""
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 401 or 413 without reading the body, or hand the request on."""
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        if scope["path"].startswith(API_PREFIX) and not headers.get(b"authorization", b"").startswith(
            b"Bearer "
        ):
            await _answer(
                scope, receive, send, 401, "a bearer token is required", {"WWW-Authenticate": "Bearer"}
            )
            return
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await _answer(scope, receive, send, 413, self._too_large())
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _answer(scope, receive, send, 413, self._too_large())
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replay: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def again() -> Message:
            return replay.pop() if replay else await receive()

        await self.app(scope, again, send)

    def _too_large(self) -> str:
        return f"request bodies hold at most {self.max_bytes:,} bytes"


async def _answer(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
) -> None:
    await JSONResponse({"detail": detail}, status_code=status, headers=headers)(scope, receive, send)
