"""A fresh SoftHSM2 token in a temporary directory, with sample keys, for PKCS#11 tests.

``make_token`` writes a ``softhsm2.conf`` whose token directory lives under the given directory,
points ``SOFTHSM2_CONF`` at it, initialises a token with ``softhsm2-util`` and re-initialises the
module if this process already loaded it (SoftHSM2 reads its configuration at C_Initialize). Give
each test module its own directory so pytest-xdist workers never share a token. A missing
``softhsm2-util`` or module fails the test; it is never skipped.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pkcs11
from pkcs11 import Attribute, KeyType, MechanismFlag, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from detector.adapters.keys.pkcs11_backend import module_lock

MODULE = os.environ.get("SOFTHSM2_MODULE", "/usr/lib/softhsm/libsofthsm2.so")
AES_USES = MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT | MechanismFlag.WRAP | MechanismFlag.UNWRAP


@dataclass(frozen=True)
class SoftHsmToken:
    """Where the token is and how to log in."""

    module: str
    label: str
    pin: str
    so_pin: str
    conf: Path

    def env(self) -> dict[str, str]:
        """The PKCS11_* variables python-pkcs11's own tests (and KeyWatch) read."""
        return {"PKCS11_MODULE": self.module, "PKCS11_TOKEN_LABEL": self.label, "PKCS11_TOKEN_PIN": self.pin}

    def open(self) -> pkcs11.Session:
        """A logged-in read/write session (close it before calling code that logs in itself)."""
        return pkcs11.lib(self.module).get_token(token_label=self.label).open(rw=True, user_pin=self.pin)

    def can_encrypt(self, label: str) -> bool:
        """Whether the token lets the AES key ``label`` encrypt (a disabled key refuses).

        Taken in turn with KeyWatch's own sessions in this process (a test's API server acts on the
        same token from its threads).
        """
        with module_lock(self.module), self.open() as session:
            key = session.get_key(object_class=ObjectClass.SECRET_KEY, label=label)
            try:
                key.encrypt(b"customer data", mechanism_param=os.urandom(16))
            except (AttributeError, pkcs11.PKCS11Error):
                return False
            return True


@dataclass(frozen=True)
class SampleKeys:
    """Labels of the sample keys ``add_sample_keys`` made."""

    aes: str  # AES-256, ENCRYPT/DECRYPT/WRAP/UNWRAP, extractable
    ec: str  # EC P-256 signing pair (SIGN/VERIFY, DERIVE on the private half), extractable
    aes_decrypt_only: str  # AES-256 with DECRYPT only, never ENCRYPT
    aes_fixed: str  # AES-256, ENCRYPT/DECRYPT, not extractable


def make_token(directory: Path, *, label: str = "keywatch-test", pin: str = "1234") -> SoftHsmToken:
    """Initialise an empty token under ``directory`` and make this process use it."""
    tokens = directory / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    so_pin = "so-" + pin
    command = ["softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", so_pin, "--pin", pin]
    subprocess.run(command, check=True, capture_output=True, env=dict(os.environ))
    pkcs11.lib(MODULE).reinitialize()  # read the new SOFTHSM2_CONF even if loaded before
    return SoftHsmToken(MODULE, label, pin, so_pin, conf)


def add_sample_keys(token: SoftHsmToken, prefix: str | None = None) -> SampleKeys:
    """Generate the sample keys under fresh labels ``<prefix>-aes`` and so on."""
    prefix = prefix or f"k{uuid.uuid4().hex[:8]}"
    keys = SampleKeys(f"{prefix}-aes", f"{prefix}-ec", f"{prefix}-aes-dec", f"{prefix}-aes-fixed")
    with token.open() as session:
        extractable = {Attribute.EXTRACTABLE: True}
        session.generate_key(
            KeyType.AES, 256, label=keys.aes, store=True, capabilities=AES_USES, template=extractable
        )
        session.generate_key(
            KeyType.AES, 256, label=keys.aes_decrypt_only, store=True, capabilities=MechanismFlag.DECRYPT
        )
        fixed = {Attribute.EXTRACTABLE: False}
        encrypt = MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT
        session.generate_key(
            KeyType.AES, 256, label=keys.aes_fixed, store=True, capabilities=encrypt, template=fixed
        )
        params = {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}
        domain = session.create_domain_parameters(KeyType.EC, params, local=True)
        domain.generate_keypair(store=True, label=keys.ec, id=os.urandom(8), private_template=extractable)
    return keys
