"""Slack against a local Web API server: the outbox on SQLite and PostgreSQL, users, the buttons endpoint."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from slack_sdk.signature import SignatureVerifier
from slack_server import SlackServer

from detector.adapters.slack.interactions import interactions_router
from detector.adapters.slack.outbox import (
    FAILED,
    PENDING,
    SENT,
    OutboxError,
    SlackSender,
    client_for,
    enqueue,
    get_message,
    list_messages,
)
from detector.adapters.store import Store
from detector.adapters.store.users import DuplicateUserError, UserRepository
from detector.config import SlackSettings
from detector.domain.alerts import Alert, Reason, Severity, alert_id_for
from detector.domain.errors import ConfigError, KeyWatchError
from detector.domain.incidents import open_incident
from detector.domain.users import Role, User, UserError
from detector.response import slack_messages as sm

pytestmark = pytest.mark.integration

TOKEN = "xoxb-test-0123456789-secret"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
T0 = 1_714_348_800.0


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    server = SlackServer(token=TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    with Store(f"sqlite:///{tmp_path / 'store.db'}") as s:
        s.migrate()
        yield s


def settings_for(server: SlackServer, token: str = TOKEN) -> SlackSettings:
    return SlackSettings(token=SecretStr(token), base_url=server.api_url)


def sender_for(store: Store, server: SlackServer, max_attempts: int = 3, token: str = TOKEN) -> SlackSender:
    return SlackSender(client_for(settings_for(server, token)), store, max_attempts)


def incident_payload() -> dict[str, Any]:
    alert = Alert(
        alert_id=alert_id_for("k1", "new_geography", "p1", T0),
        key_id="k1",
        principal="<!channel>",
        detector="new_geography",
        severity=Severity.HIGH,
        score=1.0,
        window_start=T0,
        window_end=T0 + 60,
        first_window_start=T0,
        reasons=[Reason("new_country_events", 3, "DE", "3 calls from BR")],
        event_ids=["e1"],
    )
    return sm.incident_message(open_incident(alert), [alert], countries=["BR"])


# -- outbox -------------------------------------------------------------------------------------


def test_outbox_delivers_through_slack_sdk(store: Store, slack: SlackServer) -> None:
    now = time.time()
    first = enqueue(
        store, dedupe_key="incident:1:new", channel="#keywatch", payload=incident_payload(), now=now
    )
    second = enqueue(store, dedupe_key="step:r1:0", channel="C0123", payload={"text": "step done"}, now=now)
    sender = sender_for(store, slack)
    report = sender.deliver_due(now)
    assert (report.claimed, report.sent, report.failed, report.retrying) == (2, 2, 0, 0)
    calls = slack.calls("chat.postMessage")
    assert [c.body["channel"] for c in calls] == ["#keywatch", "C0123"]
    assert all(c.headers["authorization"] == f"Bearer {TOKEN}" for c in calls)
    assert calls[0].headers["content-type"].startswith("application/json")
    assert calls[0].body["blocks"] == incident_payload()["blocks"]
    assert "&lt;!channel&gt;" in calls[0].body["text"]
    for message_id in (first, second):
        msg = get_message(store, message_id)
        assert msg is not None and msg.status == SENT and msg.attempts == 1 and msg.slack_ts
    assert sender.deliver_due(now + 3600).claimed == 0  # sent once, never again
    assert len(slack.calls("chat.postMessage")) == 2


def test_chat_update_and_auth_test(sqlite_store: Store, slack: SlackServer) -> None:
    client = client_for(settings_for(slack))
    assert client.retry_handlers == []  # the outbox owns retries
    assert client.auth_test()["user_id"] == "U0000BOT"
    now = time.time()
    payload = {"ts": "1700000000.000001", "text": "approved by rob"}
    enqueue(sqlite_store, dedupe_key="u1", channel="C1", payload=payload, method="chat.update", now=now)
    assert SlackSender(client, sqlite_store).deliver_due(now).sent == 1
    (call,) = slack.calls("chat.update")
    assert call.body == {"channel": "C1", "ts": "1700000000.000001", "text": "approved by rob"}


def test_rate_limit_honours_retry_after_exactly(store: Store, slack: SlackServer) -> None:
    now = time.time()
    ids = [
        enqueue(store, dedupe_key=f"m{i}", channel="C1", payload={"text": f"m{i}"}, now=now) for i in range(3)
    ]
    slack.fail_next(1, "ratelimit", retry_after=30)
    sender = sender_for(store, slack)
    report = sender.deliver_due(now)
    assert (report.sent, report.postponed, report.rate_limited_until) == (0, 2, now + 30)
    for message_id in ids:
        msg = get_message(store, message_id)
        assert msg is not None and msg.status == PENDING and msg.attempts == 0
        assert msg.next_attempt_at == pytest.approx(now + 30, abs=1e-3)
    assert [m.last_error for m in list_messages(store)] == ["rate limited: retry after 30 s", None, None]
    assert len(slack.calls("chat.postMessage")) == 1  # the rest were not even tried
    assert sender.deliver_due(now + 29.9).claimed == 0
    assert sender.deliver_due(now + 30).sent == 3
    assert [c.body["text"] for c in slack.calls("chat.postMessage")] == ["m0", "m0", "m1", "m2"]


def test_unreachable_slack_loses_nothing(
    store: Store, slack: SlackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    now = time.time()
    ids = [
        enqueue(store, dedupe_key=f"m{i}", channel="C1", payload={"text": f"m{i}"}, now=now) for i in range(2)
    ]
    slack.stop()
    sender = sender_for(store, slack, max_attempts=5)
    report = sender.deliver_due(now)
    assert (report.sent, report.retrying, report.postponed) == (0, 1, 1)
    msg = get_message(store, ids[0])
    assert msg is not None and msg.status == PENDING and msg.attempts == 1
    assert now + 5 <= msg.next_attempt_at <= now + 6  # 5 s backoff + up to 1 s jitter
    assert msg.last_error is not None and "unreachable" in msg.last_error
    later = get_message(store, ids[1])
    assert later is not None and later.attempts == 0 and later.next_attempt_at == pytest.approx(now, abs=1e-3)
    assert sender.deliver_due(now + 1).retrying == 1  # the other one tried and backed off too
    slack.start()  # Slack is back, on the same port
    assert sender.deliver_due(now + 3600).sent == 2
    assert sorted(c.body["text"] for c in slack.calls("chat.postMessage")) == ["m0", "m1"]
    assert all(m.status == SENT for m in list_messages(store))
    assert TOKEN not in caplog.text


def test_server_errors_back_off_then_fail(store: Store, slack: SlackServer) -> None:
    now = time.time()
    message_id = enqueue(store, dedupe_key="m", channel="C1", payload={"text": "m"}, now=now)
    slack.fail_next(3, "server_error")
    sender = sender_for(store, slack, max_attempts=3)
    delays = []
    at = now
    for _ in range(2):
        assert sender.deliver_due(at).retrying == 1
        msg = get_message(store, message_id)
        assert msg is not None and msg.last_error == "HTTP 500"
        delays.append(msg.next_attempt_at - at)
        at = msg.next_attempt_at
    assert 5 <= delays[0] <= 6 and 10 <= delays[1] <= 11  # exponential, with jitter
    assert sender.deliver_due(at).failed == 1
    msg = get_message(store, message_id)
    assert msg is not None and (msg.status, msg.attempts) == (FAILED, 3)
    assert msg.last_error == "gave up after 3 attempts: HTTP 500"
    assert sender.deliver_due(at + 86400).claimed == 0


def test_permanent_errors_fail_at_once(store: Store, slack: SlackServer) -> None:
    now = time.time()
    lost = enqueue(store, dedupe_key="lost", channel="C404", payload={"text": "x"}, now=now)
    fine = enqueue(store, dedupe_key="fine", channel="C1", payload={"text": "y"}, now=now)
    slack.fail_next(1, "channel_not_found")
    report = sender_for(store, slack).deliver_due(now)
    assert (report.failed, report.sent) == (1, 1)  # a permanent failure does not stop the round
    msg = get_message(store, lost)
    assert msg is not None and (msg.status, msg.attempts, msg.last_error) == (FAILED, 1, "channel_not_found")
    assert (get_message(store, fine) or pytest.fail()).status == SENT


def test_invalid_token_fails_at_once_and_is_never_logged(
    sqlite_store: Store, slack: SlackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "xoxb-wrong-token-do-not-log"
    now = time.time()
    message_id = enqueue(sqlite_store, dedupe_key="m", channel="C1", payload={"text": "x"}, now=now)
    assert sender_for(sqlite_store, slack, token=wrong).deliver_due(now).failed == 1
    msg = get_message(sqlite_store, message_id)
    assert msg is not None and (msg.status, msg.last_error) == (FAILED, "invalid_auth")
    assert slack.calls("chat.postMessage")[0].headers["authorization"] == f"Bearer {wrong}"
    assert wrong not in caplog.text


def test_enqueue_is_idempotent_by_dedupe_key(store: Store, slack: SlackServer) -> None:
    now = time.time()
    first = enqueue(store, dedupe_key="run:1:step:0", channel="C1", payload={"text": "first"}, now=now)
    again = enqueue(store, dedupe_key="run:1:step:0", channel="C2", payload={"text": "second"}, now=now)
    assert first == again
    assert len(list_messages(store)) == 1
    sender_for(store, slack).deliver_due(now)
    assert enqueue(store, dedupe_key="run:1:step:0", channel="C1", payload={"text": "x"}) == first
    assert sender_for(store, slack).deliver_due(now + 60).claimed == 0
    assert [c.body["text"] for c in slack.calls("chat.postMessage")] == ["first"]


def test_enqueue_refuses_what_it_cannot_send(sqlite_store: Store) -> None:
    with pytest.raises(OutboxError, match=r"not 'files\.upload'"):
        enqueue(sqlite_store, dedupe_key="a", channel="C1", payload={"text": "x"}, method="files.upload")
    with pytest.raises(OutboxError, match="needs the ts"):
        enqueue(sqlite_store, dedupe_key="a", channel="C1", payload={"text": "x"}, method="chat.update")
    with pytest.raises(OutboxError, match="channel"):
        enqueue(sqlite_store, dedupe_key="a", channel="", payload={"text": "x"})
    with pytest.raises(OutboxError, match="JSON"):
        enqueue(sqlite_store, dedupe_key="a", channel="C1", payload={"text": object()})
    with pytest.raises(ConfigError, match=r"slack\.token"):
        client_for(SlackSettings())
    assert list_messages(sqlite_store) == []


def test_run_forever_delivers_until_stopped(sqlite_store: Store, slack: SlackServer) -> None:
    stop = threading.Event()
    sender = sender_for(sqlite_store, slack)
    worker = threading.Thread(target=sender.run_forever, args=(stop, 0.05))
    worker.start()
    try:
        enqueue(sqlite_store, dedupe_key="m", channel="C1", payload={"text": "live"})
        deadline = time.monotonic() + 10
        while not slack.calls("chat.postMessage") and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        worker.join(5)
    assert not worker.is_alive()
    assert [m.status for m in list_messages(sqlite_store)] == [SENT]


# -- users --------------------------------------------------------------------------------------


def test_users_repository(store: Store) -> None:
    users = UserRepository(store)
    rob = users.add("rob", "responder", "U0ROB")
    users.add("ann", Role.ANALYST)
    assert rob == User("rob", Role.RESPONDER, "U0ROB")
    assert users.get("rob") == rob and users.get("nobody") is None
    assert users.by_slack_id("U0ROB") == rob and users.by_slack_id("U0NONE") is None
    assert [u.name for u in users.list()] == ["ann", "rob"]
    with pytest.raises(DuplicateUserError, match="user rob already exists"):
        users.add("rob", "admin")
    with pytest.raises(DuplicateUserError, match="already belongs to user rob"):
        users.add("ada", "admin", "U0ROB")
    with pytest.raises(UserError, match="unknown role"):
        users.add("eve", "root")
    with pytest.raises(UserError, match="Slack user id"):
        users.add("eve", "admin", "not-an-id")
    assert len(users.list()) == 2


# -- the interactions endpoint ------------------------------------------------------------------


class FakeHandler:
    """Records what the buttons asked for."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.error: Exception | None = None

    def _called(self, *args: Any) -> str:
        self.calls.append(args)
        if self.error is not None:
            raise self.error
        return f"{args[0]} done <by {args[-1].name if isinstance(args[-1], User) else args[-2].name}>"

    def approve(self, run_id: str, step_index: int, user: User) -> str:
        return self._called("approve", run_id, step_index, user)

    def deny(self, run_id: str, step_index: int, user: User, reason: str) -> str:
        return self._called("deny", run_id, step_index, user, reason)

    def disable_key(self, key_id: str, user: User) -> str:
        return self._called("disable_key", key_id, user)


