"""``X-Forwarded-For`` is believed only from the configured reverse proxies.

uvicorn believes it from 127.0.0.1 by default, so anyone on the host could send each failed login
from a new "address" and never meet the throttle.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from api_support import make_env

from detector.adapters.broker import free_port
from detector.cli.serve import server_config
from detector.config import Settings

pytestmark = pytest.mark.integration


@contextmanager
def serving(tmp_path: Path, trusted: list[str]) -> Iterator[str]:
    env = make_env(f"sqlite:///{tmp_path / 'api.db'}", tmp_path)
    port = free_port()
    server = uvicorn.Server(server_config(env.client.app, Settings(api={"trusted_proxies": trusted}),
                                          "127.0.0.1", port))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        env.store.close()


def _failed_logins(base: str, n: int) -> list[int]:
    codes = []
    for i in range(n):
        headers = {"Authorization": "Bearer kw_wrong", "X-Forwarded-For": f"203.0.113.{i}"}
        codes.append(httpx.get(f"{base}/v1/alerts", headers=headers, timeout=10).status_code)
    return codes


def test_by_default_a_forged_forwarded_for_does_not_escape_the_throttle(tmp_path: Path) -> None:
    with serving(tmp_path, []) as base:
        codes = _failed_logins(base, 8)
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}


def test_a_named_proxy_is_believed(tmp_path: Path) -> None:
    with serving(tmp_path, ["127.0.0.1"]) as base:
        assert _failed_logins(base, 8) == [401] * 8  # each forwarded address is counted on its own
