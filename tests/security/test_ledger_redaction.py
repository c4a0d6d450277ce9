"""The ledger hides secrets, not evidence: PKCS#11 object classes are not secrets.

A disable's record says which usages it turned off per object class (``SECRET_KEY``,
``PRIVATE_KEY``); the redaction, which looks for words like "secret", hid them, so the ledger
could not show what a containment changed. Real secrets stay hidden at any depth.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from detector.adapters.audit import Ledger
from detector.adapters.store import Store
from detector.domain.ledger import REDACTED, redact

TURNED_OFF = {"SECRET_KEY": ["ENCRYPT", "DECRYPT", "WRAP"], "PRIVATE_KEY": ["SIGN"], "PUBLIC_KEY": ["VERIFY"]}


def test_object_classes_are_kept_and_secrets_are_not() -> None:
    details = {"outcome": "disabled", "turned_off": TURNED_OFF, "pin": "1234",
               "backend": {"secret_key": "abc", "api_token": "t", "token_label": "kw"}}  # fmt: skip
    clean = redact(details)
    assert clean["turned_off"] == TURNED_OFF
    assert clean["pin"] == clean["backend"]["secret_key"] == clean["backend"]["api_token"] == REDACTED
    assert clean["backend"]["token_label"] == "kw"


@pytest.mark.integration
def test_a_stored_record_shows_what_a_disable_turned_off(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    store.migrate()
    signer = Ed25519PrivateKey.generate()
    ledger = Ledger(store, signer)
    ledger.append("rita", "disable_key", "k1", {"outcome": "disabled", "turned_off": TURNED_OFF})
    [record] = ledger.records()
    assert record.details["turned_off"] == TURNED_OFF
    assert ledger.verify(signer.public_key()).ok
    store.close()
