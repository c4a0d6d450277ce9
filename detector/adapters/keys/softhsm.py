"""A SoftHSM2 token made on the spot, for the demo: the embedded stand-in for a real HSM."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pkcs11
from pkcs11 import Attribute, KeyType, MechanismFlag

from detector.domain.errors import ConfigError

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
_USES = MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT | MechanismFlag.WRAP | MechanismFlag.UNWRAP


def make_token(directory: Path, label: str, pin: str, key_labels: list[str]) -> Path:
    """Create a fresh token under ``directory`` holding one AES-256 key per label; return the module.

    Sets ``SOFTHSM2_CONF`` for this process and its children, so every later PKCS#11 session of
    the demo sees this token.
    """
    tool = shutil.which("softhsm2-util")
    if tool is None or not MODULE.exists():
        raise ConfigError("the demo's HSM needs SoftHSM2 (Debian package softhsm2)")
    shutil.rmtree(directory, ignore_errors=True)
    (directory / "tokens").mkdir(parents=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {directory / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    init = [tool, "--init-token", "--free", "--label", label, "--so-pin", f"so-{pin}", "--pin", pin]
    subprocess.run(init, check=True, capture_output=True)  # noqa: S603 - fixed arguments
    lib = pkcs11.lib(str(MODULE))
    lib.reinitialize()
    with lib.get_token(token_label=label).open(rw=True, user_pin=pin) as session:
        for key_label in key_labels:
            session.generate_key(
                KeyType.AES,
                256,
                label=key_label,
                store=True,
                capabilities=_USES,
                template={Attribute.EXTRACTABLE: True},
            )
    return MODULE
