"""The PKCS#11 key backend on a real SoftHSM2 token: every effect is checked inside the HSM."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pkcs11
import pytest
from pkcs11 import Attribute, Mechanism, ObjectClass
from pydantic import SecretStr
from softhsm import SampleKeys, SoftHsmToken, add_sample_keys, make_token

from detector.adapters.keys import backend_names, load_backend
from detector.adapters.keys.pkcs11_backend import Pkcs11Backend
from detector.config import HsmSettings, Settings
from detector.domain.errors import ConfigError
from detector.domain.keys import BackendUnavailable, KeyBackendError, KeyState, Outcome

pytestmark = pytest.mark.integration

PIN = "kw-pin-73915"  # distinctive, so a leak into logs or messages is easy to spot
IV = bytes(16)
DIGEST = bytes(range(32))


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> SoftHsmToken:
    return make_token(tmp_path_factory.mktemp("softhsm"), label="kw-keys", pin=PIN)


@pytest.fixture
def keys(token: SoftHsmToken) -> SampleKeys:
    return add_sample_keys(token)


@pytest.fixture
def backend(token: SoftHsmToken) -> Pkcs11Backend:
    return Pkcs11Backend(token.module, token.label, token.pin)


@pytest.fixture
def app(token: SoftHsmToken, keys: SampleKeys) -> Iterator[pkcs11.Session]:
    """An application's logged-in session, open while KeyWatch acts (after ``keys`` made its keys)."""
    with token.open() as session:
        yield session


def key(app: pkcs11.Session, label: str, cls: ObjectClass = ObjectClass.SECRET_KEY) -> Any:
    """A handle the application holds; python-pkcs11 gives it methods for the uses on at lookup."""
    return app.get_key(cls, label=label)


def encrypt(handle: Any, data: bytes = b"secret data") -> bytes:
    return bytes(handle.encrypt(data, mechanism_param=IV))


def decrypt(handle: Any, data: bytes) -> bytes:
    return bytes(handle.decrypt(data, mechanism_param=IV))


def sign(handle: Any) -> bytes:
    return bytes(handle.sign(DIGEST, mechanism=Mechanism.ECDSA))


def verify(handle: Any, signature: bytes) -> bool:
    return bool(handle.verify(DIGEST, signature, mechanism=Mechanism.ECDSA))


def flags(app: pkcs11.Session, label: str, cls: ObjectClass, *attrs: Attribute) -> dict[str, bool]:
    values = app.get_key(cls, label=label).get_attributes(list(attrs))
    return {Attribute(attr).name: bool(value) for attr, value in values.items()}


def classes(app: pkcs11.Session, label: str) -> list[int]:
    """Object classes present under ``label``."""
    return sorted(int(o.object_class or -1) for o in app.get_objects({Attribute.LABEL: label}))


def record(app: pkcs11.Session, label: str) -> dict[str, Any] | None:
    found = list(app.get_objects({Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: label}))
    return cast(dict[str, Any], json.loads(bytes(found[-1][Attribute.VALUE]))) if found else None


def test_disable_blocks_use_inside_the_hsm_and_enable_restores_it(
    app: pkcs11.Session, token: SoftHsmToken, keys: SampleKeys, backend: Pkcs11Backend
) -> None:
    aes = key(app, keys.aes)
    ciphertext = encrypt(aes)

    result = backend.disable(keys.aes)

    assert result.outcome is Outcome.DISABLED
    assert result.detail["turned_off"] == {"SECRET_KEY": ["ENCRYPT", "DECRYPT", "WRAP", "UNWRAP"]}
    with pytest.raises(pkcs11.PKCS11Error, match="0x68"):  # CKR_KEY_FUNCTION_NOT_PERMITTED
        encrypt(aes)
    with pytest.raises(pkcs11.PKCS11Error, match="0x68"):
        decrypt(aes, ciphertext)
    assert record(app, f"keywatch-disabled:{keys.aes}") == {"uses": result.detail["turned_off"]}
    info = backend.describe(keys.aes)
    assert info is not None
    assert (info.state, info.allowed_uses, info.key_type) == (KeyState.DISABLED, (), "AES-256")
    assert backend.disable(keys.aes).outcome is Outcome.ALREADY_DISABLED

    # a new backend (a restart) finds what to restore in the token
    again = Pkcs11Backend(token.module, token.label, token.pin)
    assert again.enable(keys.aes).outcome is Outcome.ENABLED
    assert decrypt(aes, ciphertext) == b"secret data"
    assert decrypt(aes, encrypt(aes)) == b"secret data"
    assert record(app, f"keywatch-disabled:{keys.aes}") is None
    assert backend.enable(keys.aes).outcome is Outcome.ALREADY_ENABLED