class Bench:
    """A FastAPI app with the interactions router, its users, a fake handler and a movable clock."""

    def __init__(self, store: Store, slack: SlackServer) -> None:
        self.now = time.time()
        self.handler = FakeHandler()
        self.slack = slack
        users = UserRepository(store)
        self.ann = users.add("ann", "analyst", "U0ANN")
        self.rob = users.add("rob", "responder", "U0ROB")
        self.ada = users.add("ada", "admin", "U0ADA")
        app = FastAPI()
        app.include_router(
            interactions_router(
                self.handler,
                SecretStr(SECRET),
                store,
                clock=lambda: self.now,
                response_url_prefix=slack.url + "/hooks/",
            )
        )
        self.client = TestClient(app)

    def press(
        self,
        action_id: str,
        value: dict[str, Any],
        user_id: str = "U0ROB",
        *,
        state: dict[str, Any] | None = None,
        ts: int | None = None,
        secret: str = SECRET,
        response_url: str | None = None,
        body: str | None = None,
    ) -> httpx.Response:
        payload = {
            "type": "block_actions",
            "user": {"id": user_id, "username": "someone"},
            "actions": [{"action_id": action_id, "value": json.dumps(value), "type": "button"}],
            "response_url": response_url or self.slack.url + "/hooks/T1/B1/reply",
            "state": state or {"values": {}},
        }
        body = body if body is not None else urlencode({"payload": json.dumps(payload)})
        stamp = str(int(self.now) if ts is None else ts)
        signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
        return self.client.post(
            "/slack/interactions",
            content=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": stamp,
                "X-Slack-Signature": signature or "",
            },
        )


