"""The Slack outbox: messages wait in ``slack_outbox`` until Slack accepts them, retried on failure.

:func:`enqueue` stores a message once per ``dedupe_key``; :class:`SlackSender` sends the ones due.
A 429 is Slack asking to wait: the message waits exactly ``Retry-After`` seconds and does not use
up an attempt. HTTP 5xx, transient Slack errors and unreachable servers back off exponentially
with jitter (slack-sdk's calculator) until ``max_attempts``; errors retrying cannot fix
(``invalid_auth``, ``channel_not_found``, ...) fail at once. The outbox owns retries, so the
slack-sdk client it uses has its own retry handlers turned off (:func:`client_for`).

Delivery is at least once: a sender claims due messages for ``LEASE_SECONDS`` before sending, so
two senders never send the same message together, but a sender that dies between Slack's answer
and recording it sends that message again once the lease runs out.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.client import HTTPException
from typing import Any, Literal
from urllib.error import URLError

import sqlalchemy as sa
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry import BackoffRetryIntervalCalculator, RetryIntervalCalculator
from slack_sdk.web import SlackResponse
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from detector.adapters.store import Store
from detector.adapters.store import tables as t
from detector.adapters.store.rows import to_dt, to_ts
from detector.config import SlackSettings
from detector.domain.errors import ConfigError, KeyWatchError

log = logging.getLogger(__name__)

METHODS = frozenset({"chat.postMessage", "chat.update"})
PENDING, SENT, FAILED = "pending", "sent", "failed"
LEASE_SECONDS = 120.0
CLIENT_TIMEOUT = 10
# Slack errors no retry can fix: bad credentials or scopes, a channel or message that is not there
# or not writable, a malformed message.
PERMANENT_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "not_allowed_token_type",
        "ekm_access_denied",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "restricted_action",
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "msg_too_long",
        "msg_blocks_too_long",
        "no_text",
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_arguments",
        "invalid_arg_name",
        "too_many_attachments",
        "unknown_method",
    }
)


class OutboxError(KeyWatchError):
    """A message the outbox refuses to store (unknown method, no channel, not JSON)."""


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One stored message; times are epoch seconds."""

    message_id: int
    dedupe_key: str
    method: str
    channel: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    slack_ts: str | None
    created_at: float


@dataclass(slots=True)
class DeliveryReport:
    """What one round of :meth:`SlackSender.deliver_due` did."""

    claimed: int = 0
    sent: int = 0
    retrying: int = 0  # failed transiently, will be tried again later
    failed: int = 0  # given up on
    postponed: int = 0  # not tried this round: Slack was rate limiting or unreachable
    rate_limited_until: float | None = None
    sent_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Outcome:
    kind: Literal["sent", "retry", "rate_limited", "failed"]
    error: str | None = None
    slack_ts: str | None = None
    retry_after: float = 0.0


# -- storing ------------------------------------------------------------------------------------


def enqueue(
    store: Store,
    *,
    dedupe_key: str,
    channel: str,
    payload: Mapping[str, Any],
    method: str = "chat.postMessage",
    now: float | None = None,
) -> int:
    """Store a message for delivery and return its id; a ``dedupe_key`` already stored keeps its message.

    ``payload`` is the Web API call's arguments without ``channel`` (``text``, ``blocks``, and
    ``ts`` for ``chat.update``).
    """
    _check(dedupe_key, channel, payload, method)
    stamp = to_dt(time.time() if now is None else now)
    row = {
        "dedupe_key": dedupe_key,
        "method": method,
        "channel": channel,
        "payload": dict(payload),
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": stamp,
        "created_at": stamp,
    }
    with store.writing() as conn:
        conn.execute(_insert(conn).values(row).on_conflict_do_nothing(index_elements=["dedupe_key"]))
        query = sa.select(t.slack_outbox.c.message_id).where(t.slack_outbox.c.dedupe_key == dedupe_key)
        return int(conn.execute(query).scalar_one())


def _check(dedupe_key: str, channel: str, payload: Mapping[str, Any], method: str) -> None:
    if method not in METHODS:
        raise OutboxError(f"the Slack outbox sends {' and '.join(sorted(METHODS))}, not {method!r}")
    if not dedupe_key or len(dedupe_key) > 200:
        raise OutboxError("a Slack outbox dedupe key needs 1 to 200 characters")
    if not channel or len(channel) > 128:
        raise OutboxError("a Slack message needs a channel (1 to 128 characters)")
    if method == "chat.update" and not payload.get("ts"):
        raise OutboxError("chat.update needs the ts of the message it changes")
    try:
        json.dumps(payload)
    except (TypeError, ValueError) as exc:
        raise OutboxError(f"a Slack message payload must be JSON: {exc}") from None


