"""A local stand-in for the Slack Web API: stdlib HTTP server in a thread on a free loopback port.

Speaks ``auth.test``, ``chat.postMessage`` and ``chat.update`` (JSON or form bodies), checks
``Authorization: Bearer``, records every request, and fails on demand::

    server = SlackServer(token="xoxb-test").start()
    client = WebClient(token="xoxb-test", base_url=server.api_url)
    server.fail_next(2, "ratelimit", retry_after=30)   # next two calls: 429, Retry-After: 30
    server.fail_next(1, "server_error")                # next call: HTTP 500
    server.fail_next(1, "channel_not_found")           # next call: {"ok": false, "error": ...}
    server.stop()                                      # connection refused until start() again

Any other path (e.g. a ``response_url`` under ``/hooks/``) is recorded and answered ``ok``.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

API = "/api/"


@dataclass(frozen=True)
class Recorded:
    """One request the server received: API method (or path), headers, decoded body."""

    method: str
    headers: dict[str, str]
    body: dict[str, Any]
    path: str


@dataclass(frozen=True)
class _Failure:
    kind: str  # "ratelimit", "server_error" or a Slack error code
    retry_after: int


class SlackServer:
    """The fake Slack; ``api_url`` is the ``base_url`` for slack-sdk."""

    def __init__(self, token: str = "xoxb-test-token", *, port: int = 0) -> None:
        self.token = token
        self.port = port
        self.requests: list[Recorded] = []
        self._failures: deque[_Failure] = deque()
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> SlackServer:
        """Listen on 127.0.0.1 (the same port again after a stop)."""
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler_for(self))
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="fake-slack", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: clients get connection refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """The Web API base URL, for slack-sdk's ``base_url``."""
        return self.url + API

    # -- behaviour ----------------------------------------------------------------------------

    def fail_next(self, n: int, kind: str, *, retry_after: int = 1) -> None:
        """Make the next ``n`` API calls fail: ``ratelimit``, ``server_error`` or a Slack error code."""
        with self._lock:
            self._failures.extend(_Failure(kind, retry_after) for _ in range(n))

    def calls(self, method: str) -> list[Recorded]:
        """Recorded requests to one API method (or path)."""
        with self._lock:
            return [r for r in self.requests if r.method == method]

    def _record(self, recorded: Recorded) -> None:
        with self._lock:
            self.requests.append(recorded)

    def _next_failure(self) -> _Failure | None:
        with self._lock:
            return self._failures.popleft() if self._failures else None

    def answer(
        self, method: str, headers: dict[str, str], body: dict[str, Any]
    ) -> tuple[int, dict[str, str], Any]:
        """Status, extra headers and JSON body for one API call."""
        failure = self._next_failure()
        if failure is not None and failure.kind == "ratelimit":
            return 429, {"Retry-After": str(failure.retry_after)}, {"ok": False, "error": "ratelimited"}
        if failure is not None and failure.kind == "server_error":
            return 500, {}, "Internal Server Error"
        if failure is not None:
            return 200, {}, {"ok": False, "error": failure.kind}
        auth = headers.get("authorization", "")
        if not auth:
            return 200, {}, {"ok": False, "error": "not_authed"}
        if auth != f"Bearer {self.token}":
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        return 200, {}, self._ok(method, body)

    def _ok(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://keywatch-test.slack.com/",
                "team": "KeyWatch Test",
                "user": "keywatch",
                "team_id": "T0000TEST",
                "user_id": "U0000BOT",
                "bot_id": "B0000BOT",
            }
        if method not in ("chat.postMessage", "chat.update"):
            return {"ok": False, "error": "unknown_method"}
        if not body.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not body.get("text") and not body.get("blocks"):
            return {"ok": False, "error": "no_text"}
        if method == "chat.update":
            if not body.get("ts"):
                return {"ok": False, "error": "message_not_found"}
            return {"ok": True, "channel": body["channel"], "ts": body["ts"], "text": body.get("text", "")}
        ts = f"1700000000.{next(self._ts):06d}"
        return {"ok": True, "channel": body["channel"], "ts": ts, "message": {"text": body.get("text", "")}}


def _decode(content_type: str, raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    text = raw.decode("utf-8")
    if content_type.startswith("application/json"):
        data = json.loads(text)
        return data if isinstance(data, dict) else {"_": data}
    fields: dict[str, Any] = dict(parse_qsl(text, keep_blank_values=True))
    for name in ("blocks", "attachments"):  # form bodies carry these as JSON strings
        if isinstance(fields.get(name), str):
            fields[name] = json.loads(fields[name])
    return fields


def _handler_for(server: SlackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            body = _decode(headers.get("content-type", ""), raw)
            if not self.path.startswith(API):
                server._record(Recorded(self.path, headers, body, self.path))
                self._send(200, {}, "ok", "text/plain")
                return
            method = self.path[len(API) :].split("?")[0]
            server._record(Recorded(method, headers, body, self.path))
            status, extra, answer = server.answer(method, headers, body)
            if isinstance(answer, str):
                self._send(status, extra, answer, "text/plain")
            else:
                self._send(status, extra, json.dumps(answer), "application/json; charset=utf-8")

        def _send(self, status: int, extra: dict[str, str], text: str, content_type: str) -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

    return Handler
