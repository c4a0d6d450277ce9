"""AWS KMS key backend (boto3): disable, enable, rotate and schedule deletion of KMS keys.

Keys are addressed by key id, key ARN (as CloudTrail records them), alias name (``alias/x`` or
bare ``x``) or alias ARN; each operation first resolves them with DescribeKey and then acts on the
key id, so every operation is idempotent through the key state DescribeKey reports.

* ``rotate`` is RotateKeyOnDemand: KMS gives the key new material under the same key id and keeps
  the old material for decryption, so the successor is the key itself. Only symmetric keys with
  KMS-generated material can rotate; others fail with a reason. KMS has no "already rotated"
  state, so a replayed rotate rotates again (harmless: data stays decryptable).
* ``revoke`` is ScheduleKeyDeletion with ``settings.aws.pending_window_days``. KMS never exports
  key material, so the waiting period is the backup whatever ``backup`` says.
* ``rollback_revoke`` is CancelKeyDeletion; AWS then leaves the key disabled, so enable it to use it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from detector.config import Settings
from detector.domain.errors import ConfigError
from detector.domain.keys import (
    ActionResult,
    BackendUnavailable,
    KeyBackend,
    KeyBackendError,
    KeyInfo,
    KeyState,
    Outcome,
)

log = logging.getLogger(__name__)

# The caller retries with backoff and escalates, so the client gives up quickly.
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=5, read_timeout=20)
TRANSIENT_CODES = frozenset(
    {
        "KMSInternalException",
        "DependencyTimeoutException",
        "ThrottlingException",
        "ServiceUnavailableException",
    }
)
STATES = {
    "Enabled": KeyState.ENABLED,
    "Updating": KeyState.ENABLED,
    "PendingDeletion": KeyState.PENDING_DELETION,
    "PendingReplicaDeletion": KeyState.PENDING_DELETION,
}
USES = {
    "ENCRYPT_DECRYPT": ("ENCRYPT", "DECRYPT"),
    "SIGN_VERIFY": ("SIGN", "VERIFY"),
    "GENERATE_VERIFY_MAC": ("SIGN", "VERIFY"),  # a MAC is a symmetric signature
    "KEY_AGREEMENT": ("DERIVE",),
}
_KEY_ID = re.compile(r"^(mrk-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


class AwsKmsBackend:
    """Keys in one AWS account and region (or a KMS-compatible endpoint such as moto)."""

    name = "aws-kms"

    def __init__(self, client: Any, *, pending_window_days: int = 30) -> None:
        self._client = client
        self._pending_window_days = pending_window_days

    def __repr__(self) -> str:
        return f"AwsKmsBackend(endpoint={self._client.meta.endpoint_url!r})"

    @classmethod
    def from_settings(cls, settings: Settings) -> AwsKmsBackend:
        """A KMS client for ``settings.aws``; credentials come from the usual AWS chain."""
        aws = settings.aws
        try:
            client = boto3.client(
                "kms", region_name=aws.region, endpoint_url=aws.endpoint_url, config=CLIENT_CONFIG
            )
        except NoRegionError as exc:
            raise ConfigError("the aws-kms key backend needs aws.region (or AWS_DEFAULT_REGION)") from exc
        return cls(client, pending_window_days=aws.pending_window_days)

    def inventory(self) -> list[KeyInfo]:
        """Every key ListKeys reports, described, with its aliases as label."""
        aliases: dict[str, list[str]] = {}
        for alias in self._pages("list_aliases", "Aliases"):
            if "TargetKeyId" in alias:
                aliases.setdefault(alias["TargetKeyId"], []).append(alias["AliasName"])
        metas = [self._resolve(k["KeyId"]) for k in self._pages("list_keys", "Keys")]
        return [self._info(meta, aliases.get(meta["KeyId"], [])) for meta in metas if meta is not None]

    def describe(self, key_id: str) -> KeyInfo | None:
        """The key an id, ARN or alias resolves to."""
        meta = self._resolve(key_id)
        if meta is None:
            return None
        aliases = [a["AliasName"] for a in self._pages("list_aliases", "Aliases", KeyId=meta["KeyId"])]
        return self._info(meta, aliases)

    def disable(self, key_id: str, *, dry_run: bool = False) -> ActionResult:
        """DisableKey unless the key is already disabled or pending deletion."""
        meta = self._resolve(key_id)
        if meta is None:
            return self._result(Outcome.NOT_FOUND, key_id)
        state, arn = meta["KeyState"], meta["Arn"]
        if state != "Enabled":
            return self._result(Outcome.ALREADY_DISABLED, key_id, arn=arn, state=state)
        if dry_run:
            return self._result(Outcome.DRY_RUN, key_id, arn=arn, would="DisableKey")
        self._call("disable_key", KeyId=meta["KeyId"])
        log.info("aws-kms: disabled %s", arn)
        return self._result(Outcome.DISABLED, key_id, arn=arn)

    def enable(self, key_id: str, *, dry_run: bool = False) -> ActionResult:
        """EnableKey on a disabled key; a key pending deletion needs rollback_revoke first."""
        meta = self._resolve(key_id)
        if meta is None:
            return self._result(Outcome.NOT_FOUND, key_id)
        state, arn = meta["KeyState"], meta["Arn"]
        if state == "Enabled":
            return self._result(Outcome.ALREADY_ENABLED, key_id, arn=arn)
        if state != "Disabled":
            reason = f"the key is {state}; cancel its deletion (rollback_revoke) first"
            return self._result(Outcome.FAILED, key_id, arn=arn, state=state, reason=reason)
        if dry_run:
            return self._result(Outcome.DRY_RUN, key_id, arn=arn, would="EnableKey")
        self._call("enable_key", KeyId=meta["KeyId"])
        log.info("aws-kms: enabled %s", arn)
        return self._result(Outcome.ENABLED, key_id, arn=arn)

    def rotate(self, key_id: str, *, dry_run: bool = False) -> ActionResult:
        """RotateKeyOnDemand: new material under the same key id; old material keeps decrypting."""
        meta = self._resolve(key_id)
        if meta is None:
            return self._result(Outcome.NOT_FOUND, key_id)
        arn = meta["Arn"]
        reason = _rotation_refusal(meta)
        if reason:
            return self._result(Outcome.FAILED, key_id, arn=arn, reason=reason)
        if dry_run:
            return self._result(Outcome.DRY_RUN, key_id, arn=arn, would="RotateKeyOnDemand")
        self._call("rotate_key_on_demand", KeyId=meta["KeyId"])
        log.info("aws-kms: rotated %s on demand", arn)
        return self._result(Outcome.ROTATED, key_id, arn=arn, successor=meta["KeyId"], rotation="on_demand")

    def revoke(
        self, key_id: str, *, approved: bool, backup: bool = True, dry_run: bool = False
    ) -> ActionResult:
        """ScheduleKeyDeletion; the pending window is the only way back (KMS exports no material)."""
        if not (approved or dry_run):
            raise KeyBackendError(f"revoking {key_id!r} schedules its deletion and needs approval")
        meta = self._resolve(key_id)
        if meta is None:
            return self._result(Outcome.NOT_FOUND, key_id)
        arn, days = meta["Arn"], self._pending_window_days
        if meta["KeyState"] == "PendingDeletion":
            return self._result(
                Outcome.ALREADY_REVOKED, key_id, arn=arn, deletion_date=_iso(meta.get("DeletionDate"))
            )
        if dry_run:
            return self._result(
                Outcome.DRY_RUN, key_id, arn=arn, would="ScheduleKeyDeletion", pending_window_days=days
            )
        answer = self._call("schedule_key_deletion", KeyId=meta["KeyId"], PendingWindowInDays=days)
        log.warning("aws-kms: scheduled deletion of %s in %s days", arn, days)
        return self._result(
            Outcome.REVOKED,
            key_id,
            arn=arn,
            deletion_date=_iso(answer.get("DeletionDate")),
            pending_window_days=days,
            backup="pending_window",  # KMS keeps the key until then; rollback_revoke cancels
        )

    def rollback_revoke(self, key_id: str) -> ActionResult:
        """CancelKeyDeletion; the key is then disabled (as AWS leaves it) until enabled."""
        meta = self._resolve(key_id)
        if meta is None:
            return self._result(Outcome.NOT_FOUND, key_id)
        arn, state = meta["Arn"], meta["KeyState"]
        if state != "PendingDeletion":
            return self._result(Outcome.REVOKE_CANCELLED, key_id, arn=arn, state=state, already=True)
        self._call("cancel_key_deletion", KeyId=meta["KeyId"])
        log.warning("aws-kms: cancelled deletion of %s; it stays disabled", arn)
        return self._result(Outcome.REVOKE_CANCELLED, key_id, arn=arn, state=KeyState.DISABLED.value)

    # -- helpers

    def _resolve(self, key_id: str) -> dict[str, Any] | None:
        """KeyMetadata for an id, key ARN, alias or alias ARN; a bare name is tried as ``alias/<name>``."""
        candidates = [key_id]
        if not (key_id.startswith(("arn:", "alias/")) or _KEY_ID.match(key_id)):
            candidates.append(f"alias/{key_id}")
        for candidate in candidates:
            try:
                return cast(dict[str, Any], self._call("describe_key", KeyId=candidate)["KeyMetadata"])
            except _NotFoundError:
                continue
        return None

    def _info(self, meta: dict[str, Any], aliases: list[str]) -> KeyInfo:
        state = STATES.get(meta["KeyState"], KeyState.DISABLED)
        uses = USES.get(meta.get("KeyUsage") or "ENCRYPT_DECRYPT", ()) if state is KeyState.ENABLED else ()
        label = aliases[0] if aliases else meta.get("Description", "")
        key_type = meta.get("KeySpec", "SYMMETRIC_DEFAULT")
        return KeyInfo(meta["KeyId"], self.name, label, key_type, uses, state, self._version(meta))

    def _version(self, meta: dict[str, Any]) -> int:
        """1 + the rotations KMS reports (only symmetric keys with KMS material have any)."""
        if _unrotatable(meta):
            return 1
        return 1 + sum(1 for _ in self._pages("list_key_rotations", "Rotations", KeyId=meta["KeyId"]))

    def _pages(self, operation: str, field: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Items of every page of a paginated KMS call."""
        with _translated(operation):
            for page in self._client.get_paginator(operation).paginate(**params):
                yield from page.get(field, [])

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        with _translated(operation):
            return cast(dict[str, Any], getattr(self._client, operation)(**params))

    def _result(self, outcome: Outcome, key_id: str, **detail: Any) -> ActionResult:
        return ActionResult(outcome, key_id, self.name, detail)


