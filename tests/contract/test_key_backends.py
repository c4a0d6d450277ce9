"""The key backend contract, held by every backend alike: the in-memory fake the unit tests use,
PKCS#11 on a SoftHSM2 token, and AWS KMS on a moto server.

Whatever the backend: repeats report ``already_*`` and change nothing, dry runs change nothing,
revoking needs an approval, a revoked key is gone until its revocation is rolled back, unknown
keys are ``not_found`` (never an exception), and ``describe`` says the state each step left.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest
from fakes import MemoryBackend
from moto_server import REGION, moto_server
from softhsm import SoftHsmToken, add_sample_keys, make_token

from detector.adapters.keys.aws_kms import AwsKmsBackend
from detector.adapters.keys.pkcs11_backend import Pkcs11Backend
from detector.config import AwsSettings, Settings
from detector.domain.keys import KeyBackend, KeyBackendError, KeyState, Outcome

pytestmark = pytest.mark.integration
GONE = (KeyState.DESTROYED, KeyState.PENDING_DELETION)


@dataclass(frozen=True)
class Subject:
    backend: KeyBackend
    key_id: str  # an enabled key made for this test

    def state(self) -> KeyState:
        info = self.backend.describe(self.key_id)
        assert info is not None
        return info.state


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> SoftHsmToken:
    return make_token(tmp_path_factory.mktemp("softhsm"), label="kw-contract", pin="kw-contract-pin")


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


def _memory(request: pytest.FixtureRequest) -> Subject:
    return Subject(MemoryBackend(), "k1")


def _pkcs11(request: pytest.FixtureRequest) -> Subject:
    token: SoftHsmToken = request.getfixturevalue("token")
    keys = add_sample_keys(token)
    return Subject(Pkcs11Backend(token.module, token.label, token.pin), keys.aes)


def _aws_kms(request: pytest.FixtureRequest) -> Subject:
    endpoint: str = request.getfixturevalue("endpoint")
    kms = boto3.client("kms", region_name=REGION, endpoint_url=endpoint)
    key_id = kms.create_key(Description=f"contract-{uuid.uuid4().hex[:8]}")["KeyMetadata"]["KeyId"]
    settings = Settings(aws=AwsSettings(region=REGION, endpoint_url=endpoint, pending_window_days=7))
    return Subject(AwsKmsBackend.from_settings(settings), key_id)


@pytest.fixture(params=[_memory, _pkcs11, _aws_kms], ids=["memory", "pkcs11", "aws_kms"])
def subject(request: pytest.FixtureRequest) -> Subject:
    made: Subject = request.param(request)
    return made


def test_disable_and_enable_are_idempotent(subject: Subject) -> None:
    backend, key = subject.backend, subject.key_id
    assert subject.state() is KeyState.ENABLED
    assert backend.disable(key).outcome is Outcome.DISABLED
    assert backend.disable(key).outcome is Outcome.ALREADY_DISABLED
    assert subject.state() is KeyState.DISABLED
    assert backend.enable(key).outcome is Outcome.ENABLED
    assert backend.enable(key).outcome is Outcome.ALREADY_ENABLED
    assert subject.state() is KeyState.ENABLED


def test_dry_runs_change_nothing(subject: Subject) -> None:
    backend, key = subject.backend, subject.key_id
    for result in (backend.disable(key, dry_run=True), backend.rotate(key, dry_run=True),
                   backend.revoke(key, approved=False, dry_run=True)):  # fmt: skip
        assert result.outcome is Outcome.DRY_RUN
    assert subject.state() is KeyState.ENABLED
    backend.disable(key)
    assert backend.enable(key, dry_run=True).outcome is Outcome.DRY_RUN
    assert subject.state() is KeyState.DISABLED


def test_revoking_needs_an_approval_and_can_be_rolled_back(subject: Subject) -> None:
    backend, key = subject.backend, subject.key_id
    with pytest.raises(KeyBackendError, match="approval"):
        backend.revoke(key, approved=False)
    assert subject.state() is KeyState.ENABLED
    assert backend.revoke(key, approved=True).outcome is Outcome.REVOKED
    assert backend.revoke(key, approved=True).outcome is Outcome.ALREADY_REVOKED
    assert subject.state() in GONE
    assert backend.rollback_revoke(key).outcome is Outcome.REVOKE_CANCELLED
    assert subject.state() in (KeyState.ENABLED, KeyState.DISABLED)  # AWS leaves a cancelled key disabled
    again = backend.rollback_revoke(key)
    assert again.outcome is Outcome.REVOKE_CANCELLED and again.detail["already"] is True


def test_rotation_is_reported(subject: Subject) -> None:
    result = subject.backend.rotate(subject.key_id)
    assert result.outcome is Outcome.ROTATED and result.detail["successor"]
    assert subject.state() not in GONE


def test_unknown_keys_are_not_found(subject: Subject) -> None:
    backend, missing = subject.backend, str(uuid.uuid4())
    assert backend.describe(missing) is None
    for result in (backend.disable(missing), backend.enable(missing), backend.rotate(missing),
                   backend.revoke(missing, approved=True), backend.rollback_revoke(missing)):  # fmt: skip
        assert result.outcome is Outcome.NOT_FOUND


def test_inventory_lists_the_key_with_its_state(subject: Subject) -> None:
    subject.backend.disable(subject.key_id)
    found = {info.key_id: info.state for info in subject.backend.inventory()}
    assert found[subject.key_id] is KeyState.DISABLED
