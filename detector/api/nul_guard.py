"""Refuse requests that carry a NUL character or a JSON body not in UTF-8: a clear 422, never a 500.

PostgreSQL text cannot hold NUL (psycopg refuses the query), and the audit ledger refuses it in a
target, so an id or a JSON string with one would otherwise end as a 500. No valid KeyWatch id,
name or text holds one, so the guard refuses it at the edge for every route at once: in the
path (percent-encoded or not), the query string, or any string or key of a JSON body. JSON
bodies must be UTF-8 (RFC 8259): a UTF-16 or UTF-32 body (which a JSON parser would otherwise
decode, NULs included), a byte-order mark or invalid UTF-8 is refused the same way.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ESCAPED_NUL = b"\\u0000"  # how JSON writes NUL; a raw NUL byte is not valid JSON at all


_LONE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")  # the escape of a surrogate half, paired or not
_NOT_UTF8 = "JSON request bodies must be UTF-8 text without NUL bytes"


class NulGuard:
    """ASGI middleware: 422 for a NUL in the path, the query or a JSON body; anything else passes."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request, then hand it on (its body replayed) or answer 422."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        where = None
        if "\x00" in scope["path"]:
            where = "the path"
        elif b"%00" in query or b"\x00" in query:
            where = "the query string"
        elif _is_json(scope):
            body, receive = await _buffered(receive)
            if not _utf8_json(body):
                await _refuse(scope, receive, send, _NOT_UTF8)
                return
            if _ESCAPED_NUL in body and _holds_nul(body):
                where = "the request body"
            elif _LONE_SURROGATE.search(body) and _broken_surrogates(body):
                await _refuse(scope, receive, send, "JSON strings must not hold lone UTF-16 surrogates")
                return
        if where is None:
            await self.app(scope, receive, send)
            return
        await _refuse(scope, receive, send, f"NUL characters are not allowed in {where}")


async def _refuse(scope: Scope, receive: Receive, send: Send, detail: str) -> None:
    await JSONResponse({"detail": detail}, status_code=422)(scope, receive, send)


def _utf8_json(body: bytes) -> bool:
    """Whether a body can be UTF-8 JSON: valid UTF-8, no byte-order mark, no raw NUL byte.

    UTF-16 and UTF-32 text of ASCII characters is valid UTF-8 full of NUL bytes; JSON never holds
    a raw NUL (it writes ``\\u0000``), so a NUL byte means another encoding or no JSON at all.
    """
    if b"\x00" in body or body.startswith(b"\xef\xbb\xbf"):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return b"json" in value.lower()
    return False


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a ``receive`` that hands it to the app as if unread."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: let the app see it
            return b"", _replay([message], receive)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    return body, _replay([{"type": "http.request", "body": body, "more_body": False}], receive)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    async def again() -> Message:
        return messages.pop(0) if messages else await receive()

    return again


def _broken_surrogates(body: bytes) -> bool:
    """Whether a JSON string of the body holds a surrogate half without its pair.

    Such a string cannot be stored (it is not Unicode text); orjson refuses it where the stdlib
    parser the routes use would let it through.
    """
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return "surrogate" in str(exc).lower()
    return False


def _holds_nul(body: bytes) -> bool:
    """Whether a decoded string or key of the JSON body holds NUL (not merely the text ``\\u0000``)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False  # not JSON: the route's own validation answers
    stack: list[Any] = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return True
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False