def _insert(conn: Connection) -> Any:
    """A dialect INSERT that knows ON CONFLICT."""
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(t.slack_outbox)


def get_message(store: Store, message_id: int) -> OutboxMessage | None:
    """One stored message, or None."""
    query = sa.select(t.slack_outbox).where(t.slack_outbox.c.message_id == message_id)
    with store.reading() as conn:
        row = conn.execute(query).mappings().first()
    return _message(row) if row else None


def list_messages(store: Store, *, status: str | None = None, limit: int = 100) -> list[OutboxMessage]:
    """Stored messages, oldest first, optionally only those in ``status``."""
    c = t.slack_outbox.c
    query = sa.select(t.slack_outbox).order_by(c.message_id).limit(limit)
    if status is not None:
        query = query.where(c.status == status)
    with store.reading() as conn:
        return [_message(row) for row in conn.execute(query).mappings()]


def _message(row: Any) -> OutboxMessage:
    return OutboxMessage(
        message_id=row["message_id"],
        dedupe_key=row["dedupe_key"],
        method=row["method"],
        channel=row["channel"],
        payload=dict(row["payload"]),
        status=row["status"],
        attempts=row["attempts"],
        next_attempt_at=to_ts(row["next_attempt_at"]),
        last_error=row["last_error"],
        slack_ts=row["slack_ts"],
        created_at=to_ts(row["created_at"]),
    )


# -- sending ------------------------------------------------------------------------------------


def client_for(settings: SlackSettings, *, timeout: int = CLIENT_TIMEOUT) -> WebClient:
    """A slack-sdk client for ``settings`` (token, ``base_url``) without retry handlers of its own."""
    if settings.token is None:
        raise ConfigError("slack.token is not set (KEYWATCH_SLACK__TOKEN or slack.token in the config file)")
    return WebClient(
        token=settings.token.get_secret_value(),
        base_url=settings.base_url,
        timeout=timeout,
        retry_handlers=[],
    )