@pytest.fixture
def bench(sqlite_store: Store, slack: SlackServer) -> Bench:
    return Bench(sqlite_store, slack)


STEP = {"run_id": "run-7", "step_index": 1}


def test_valid_press_reaches_the_handler_with_the_mapped_user(bench: Bench) -> None:
    response = bench.press(sm.APPROVE, STEP)
    assert response.status_code == 200
    assert response.headers["x-keywatch-outcome"] == "done"
    assert bench.handler.calls == [("approve", "run-7", 1, bench.rob)]
    reply = response.json()
    assert reply == {
        "response_type": "ephemeral",
        "replace_original": False,
        "text": "approve done &lt;by rob&gt;",
    }
    (posted,) = bench.slack.calls("/hooks/T1/B1/reply")
    assert posted.body["text"] == reply["text"] and posted.body["response_type"] == "ephemeral"


def test_deny_carries_the_typed_reason_and_disable_the_key(bench: Bench) -> None:
    state = {
        "values": {sm.REASON_BLOCK: {sm.REASON_INPUT: {"type": "plain_text_input", "value": " false alarm "}}}
    }
    assert bench.press(sm.DENY, STEP, "U0ADA", state=state).status_code == 200
    bench.now += 1
    assert bench.press(sm.DENY, STEP).status_code == 200
    bench.now += 1
    assert bench.press(sm.DISABLE_KEY, {"key_id": "k1"}).status_code == 200
    assert bench.handler.calls == [
        ("deny", "run-7", 1, bench.ada, "false alarm"),
        ("deny", "run-7", 1, bench.rob, "no reason given (denied in Slack)"),
        ("disable_key", "k1", bench.rob),
    ]