def test_enable_restores_exactly_the_uses_disable_turned_off(
    app: pkcs11.Session, keys: SampleKeys, backend: Pkcs11Backend
) -> None:
    assert backend.disable(keys.aes_decrypt_only).detail["turned_off"] == {"SECRET_KEY": ["DECRYPT"]}
    backend.enable(keys.aes_decrypt_only)
    on = flags(app, keys.aes_decrypt_only, ObjectClass.SECRET_KEY, Attribute.ENCRYPT, Attribute.DECRYPT)
    assert on == {"ENCRYPT": False, "DECRYPT": True}

    private, public = key(app, keys.ec, ObjectClass.PRIVATE_KEY), key(app, keys.ec, ObjectClass.PUBLIC_KEY)
    signature = sign(private)
    turned_off = backend.disable(keys.ec).detail["turned_off"]
    assert turned_off == {"PRIVATE_KEY": ["SIGN", "DERIVE"], "PUBLIC_KEY": ["VERIFY"]}
    with pytest.raises(pkcs11.PKCS11Error):
        sign(private)
    with pytest.raises(pkcs11.PKCS11Error):
        verify(public, signature)
    assert backend.enable(keys.ec).outcome is Outcome.ENABLED
    assert verify(public, sign(private))
    uses = (Attribute.ENCRYPT, Attribute.WRAP, Attribute.VERIFY)
    assert flags(app, keys.ec, ObjectClass.PUBLIC_KEY, *uses) == {
        "ENCRYPT": False,
        "WRAP": False,
        "VERIFY": True,
    }
    on = flags(app, keys.ec, ObjectClass.PRIVATE_KEY, Attribute.DECRYPT, Attribute.SIGN)
    assert on == {"DECRYPT": False, "SIGN": True}


def test_rotate_makes_a_successor_and_leaves_the_old_key_decrypt_only(
    app: pkcs11.Session, keys: SampleKeys, backend: Pkcs11Backend
) -> None:
    aes = key(app, keys.aes)
    old_ciphertext = encrypt(aes)

    result = backend.rotate(keys.aes)

    successor = f"{keys.aes}.v2"
    assert (result.outcome, result.detail["successor"]) == (Outcome.ROTATED, successor)
    new = key(app, successor)
    assert decrypt(new, encrypt(new)) == b"secret data"
    assert decrypt(aes, old_ciphertext) == b"secret data"
    with pytest.raises(pkcs11.PKCS11Error, match="0x68"):
        encrypt(aes)
    alike = (Attribute.VALUE_LEN, Attribute.EXTRACTABLE, Attribute.SENSITIVE, Attribute.PRIVATE)
    assert flags(app, successor, ObjectClass.SECRET_KEY, *alike) == flags(
        app, keys.aes, ObjectClass.SECRET_KEY, *alike
    )
    wrapping = flags(app, successor, ObjectClass.SECRET_KEY, Attribute.WRAP, Attribute.UNWRAP)
    assert wrapping == {"WRAP": True, "UNWRAP": True}
    old_info, new_info = backend.describe(keys.aes), backend.describe(successor)
    assert old_info is not None and new_info is not None
    assert (old_info.state, old_info.version) == (KeyState.DECRYPT_ONLY, 1)
    assert old_info.allowed_uses == ("DECRYPT", "UNWRAP")
    assert (new_info.state, new_info.version) == (KeyState.ENABLED, 2)

    again = backend.rotate(keys.aes)
    assert (again.outcome, again.detail["already"]) == (Outcome.ROTATED, True)
    assert classes(app, f"{keys.aes}.v3") == []
    assert backend.rotate(successor).detail["successor"] == f"{keys.aes}.v3"


def test_rotate_a_signing_pair(app: pkcs11.Session, keys: SampleKeys, backend: Pkcs11Backend) -> None:
    private, public = key(app, keys.ec, ObjectClass.PRIVATE_KEY), key(app, keys.ec, ObjectClass.PUBLIC_KEY)
    old_signature = sign(private)

    assert backend.rotate(keys.ec).outcome is Outcome.ROTATED

    successor = f"{keys.ec}.v2"
    new_private = key(app, successor, ObjectClass.PRIVATE_KEY)
    assert verify(key(app, successor, ObjectClass.PUBLIC_KEY), sign(new_private))
    assert verify(public, old_signature)
    with pytest.raises(pkcs11.PKCS11Error):
        sign(private)


def test_rotating_a_disabled_key_keeps_it_disabled(
    app: pkcs11.Session, keys: SampleKeys, backend: Pkcs11Backend
) -> None:
    aes = key(app, keys.aes)
    ciphertext = encrypt(aes)
    backend.disable(keys.aes)

    backend.rotate(keys.aes)

    with pytest.raises(pkcs11.PKCS11Error):
        decrypt(aes, ciphertext)
    assert backend.enable(keys.aes).detail["turned_on"] == {"SECRET_KEY": ["DECRYPT", "UNWRAP"]}
    assert decrypt(aes, ciphertext) == b"secret data"
    with pytest.raises(pkcs11.PKCS11Error):
        encrypt(aes)
    assert flags(app, f"{keys.aes}.v2", ObjectClass.SECRET_KEY, Attribute.ENCRYPT) == {"ENCRYPT": True}


