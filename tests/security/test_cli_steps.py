"""The command line names a step as the API does: by its id or by the same 0-based index.

It counted steps from 1 while the API and its own JSON counted from 0, so an index read off one
approved a different step (or none) through the other.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pkcs11 import KeyType
from softhsm import AES_USES, make_token

from detector.adapters.audit import generate_signing_key
from detector.cli.main import main

pytestmark = pytest.mark.integration
LABEL = "arn:aws:kms:eu-west-1:111122223333:key/approve-me"


@pytest.mark.parametrize("how", ["id", "index"])
def test_approve_takes_the_step_the_api_and_runs_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    token = make_token(tmp_path / "hsm", label="kw-steps", pin="1357")
    with token.open() as session:
        session.generate_key(KeyType.AES, 256, label=LABEL, store=True, capabilities=AES_USES)
    generate_signing_key(tmp_path / "audit.key")
    for var, value in {**token.env(), "KEYWATCH_AUDIT__SIGNING_KEY": str(tmp_path / "audit.key"),
                       "KEYWATCH_RESPONSE__DEFAULT_BACKEND": "pkcs11"}.items():  # fmt: skip
        monkeypatch.setenv(var, value)
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    for name in ("alice", "bob"):
        assert main(["users", "add", name, "--role", "responder", "--db", db]) == 0
    run = ["playbook", "run", "contain-key-on-approval", "--key", LABEL, "--mode", "active", "--db", db]
    assert main([*run, "--as", "alice"]) == 0
    capsys.readouterr()
    assert main(["playbook", "runs", "--json", "--db", db]) == 0
    [view] = json.loads(capsys.readouterr().out)
    run_id = view["run_id"]
    waiting = next(s for s in view["steps"] if s["status"] == "waiting")
    step = waiting["step_id"] if how == "id" else str(waiting["step_index"])
    assert main(["playbook", "approve", run_id, "--step", step, "--as", "bob", "--db", db]) == 0
    assert main(["playbook", "runs", "--db", db]) == 0
    text = capsys.readouterr().out
    assert "completed" in text and f"#{waiting['step_index']} {waiting['step_id']}" in text
    assert not token.can_encrypt(LABEL)
    assert main(["playbook", "approve", run_id, "--step", "nope", "--as", "bob", "--db", db]) == 2
    assert "has no step 'nope'" in capsys.readouterr().err