class _NotFoundError(KeyBackendError):
    """KMS answered NotFoundException (internal: becomes Outcome.not_found)."""


@contextmanager
def _translated(operation: str) -> Iterator[None]:
    """Turn botocore errors into KeyBackendError (BackendUnavailable when transient)."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "Unknown"), error.get("Message", "")
        if code == "NotFoundException":
            raise _NotFoundError(message) from exc
        kind = BackendUnavailable if code in TRANSIENT_CODES else KeyBackendError
        raise kind(f"KMS {operation} failed: {code}: {message}") from exc
    except (BotoConnectionError, HTTPClientError) as exc:
        raise BackendUnavailable(f"KMS unreachable during {operation}: {exc}") from exc
    except NoCredentialsError as exc:
        raise KeyBackendError(f"KMS {operation}: no AWS credentials found") from exc
    except BotoCoreError as exc:
        raise KeyBackendError(f"KMS {operation} failed: {exc}") from exc


def _unrotatable(meta: dict[str, Any]) -> str | None:
    """Why KMS can never rotate this kind of key, or None."""
    if meta.get("KeySpec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT":
        return f"KMS rotates only symmetric keys, not {meta['KeySpec']}"
    if meta.get("Origin", "AWS_KMS") != "AWS_KMS":
        return f"KMS cannot rotate keys with {meta['Origin']} key material"
    return None


def _rotation_refusal(meta: dict[str, Any]) -> str | None:
    """Why RotateKeyOnDemand cannot rotate this key now, or None."""
    if meta["KeyState"] != "Enabled":
        return f"the key is {meta['KeyState']}; KMS rotates only enabled keys"
    return _unrotatable(meta)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


if TYPE_CHECKING:  # mypy proves the class implements the port
    _CONFORMS: type[KeyBackend] = AwsKmsBackend
