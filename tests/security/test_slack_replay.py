"""A captured Slack request cannot be played again: not to another API process, not after a restart.

The signatures already accepted lived in one process's memory, so a replay sent after a restart
(or to a second API process behind the same load balancer) was accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from detector.adapters.store import Store
from detector.api import create_app
from detector.config import Settings

pytestmark = pytest.mark.integration
SECRET = "s3cret"


def _press(client: TestClient, body: bytes, stamp: str) -> tuple[int, str]:
    digest = hmac.new(SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    headers = {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}",
               "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
    response = client.post("/slack/interactions", content=body, headers=headers)
    return response.status_code, response.text


def test_a_replay_is_refused_by_a_restarted_or_second_api(store: Store, tmp_path: Path) -> None:
    settings = Settings(slack={"signing_secret": SECRET}, response={"playbooks_dir": tmp_path})
    body, stamp = b'payload={"type": "view_closed"}', str(int(time.time()))
    with TestClient(create_app(settings, store)) as first:
        status, text = _press(first, body, stamp)
        assert status != 401, text
        assert _press(first, body, stamp) == (401, '{"detail":"replayed Slack request"}')
    with TestClient(create_app(settings, store)) as restarted:  # a new process, the same store
        assert _press(restarted, body, stamp) == (401, '{"detail":"replayed Slack request"}')
        other = b'payload={"type": "view_closed", "n": 2}'
        assert _press(restarted, other, stamp)[0] != 401, "a different request is not a replay"