def test_revoke_needs_approval(app: pkcs11.Session, keys: SampleKeys, backend: Pkcs11Backend) -> None:
    with pytest.raises(KeyBackendError, match="approval"):
        backend.revoke(keys.aes, approved=False)
    assert classes(app, keys.aes) == [int(ObjectClass.SECRET_KEY)]


def test_revoke_backs_up_destroys_and_rolls_back(
    app: pkcs11.Session, keys: SampleKeys, backend: Pkcs11Backend
) -> None:
    ciphertext = encrypt(key(app, keys.aes))

    result = backend.revoke(keys.aes, approved=True)

    assert (result.outcome, result.detail["backup"]) == (Outcome.REVOKED, f"keywatch-revoked:{keys.aes}")
    assert classes(app, keys.aes) == []
    backup = record(app, f"keywatch-revoked:{keys.aes}")
    assert backup is not None and backup["backup_key"] == "keywatch-backup"
    assert backup["objects"][0]["wrapped"]
    assert flags(app, "keywatch-backup", ObjectClass.SECRET_KEY, Attribute.EXTRACTABLE) == {
        "EXTRACTABLE": False
    }
    assert backend.revoke(keys.aes, approved=True).outcome is Outcome.ALREADY_REVOKED
    info = backend.describe(keys.aes)
    assert info is not None and info.state is KeyState.DESTROYED
    assert keys.aes in {k.key_id for k in backend.inventory() if k.state is KeyState.DESTROYED}

    assert backend.rollback_revoke(keys.aes).outcome is Outcome.REVOKE_CANCELLED
    assert decrypt(key(app, keys.aes), ciphertext) == b"secret data"
    assert record(app, f"keywatch-revoked:{keys.aes}") is None
    assert backend.rollback_revoke(keys.aes).detail["already"] is True


def test_revoke_and_restore_a_signing_pair(
    app: pkcs11.Session, keys: SampleKeys, backend: Pkcs11Backend
) -> None:
    signature = sign(key(app, keys.ec, ObjectClass.PRIVATE_KEY))

    destroyed = backend.revoke(keys.ec, approved=True).detail["destroyed"]
    assert sorted(destroyed) == ["PRIVATE_KEY", "PUBLIC_KEY"]
    assert classes(app, keys.ec) == []

    backend.rollback_revoke(keys.ec)

    public = key(app, keys.ec, ObjectClass.PUBLIC_KEY)
    assert verify(public, signature)
    assert verify(public, sign(key(app, keys.ec, ObjectClass.PRIVATE_KEY)))


def test_a_key_that_cannot_be_wrapped_is_not_revoked_with_backup(
    app: pkcs11.Session, keys: SampleKeys, backend: Pkcs11Backend
) -> None:
    refused = backend.revoke(keys.aes_fixed, approved=True)

    assert refused.outcome is Outcome.FAILED
    assert "not extractable" in refused.detail["reason"]
    assert classes(app, keys.aes_fixed) == [int(ObjectClass.SECRET_KEY)]

    assert backend.revoke(keys.aes_fixed, approved=True, backup=False).detail["backup"] is None
    assert classes(app, keys.aes_fixed) == []
    with pytest.raises(KeyBackendError, match="without a backup"):
        backend.rollback_revoke(keys.aes_fixed)


def test_unknown_keys_are_not_found(backend: Pkcs11Backend) -> None:
    assert backend.describe("no-such-key") is None
    for result in (
        backend.disable("no-such-key"),
        backend.enable("no-such-key"),
        backend.rotate("no-such-key"),
        backend.revoke("no-such-key", approved=True),
        backend.rollback_revoke("no-such-key"),
    ):
        assert result.outcome is Outcome.NOT_FOUND