class SlackSender:
    """Send the outbox's due messages through a slack-sdk ``WebClient``."""

    def __init__(
        self,
        client: WebClient,
        store: Store,
        max_attempts: int = 8,
        *,
        batch_size: int = 50,
        backoff: RetryIntervalCalculator | None = None,
        max_delay: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``backoff`` gives the delay after the n-th failed attempt (default 5, 10, 20, ... s + jitter)."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.client = client
        self.store = store
        self.max_attempts = max_attempts
        self.batch_size = batch_size
        self.backoff = backoff or BackoffRetryIntervalCalculator(backoff_factor=5.0)
        self.max_delay = max_delay
        self._clock = clock

    def deliver_due(self, now: float | None = None) -> DeliveryReport:
        """Send the pending messages due at ``now`` (default: the clock), oldest first.

        A rate limit or a transient failure ends the round: the messages not yet tried wait
        (until the rate limit ends, or the next round).
        """
        now = self._clock() if now is None else now
        report = DeliveryReport()
        claimed = self._claim(now)
        report.claimed = len(claimed)
        for i, msg in enumerate(claimed):
            outcome = self._send(msg)
            self._record(msg, outcome, now, report)
            if outcome.kind in ("retry", "rate_limited"):
                rest = claimed[i + 1 :]
                self._release(rest, now + outcome.retry_after)
                report.postponed = len(rest)
                break
        return report

    def run_forever(self, stop_event: threading.Event, poll_seconds: float = 1.0) -> None:
        """Deliver until ``stop_event`` is set; a full batch goes on at once, otherwise wait a poll."""
        log.info("Slack outbox sender started (poll every %.1f s)", poll_seconds)
        while not stop_event.is_set():
            try:
                report = self.deliver_due()
            except KeyWatchError as exc:  # the store is unreachable: try again next poll
                log.warning("Slack outbox: %s", exc)
                report = DeliveryReport()
            if report.claimed < self.batch_size or report.postponed:
                stop_event.wait(poll_seconds)
        log.info("Slack outbox sender stopped")

    def _claim(self, now: float) -> list[OutboxMessage]:
        c = t.slack_outbox.c
        query = (
            sa.select(t.slack_outbox)
            .where(c.status == PENDING, c.next_attempt_at <= to_dt(now))
            .order_by(c.next_attempt_at, c.message_id)
            .limit(self.batch_size)
        )
        with self.store.writing() as conn:
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            claimed = [_message(row) for row in conn.execute(query).mappings()]
            if claimed:
                ids = [m.message_id for m in claimed]
                lease = to_dt(now + LEASE_SECONDS)
                conn.execute(
                    t.slack_outbox.update().where(c.message_id.in_(ids)).values(next_attempt_at=lease)
                )
        return claimed

    def _release(self, messages: Sequence[OutboxMessage], at: float) -> None:
        if not messages:
            return
        c = t.slack_outbox.c
        ids = [m.message_id for m in messages]
        with self.store.writing() as conn:
            where = sa.and_(c.message_id.in_(ids), c.status == PENDING)
            conn.execute(t.slack_outbox.update().where(where).values(next_attempt_at=to_dt(at)))

    def _send(self, msg: OutboxMessage) -> _Outcome:
        try:
            response = self.client.api_call(msg.method, json={**msg.payload, "channel": msg.channel})
        except SlackApiError as exc:
            return classify(exc.response)
        except (URLError, HTTPException, OSError) as exc:
            return _Outcome("retry", f"Slack unreachable: {_reason(exc)}")
        except SlackClientError as exc:  # slack-sdk refused to build the request
            return _Outcome("failed", f"slack-sdk refused the request: {type(exc).__name__}")
        ts = response.get("ts")
        return _Outcome("sent", slack_ts=str(ts) if ts is not None else None)

    def _record(self, msg: OutboxMessage, outcome: _Outcome, now: float, report: DeliveryReport) -> None:
        values = self._result(msg, outcome, now)
        status = values.get("status", PENDING)
        tag = f"message {msg.message_id} ({msg.dedupe_key})"
        if status == SENT:
            report.sent += 1
            report.sent_ids.append(msg.message_id)
            log.info("Slack outbox: sent %s", tag)
        elif status == FAILED:
            report.failed += 1
            log.error("Slack outbox: %s failed: %s", tag, values["last_error"])
        elif outcome.kind == "rate_limited":
            report.rate_limited_until = now + outcome.retry_after
            log.warning("Slack outbox: %s %s", tag, outcome.error)
        else:
            report.retrying += 1
            log.warning("Slack outbox: %s, attempt %d: %s", tag, values["attempts"], outcome.error)
        c = t.slack_outbox.c
        with self.store.writing() as conn:
            where = sa.and_(c.message_id == msg.message_id, c.status == PENDING)
            conn.execute(t.slack_outbox.update().where(where).values(values))

    def _result(self, msg: OutboxMessage, outcome: _Outcome, now: float) -> dict[str, Any]:
        """The row's new values after ``outcome``."""
        attempts = msg.attempts + 1
        if outcome.kind == "sent":
            return {"status": SENT, "attempts": attempts, "slack_ts": outcome.slack_ts, "last_error": None}
        if outcome.kind == "rate_limited":  # Slack asked to wait: not a failed attempt
            return {"next_attempt_at": to_dt(now + outcome.retry_after), "last_error": outcome.error}
        if outcome.kind == "failed":
            return {"status": FAILED, "attempts": attempts, "last_error": outcome.error}
        if attempts >= self.max_attempts:
            error = f"gave up after {attempts} attempts: {outcome.error}"
            return {"status": FAILED, "attempts": attempts, "last_error": error}
        delay = min(self.max_delay, self.backoff.calculate_sleep_duration(msg.attempts))
        return {"attempts": attempts, "next_attempt_at": to_dt(now + delay), "last_error": outcome.error}


def classify(response: SlackResponse) -> _Outcome:
    """What a failed Web API response means for the message: wait, retry, or give up."""
    status = response.status_code
    data = response.data if isinstance(response.data, dict) else {}
    error = str(data.get("error") or f"HTTP {status}")
    if status == 429:
        after = retry_after(response.headers)
        if after is not None:
            return _Outcome("rate_limited", f"rate limited: retry after {after:g} s", retry_after=after)
        return _Outcome("retry", "rate limited without Retry-After")
    if status >= 500:
        return _Outcome("retry", f"HTTP {status}")
    if error in PERMANENT_ERRORS or 400 <= status < 500:
        return _Outcome("failed", error)
    return _Outcome("retry", error)


def retry_after(headers: Mapping[str, Any]) -> float | None:
    """The ``Retry-After`` seconds of a response, or None when absent or not a number."""
    for name, value in headers.items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) and value else value
            try:
                seconds = float(raw)
            except (TypeError, ValueError):
                return None
            return seconds if seconds >= 0 else None
    return None


def _reason(exc: BaseException) -> str:
    """One line about a connection failure (urllib wraps the socket error in ``reason``)."""
    inner = getattr(exc, "reason", None)
    text = str(inner if isinstance(inner, BaseException | str) else exc) or type(exc).__name__
    return text.splitlines()[0][:200]