def test_bad_signature_is_refused(bench: Bench) -> None:
    response = bench.press(sm.APPROVE, STEP, secret="not-the-secret")
    assert response.status_code == 401 and response.json()["detail"] == "invalid Slack signature"
    unsigned = bench.client.post("/slack/interactions", content="payload=%7B%7D")
    assert unsigned.status_code == 401 and "missing" in unsigned.json()["detail"]
    assert bench.handler.calls == []
    assert bench.slack.requests == []


@pytest.mark.parametrize("age", [301, -301, 3600])
def test_stale_request_is_refused(bench: Bench, age: int) -> None:
    response = bench.press(sm.APPROVE, STEP, ts=int(bench.now) - age)
    assert response.status_code == 401 and "stale" in response.json()["detail"]
    assert bench.handler.calls == []


def test_replayed_request_is_refused(bench: Bench) -> None:
    assert bench.press(sm.APPROVE, STEP).status_code == 200
    bench.now += 60  # still within Slack's five minutes
    replay = bench.press(sm.APPROVE, STEP, ts=int(bench.now) - 60)
    assert replay.status_code == 401 and replay.json()["detail"] == "replayed Slack request"
    assert len(bench.handler.calls) == 1


def test_unknown_slack_user_is_refused(bench: Bench) -> None:
    response = bench.press(sm.APPROVE, STEP, "U0STRANGER")
    assert response.status_code == 200 and response.headers["x-keywatch-outcome"] == "refused"
    assert "not linked" in response.json()["text"]
    assert bench.handler.calls == []
    assert "not linked" in bench.slack.calls("/hooks/T1/B1/reply")[0].body["text"]


