"""``POST /slack/interactions``: the Approve, Deny and Disable key buttons of KeyWatch messages.

A request must carry Slack's signature over its exact body, made within five minutes, and not
seen before (timestamp and signature are remembered for the five minutes, in this process);
anything else is refused with 401 before the body is read as a payload. The Slack user who
pressed the button must be linked to a KeyWatch user whose role allows the action. Every
signed request is acknowledged with 200 and an ephemeral reply, which also goes to the
payload's ``response_url`` (the only way Slack shows a reply to a button press); the
``X-KeyWatch-Outcome`` header says ``done``, ``refused`` or ``error``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Protocol
from urllib.parse import parse_qs

import sqlalchemy as sa
from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import SecretStr
from slack_sdk.signature import Clock, SignatureVerifier
from slack_sdk.webhook import WebhookClient

from detector.adapters.store import Store
from detector.adapters.store import tables as t
from detector.adapters.store.users import UserRepository
from detector.domain.errors import ConfigError, KeyWatchError
from detector.domain.users import Permission, PermissionDeniedError, User
from detector.response.slack_messages import (
    APPROVE,
    DENY,
    DISABLE_KEY,
    REASON_BLOCK,
    REASON_INPUT,
    KeyRef,
    MessageError,
    StepRef,
    escape,
    parse_button,
    truncate,
)

log = logging.getLogger(__name__)

PATH = "/slack/interactions"
WINDOW_SECONDS = 300.0  # Slack's own limit on the age of a signed request
HOOKS_PREFIX = "https://hooks.slack.com/"
REPLY_LIMIT = 3000
_VERBS = {APPROVE: "approve", DENY: "deny", DISABLE_KEY: "disable the key"}
_NEEDS = {APPROVE: Permission.APPROVE, DENY: Permission.APPROVE, DISABLE_KEY: Permission.CHANGE_KEYS}


class InteractionHandler(Protocol):
    """What the buttons do (the playbook runner in production); each returns the text to show."""

    def approve(self, run_id: str, step_index: int, user: User, /) -> str:
        """Approve a waiting approval step."""

    def deny(self, run_id: str, step_index: int, user: User, reason: str, /) -> str:
        """Deny a waiting approval step, stopping its run."""

    def disable_key(self, key_id: str, user: User, /) -> str:
        """Disable a key now."""


class ReplayGuard:
    """The signatures of requests accepted in the last ``window`` seconds, kept in the store.

    Every API process shares them and a restart keeps them, so a captured request cannot be
    played again within Slack's five minutes.
    """

    def __init__(self, store: Store, window: float = WINDOW_SECONDS) -> None:
        """Remember in ``store``; forget signatures older than ``window`` seconds."""
        self.store = store
        self.window = window

    def first_time(self, timestamp: int, signature: str, now: float) -> bool:
        """True the first time a signature is offered, False for a replay."""
        replays = t.slack_replays
        try:
            with self.store.writing() as conn:
                conn.execute(sa.delete(replays).where(replays.c.request_ts < int(now - self.window) - 1))
                conn.execute(replays.insert().values(signature=signature[:128], request_ts=timestamp))
        except sa.exc.IntegrityError:
            return False
        return True


class _Clock(Clock):
    """slack-sdk's clock interface over a plain callable, so tests can move time."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()


class _Reply:
    def __init__(self, text: str, outcome: str = "done") -> None:
        self.text = text
        self.outcome = outcome


async def _raw_body(request: Request) -> bytes:
    """The exact bytes Slack signed."""
    return await request.body()


def interactions_router(
    handler: InteractionHandler,
    signing_secret: SecretStr | str,
    store: Store,
    *,
    clock: Callable[[], float] = time.time,
    response_url_prefix: str = HOOKS_PREFIX,
) -> APIRouter:
    """A router with ``POST /slack/interactions`` dispatching verified button presses to ``handler``.

    Replies are posted to ``response_url`` only when it starts with ``response_url_prefix``.
    """
    secret = signing_secret.get_secret_value() if isinstance(signing_secret, SecretStr) else signing_secret
    if not secret.strip():
        raise ConfigError("slack.signing_secret is not set: Slack requests cannot be verified")
    verifier = SignatureVerifier(secret, clock=_Clock(clock))
    guard = ReplayGuard(store)
    users = UserRepository(store)
    router = APIRouter()

    @router.post(PATH, operation_id="slack_interactions")
    def interactions(
        request: Request, body: Annotated[bytes, Depends(_raw_body)], background: BackgroundTasks
    ) -> JSONResponse:
        verify(verifier, guard, request.headers, body, clock())
        payload = parse_payload(body)
        reply = dispatch(handler, users, payload)
        response_url = payload.get("response_url")
        if isinstance(response_url, str) and response_url.startswith(response_url_prefix):
            background.add_task(respond, response_url, reply.text)
        return JSONResponse(ephemeral(reply.text), headers={"X-KeyWatch-Outcome": reply.outcome})

    return router


