"""The AWS KMS key backend against a moto server: effects are checked with a separate KMS client."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto_server import REGION, closed_port_url, fake_credentials, moto_server

from detector.adapters.keys import load_backend
from detector.adapters.keys.aws_kms import AwsKmsBackend
from detector.config import AwsSettings, Settings
from detector.domain.keys import BackendUnavailable, KeyBackendError, KeyState, Outcome

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Key:
    key_id: str
    arn: str
    alias: str


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def kms(endpoint: str) -> Any:
    return boto3.client("kms", region_name=REGION, endpoint_url=endpoint)


@pytest.fixture
def backend(endpoint: str) -> AwsKmsBackend:
    settings = Settings(aws=AwsSettings(region=REGION, endpoint_url=endpoint, pending_window_days=7))
    return AwsKmsBackend.from_settings(settings)


@pytest.fixture
def key(kms: Any) -> Key:
    meta = kms.create_key(Description="payments")["KeyMetadata"]
    alias = f"alias/kw-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
    return Key(meta["KeyId"], meta["Arn"], alias)


def state(kms: Any, key: Key) -> str:
    return str(kms.describe_key(KeyId=key.key_id)["KeyMetadata"]["KeyState"])


def test_disable_and_enable_are_idempotent(kms: Any, key: Key, backend: AwsKmsBackend) -> None:
    result = backend.disable(key.key_id)

    assert (result.outcome, result.detail["arn"]) == (Outcome.DISABLED, key.arn)
    assert state(kms, key) == "Disabled"
    assert backend.disable(key.key_id).outcome is Outcome.ALREADY_DISABLED
    info = backend.describe(key.key_id)
    assert info is not None and (info.state, info.allowed_uses) == (KeyState.DISABLED, ())

    assert backend.enable(key.key_id).outcome is Outcome.ENABLED
    assert state(kms, key) == "Enabled"
    assert backend.enable(key.key_id).outcome is Outcome.ALREADY_ENABLED


def test_arns_and_aliases_resolve_to_the_key(kms: Any, key: Key, backend: AwsKmsBackend) -> None:
    alias_arn = key.arn.split(":key/")[0] + ":" + key.alias

    assert backend.disable(key.arn).outcome is Outcome.DISABLED  # CloudTrail events carry ARNs
    assert backend.enable(key.alias).outcome is Outcome.ENABLED
    assert backend.disable(alias_arn).outcome is Outcome.DISABLED
    assert backend.enable(key.alias.removeprefix("alias/")).outcome is Outcome.ENABLED
    info = backend.describe(key.arn)
    assert info is not None
    assert (info.key_id, info.label, info.key_type) == (key.key_id, key.alias, "SYMMETRIC_DEFAULT")
    assert (info.state, info.allowed_uses, info.backend) == (
        KeyState.ENABLED,
        ("ENCRYPT", "DECRYPT"),
        "aws-kms",
    )


def test_revoke_schedules_deletion_and_rollback_cancels_it(
    kms: Any, key: Key, backend: AwsKmsBackend
) -> None:
    with pytest.raises(KeyBackendError, match="approval"):
        backend.revoke(key.arn, approved=False)
    assert state(kms, key) == "Enabled"

    revoked = backend.revoke(key.arn, approved=True)

    assert revoked.outcome is Outcome.REVOKED
    assert revoked.detail["pending_window_days"] == 7 and revoked.detail["deletion_date"]
    assert state(kms, key) == "PendingDeletion"
    assert backend.revoke(key.arn, approved=True).outcome is Outcome.ALREADY_REVOKED
    assert backend.enable(key.arn).outcome is Outcome.FAILED
    info = backend.describe(key.alias)
    assert info is not None and info.state is KeyState.PENDING_DELETION

    cancelled = backend.rollback_revoke(key.alias)

    assert (cancelled.outcome, cancelled.detail["state"]) == (Outcome.REVOKE_CANCELLED, "disabled")
    assert state(kms, key) == "Disabled"  # AWS leaves a cancelled key disabled
    assert backend.rollback_revoke(key.alias).detail["already"] is True
    assert backend.enable(key.alias).outcome is Outcome.ENABLED


def test_rotate_on_demand(kms: Any, key: Key, backend: AwsKmsBackend) -> None:
    result = backend.rotate(key.arn)

    assert (result.outcome, result.detail["successor"]) == (Outcome.ROTATED, key.key_id)
    assert len(kms.list_key_rotations(KeyId=key.key_id)["Rotations"]) == 1
    info = backend.describe(key.key_id)
    assert info is not None and info.version == 2

    signing = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    refused = backend.rotate(signing)
    assert refused.outcome is Outcome.FAILED and "symmetric" in refused.detail["reason"]
    backend.disable(key.key_id)
    assert backend.rotate(key.key_id).outcome is Outcome.FAILED


def test_dry_runs_change_nothing(kms: Any, key: Key, backend: AwsKmsBackend) -> None:
    for result in (
        backend.disable(key.key_id, dry_run=True),
        backend.rotate(key.key_id, dry_run=True),
        backend.revoke(key.key_id, approved=False, dry_run=True),
    ):
        assert result.outcome is Outcome.DRY_RUN
    assert state(kms, key) == "Enabled"
    assert kms.list_key_rotations(KeyId=key.key_id)["Rotations"] == []


def test_unknown_keys_are_not_found(backend: AwsKmsBackend) -> None:
    missing = str(uuid.uuid4())
    assert backend.describe(missing) is None
    assert backend.describe("alias/no-such-alias") is None
    for result in (
        backend.disable(missing),
        backend.enable("alias/no-such-alias"),
        backend.rotate(missing),
        backend.revoke(missing, approved=True),
        backend.rollback_revoke(missing),
    ):
        assert result.outcome is Outcome.NOT_FOUND


def test_inventory_lists_keys_with_aliases(key: Key, backend: AwsKmsBackend) -> None:
    backend.disable(key.key_id)

    found = {info.key_id: info for info in backend.inventory()}

    assert found[key.key_id].label == key.alias
    assert found[key.key_id].state is KeyState.DISABLED


def test_an_unreachable_endpoint_is_unavailable() -> None:
    settings = Settings(aws=AwsSettings(region=REGION, endpoint_url=closed_port_url()))
    with fake_credentials():
        backend = AwsKmsBackend.from_settings(settings)
        with pytest.raises(BackendUnavailable, match="unreachable"):
            backend.disable(str(uuid.uuid4()))
        with pytest.raises(BackendUnavailable):
            backend.inventory()


def test_the_backend_is_found_by_name(endpoint: str, key: Key) -> None:
    backend = load_backend("aws-kms", Settings(aws=AwsSettings(region=REGION, endpoint_url=endpoint)))

    assert isinstance(backend, AwsKmsBackend)
    assert backend.describe(key.arn) is not None