def test_dry_runs_change_nothing(app: pkcs11.Session, keys: SampleKeys, backend: Pkcs11Backend) -> None:
    uses = (Attribute.ENCRYPT, Attribute.DECRYPT, Attribute.WRAP, Attribute.UNWRAP)
    before = flags(app, keys.aes, ObjectClass.SECRET_KEY, *uses)

    disable = backend.disable(keys.aes, dry_run=True)
    rotate = backend.rotate(keys.aes, dry_run=True)
    revoke = backend.revoke(keys.aes, approved=False, dry_run=True)

    assert disable.outcome is rotate.outcome is revoke.outcome is Outcome.DRY_RUN
    assert disable.detail["would_turn_off"] == {"SECRET_KEY": ["ENCRYPT", "DECRYPT", "WRAP", "UNWRAP"]}
    assert rotate.detail == {
        "label": keys.aes,
        "successor": f"{keys.aes}.v2",
        "create": True,
        "turn_off": {"SECRET_KEY": ["ENCRYPT", "WRAP"]},
    }
    assert revoke.detail["destroy"] == ["SECRET_KEY"]
    assert flags(app, keys.aes, ObjectClass.SECRET_KEY, *uses) == before
    assert classes(app, f"{keys.aes}.v2") == []
    assert record(app, f"keywatch-disabled:{keys.aes}") is None
    backend.disable(keys.aes)
    assert backend.enable(keys.aes, dry_run=True).detail["would_turn_on"] == disable.detail["would_turn_off"]
    assert flags(app, keys.aes, ObjectClass.SECRET_KEY, Attribute.ENCRYPT) == {"ENCRYPT": False}


def test_keys_resolve_by_cka_id_and_key_map(token: SoftHsmToken, keys: SampleKeys) -> None:
    with token.open() as session:
        cka_id = bytes(session.get_key(ObjectClass.PRIVATE_KEY, label=keys.ec).id).hex()
    arn = "arn:aws:kms:us-east-1:111122223333:key/ec-signing"
    backend = Pkcs11Backend(token.module, token.label, token.pin, key_map={arn: keys.ec})

    by_id, by_map = backend.describe(cka_id), backend.describe(arn)

    assert by_id is not None and by_map is not None
    assert by_id.key_id == by_map.key_id == keys.ec
    assert backend.disable(arn).detail["label"] == keys.ec
    assert backend.disable(cka_id).outcome is Outcome.ALREADY_DISABLED


def test_inventory_lists_keys_with_their_state(keys: SampleKeys, backend: Pkcs11Backend) -> None:
    backend.disable(keys.aes)

    found = {info.key_id: info for info in backend.inventory()}

    assert "keywatch-backup" not in found
    assert found[keys.aes].state is KeyState.DISABLED
    assert found[keys.aes_decrypt_only].state is KeyState.DECRYPT_ONLY
    assert found[keys.ec].allowed_uses == ("SIGN", "VERIFY", "DERIVE")
    assert found[keys.ec].key_type == "EC"


def test_an_unreachable_module_or_token_is_unavailable(token: SoftHsmToken, tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match="cannot be loaded"):
        Pkcs11Backend(tmp_path / "libmissing.so", token.label, token.pin).inventory()
    with pytest.raises(BackendUnavailable, match="not found"):
        Pkcs11Backend(token.module, "no-such-token", token.pin).disable("k")


def test_the_pin_never_shows(
    token: SoftHsmToken, keys: SampleKeys, backend: Pkcs11Backend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    backend.disable(keys.aes)
    backend.enable(keys.aes)
    backend.rotate(keys.aes)
    backend.revoke(keys.ec, approved=True)
    with pytest.raises(KeyBackendError) as wrong:
        Pkcs11Backend(token.module, token.label, PIN + "0").inventory()

    shown = [caplog.text, repr(backend), str(wrong.value), repr(wrong.value), str(wrong.value.__cause__)]
    assert caplog.text
    assert all(PIN not in text for text in shown)
    assert "PinIncorrect" in str(wrong.value)


def test_backends_are_found_by_name(
    token: SoftHsmToken, keys: SampleKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    hsm = HsmSettings(module=Path(token.module), token_label=token.label, pin=SecretStr(token.pin))
    assert {"pkcs11", "aws-kms"} <= set(backend_names())

    backend = load_backend("pkcs11", Settings(hsm=hsm))

    assert isinstance(backend, Pkcs11Backend)
    assert backend.describe(keys.aes) is not None
    for name, value in token.env().items():
        monkeypatch.setenv(name, value)
    from_env = load_backend("pkcs11", Settings())
    assert from_env.describe(keys.aes) is not None
    with pytest.raises(ConfigError, match=r"available: .*pkcs11"):
        load_backend("no-such-backend", Settings())
    for name in token.env():
        monkeypatch.delenv(name)
    with pytest.raises(ConfigError, match="PKCS11_MODULE"):
        load_backend("pkcs11", Settings())


def test_concurrent_calls_share_the_token_safely(keys: SampleKeys, backend: Pkcs11Backend) -> None:
    """The API serves requests on a thread pool: parallel reads and actions must not log each other out."""
    from concurrent.futures import ThreadPoolExecutor

    labels = [info.key_id for info in backend.inventory()]

    def work(i: int) -> object:
        if i % 10 == 0:
            return backend.disable(labels[0]).outcome if i % 20 == 0 else backend.enable(labels[0]).outcome
        return backend.inventory() if i % 2 else backend.describe(labels[i % len(labels)])

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(200)))
    assert len(results) == 200 and all(r is not None for r in results)
    backend.enable(labels[0])