def verify(
    verifier: SignatureVerifier, guard: ReplayGuard, headers: Mapping[str, str], body: bytes, now: float
) -> None:
    """Raise 401 unless the request is signed by Slack, fresh and not a replay."""
    stamp, signature = headers.get("x-slack-request-timestamp"), headers.get("x-slack-signature")
    if not stamp or not signature:
        raise _unauthorized("missing Slack signature headers")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise _unauthorized("malformed Slack request timestamp") from None
    if abs(now - timestamp) > WINDOW_SECONDS:
        raise _unauthorized("stale Slack request: its timestamp is more than 5 minutes away")
    try:
        valid = verifier.is_valid(body, stamp, signature)
    except UnicodeDecodeError:  # Slack signs UTF-8 form data; these bytes are not that
        valid = False
    if not valid:
        raise _unauthorized("invalid Slack signature")
    if not guard.first_time(timestamp, signature, now):
        raise _unauthorized("replayed Slack request")


def _unauthorized(detail: str) -> HTTPException:
    log.warning("Slack interaction refused: %s", detail)
    return HTTPException(status_code=401, detail=detail)


def parse_payload(body: bytes) -> dict[str, Any]:
    """The JSON ``payload`` field of the form-encoded body; 400 when there is none."""
    try:
        raw = parse_qs(body.decode("utf-8")).get("payload", [""])[0]
        payload = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise HTTPException(status_code=400, detail="the body has no JSON payload field") from None
    if not isinstance(payload, dict):
        raise HTTPException(status_code=400, detail="the payload is not a JSON object")
    return payload


def dispatch(handler: InteractionHandler, users: UserRepository, payload: dict[str, Any]) -> _Reply:
    """Map the Slack user to a KeyWatch user, check the role and run the button's action."""
    if payload.get("type") != "block_actions":
        return _Reply("KeyWatch only handles its buttons here.", "refused")
    slack_id = _field(payload, "user", "id")
    user = users.by_slack_id(slack_id) if isinstance(slack_id, str) else None
    if user is None or user.disabled:
        log.warning("Slack interaction refused: Slack user %r is not an active KeyWatch user", slack_id)
        return _Reply("Refused: your Slack account is not linked to an active KeyWatch user.", "refused")
    actions = payload.get("actions")
    pressed = [a for a in actions if isinstance(a, dict)] if isinstance(actions, list) else []
    action = next((a for a in pressed if str(a.get("action_id")) in _VERBS), None)
    if action is None:
        return _Reply("Nothing to do: this is not a KeyWatch button.", "refused")
    action_id, verb = action["action_id"], _VERBS[action["action_id"]]
    try:
        user.require(_NEEDS[action_id])
        ref = parse_button(action_id, str(action.get("value", "")))
        log.info("Slack: %s pressed %s (%s)", user.name, action_id, ref)
        return _Reply(_run(handler, action_id, ref, user, _reason(payload)))
    except PermissionDeniedError as exc:
        log.warning("Slack interaction refused: %s", exc)
        return _Reply(f"Refused: {exc}", "refused")
    except MessageError as exc:
        return _Reply(f"Cannot {verb}: {exc}", "refused")
    except KeyWatchError as exc:
        log.warning("Slack interaction by %s failed: %s", user.name, exc)
        return _Reply(f"Could not {verb}: {exc}", "error")


def _run(handler: InteractionHandler, action_id: str, ref: StepRef | KeyRef, user: User, reason: str) -> str:
    if isinstance(ref, KeyRef):
        return handler.disable_key(ref.key_id, user)
    if action_id == APPROVE:
        return handler.approve(ref.run_id, ref.step_index, user)
    return handler.deny(ref.run_id, ref.step_index, user, reason)


def _field(data: Any, *path: str) -> Any:
    """``data[path[0]][path[1]]...``, or None where a level is missing or not an object."""
    for name in path:
        if not isinstance(data, dict):
            return None
        data = data.get(name)
    return data


def _reason(payload: dict[str, Any]) -> str:
    """The text typed in the message's reason input, if any."""
    text = _field(payload, "state", "values", REASON_BLOCK, REASON_INPUT, "value")
    return text.strip() if isinstance(text, str) and text.strip() else "no reason given (denied in Slack)"


def ephemeral(text: str) -> dict[str, Any]:
    """A reply only the person who pressed the button sees; the text is escaped for mrkdwn."""
    return {
        "response_type": "ephemeral",
        "replace_original": False,
        "text": truncate(escape(text), REPLY_LIMIT),
    }


def respond(response_url: str, text: str) -> None:
    """Post the reply to the interaction's ``response_url`` (after the 200 went out)."""
    try:
        response = WebhookClient(response_url, timeout=5).send(**ephemeral(text))
    except Exception as exc:  # a lost reply must not break anything else
        log.warning("Slack reply to the interaction could not be posted: %s", type(exc).__name__)
        return
    if response.status_code != 200:
        log.warning("Slack reply to the interaction refused: HTTP %s", response.status_code)
