"""One request cannot stall the API: anonymous bodies are refused unread, bodies are capped (413).

Before, a 9.3 MB JSON note blocked ``/healthz`` for 17 s and grew memory by 510 MB, and four
unauthenticated 100 MB bodies were read in full before their 401. Here the server answers from
the request line and headers alone: the body is never sent.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from api_support import Env, make_env

from detector.adapters.broker import free_port
from detector.cli.serve import server_config
from detector.config import Settings
from detector.domain.incidents import incident_id_for

pytestmark = pytest.mark.integration


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Env, int]]:
    env = make_env(f"sqlite:///{tmp_path / 'api.db'}", tmp_path)
    port = free_port()
    server = uvicorn.Server(server_config(env.client.app, Settings(), "127.0.0.1", port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield env, port
    server.should_exit = True
    thread.join(10)
    env.store.close()


def _headers_only(port: int, path: str, length: int, token: str | None) -> tuple[int, float]:
    """Send a POST's headers announcing ``length`` bytes, never the body; the status and how long."""
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"{auth}Content-Length: {length}\r\n\r\n")  # fmt: skip
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request.encode())
        head = sock.recv(4096).decode("latin-1")
    return int(head.split()[1]), time.monotonic() - started


def test_an_anonymous_body_is_refused_before_it_is_read(served: tuple[Env, int]) -> None:
    env, port = served
    incident = incident_id_for(env.alert())
    for _ in range(4):
        status, seconds = _headers_only(port, f"/v1/incidents/{incident}/notes", 100_000_000, None)
        assert status == 401 and seconds < 2


def test_a_body_over_the_cap_is_refused_before_it_is_read(served: tuple[Env, int]) -> None:
    env, port = served
    incident = incident_id_for(env.alert())
    status, seconds = _headers_only(port, f"/v1/incidents/{incident}/notes", 9_300_000, env.tokens["ann"])
    assert status == 413 and seconds < 2


def test_a_streamed_body_over_the_cap_is_cut_off(served: tuple[Env, int]) -> None:
    env, port = served
    incident = incident_id_for(env.alert())

    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(3_000):
            yield b"x" * 1024
        yield b'"}'

    url = f"http://127.0.0.1:{port}/v1/incidents/{incident}/notes"
    headers = {**env.auth("ann"), "Content-Type": "application/json"}
    response = httpx.post(url, content=chunks(), headers=headers, timeout=30)
    assert response.status_code == 413 and "at most 1,048,576 bytes" in response.text
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200


def test_a_body_within_the_cap_still_works(served: tuple[Env, int]) -> None:
    env, port = served
    incident = incident_id_for(env.alert())
    url = f"http://127.0.0.1:{port}/v1/incidents/{incident}/notes"
    padded = '{"text": "looked at it"' + " " * 900_000 + "}"  # 900 kB of JSON, a short note
    headers = {**env.auth("ann"), "Content-Type": "application/json"}
    response = httpx.post(url, content=padded, headers=headers, timeout=30)
    assert response.status_code == 200, response.text[:200]
