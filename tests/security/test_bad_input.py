"""Ordinary bad input is a 4xx that names the problem, never a 500, and never echoes what was sent.

Before: a lone surrogate in a text field and ``1e400`` gave 500 (the 422 echoed a value JSON cannot
hold); a non-UTF-8 or deeply nested body to ``/slack/interactions`` gave 500 without a valid
signature; and a 500 did not show in the API's metrics.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import Env, make_env
from fastapi.testclient import TestClient

from detector.domain.incidents import incident_id_for

pytestmark = pytest.mark.integration
SECRET = "s3cret"


@pytest.fixture
def client(env: Env) -> Iterator[TestClient]:
    with TestClient(env.client.app, raise_server_exceptions=False) as c:
        yield c


def _note(env: Env, client: TestClient, body: bytes) -> tuple[int, str]:
    incident = incident_id_for(env.alert())
    headers = {**env.auth("ann"), "Content-Type": "application/json"}
    response = client.post(f"/v1/incidents/{incident}/notes", content=body, headers=headers)
    return response.status_code, response.text


@pytest.mark.parametrize(
    "body",
    [b'{"text": "\\ud800"}', b'{"text": "a\\udfff"}', b'{"text": 1e400}', b'{"text": -1e400}',
     b'{"text": [' * 2000 + b"]" * 2000 + b"}"],
    ids=["high-surrogate", "low-surrogate", "1e400", "-1e400", "deep"],
)  # fmt: skip
def test_bad_values_are_refused_as_such(env: Env, client: TestClient, body: bytes) -> None:
    status, text = _note(env, client, body)
    assert status in (400, 422), text  # 400: not parseable as JSON at all (nested too deep)


def test_a_validation_error_never_echoes_the_input(env: Env, client: TestClient) -> None:
    huge = "A" * 200_000
    status, text = _note(env, client, b'{"text": ["' + huge.encode() + b'"]}')
    assert status == 422 and huge[:100] not in text and len(text) < 2_000


def test_paired_surrogates_are_text(env: Env, client: TestClient) -> None:
    status, text = _note(env, client, b'{"text": "ok \\ud83d\\ude00"}')
    assert status == 200, text


def _slack(client: TestClient, body: bytes, *, signed: bool) -> int:
    stamp = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    headers = {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest if signed else '0'}",
               "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
    return client.post("/slack/interactions", content=body, headers=headers).status_code


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
@pytest.mark.parametrize(
    "body",
    [b"payload=\xff\xfe", b"\xff" * 10, b"payload=" + b"%5B" * 100_000],
    ids=["latin", "bytes", "deep"],
)
def test_slack_interactions_refuse_bad_bodies_without_a_500(
    db_url: str, tmp_path: Path, body: bytes, signed: bool
) -> None:
    e = make_env(db_url, tmp_path, settings={"slack": {"signing_secret": SECRET}})
    with TestClient(e.client.app, raise_server_exceptions=False) as c:
        assert _slack(c, body, signed=signed) in (400, 401)
    e.store.close()


def test_a_500_shows_in_the_metrics(env: Env, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(env.store, "list_alerts", broken)
    assert client.get("/v1/alerts", headers=env.auth("ann")).status_code == 500
    metrics = client.get("/metrics").text
    assert 'keywatch_api_requests_total{method="GET",route="/alerts",status="500"} 1.0' in metrics