def test_analyst_cannot_approve_and_is_told_the_role_needed(bench: Bench) -> None:
    response = bench.press(sm.APPROVE, STEP, "U0ANN")
    assert response.headers["x-keywatch-outcome"] == "refused"
    assert response.json()["text"] == (
        "Refused: ann is an analyst: approving or denying a playbook step needs the responder or admin role"
    )
    bench.now += 1
    disable = bench.press(sm.DISABLE_KEY, {"key_id": "k1"}, "U0ANN")
    assert "disabling or changing keys needs the responder or admin role" in disable.json()["text"]
    assert bench.handler.calls == []


def test_handler_errors_become_an_ephemeral_text(bench: Bench) -> None:
    bench.handler.error = KeyWatchError("step 1 of run run-7 is not waiting for approval (done)")
    response = bench.press(sm.APPROVE, STEP)
    assert response.status_code == 200 and response.headers["x-keywatch-outcome"] == "error"
    assert (
        response.json()["text"] == "Could not approve: step 1 of run run-7 is not waiting for approval (done)"
    )


def test_foreign_button_values_and_bodies(bench: Bench) -> None:
    response = bench.press(sm.APPROVE, {"run_id": "r"})
    assert response.status_code == 200 and "lacks its fields" in response.json()["text"]
    for odd in ({"type": "block_actions", "user": "U0ROB"}, {"type": "block_actions", "actions": "x"}):
        bench.now += 1
        body = urlencode({"payload": json.dumps(odd)})
        assert bench.press(sm.APPROVE, STEP, body=body).headers["x-keywatch-outcome"] == "refused"
    bench.now += 1
    shortcut = urlencode({"payload": json.dumps({"type": "shortcut", "user": {"id": "U0ROB"}})})
    assert "only handles its buttons" in bench.press(sm.APPROVE, STEP, body=shortcut).json()["text"]
    bench.now += 1
    assert bench.press(sm.APPROVE, STEP, body="no=payload").status_code == 400
    bench.now += 1
    assert bench.press(sm.APPROVE, STEP, body="payload=%5B1%5D").status_code == 400
    assert bench.handler.calls == []


def test_reply_goes_only_to_slack_response_urls(bench: Bench) -> None:
    response = bench.press(sm.APPROVE, STEP, response_url="http://169.254.169.254/latest/meta-data")
    assert response.status_code == 200 and bench.handler.calls
    assert bench.slack.requests == []  # nothing posted anywhere but the allowed prefix


def test_router_needs_a_signing_secret(sqlite_store: Store) -> None:
    with pytest.raises(ConfigError, match="signing_secret"):
        interactions_router(FakeHandler(), SecretStr(" "), sqlite_store)
