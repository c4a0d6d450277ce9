"""A wiped or rolled-back ledger verifies by itself; against a head kept outside the database it fails.

Deleting every record and checkpoint ("verified: 0 records") or cutting the ledger back to a
valid prefix left ``audit verify`` passing. ``verify`` now prints the head it verified, and
``--expect SEQ:HASH`` fails when that record is gone or different.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from detector.adapters.audit import Ledger, generate_signing_key
from detector.adapters.store import Store
from detector.adapters.store import tables as t
from detector.cli.main import main

pytestmark = pytest.mark.integration


def _verify(db: str, key: Path, capsys: pytest.CaptureFixture[str], *expect: str) -> tuple[int, str]:
    flags = [f"--expect={head}" for head in expect]
    code = main(["audit", "verify", "--db", db, "--signing-key", str(key), *flags])
    return code, capsys.readouterr().out


@pytest.mark.parametrize("tampering", ["wiped", "rolled back"])
def test_a_kept_head_catches_a_wiped_or_rolled_back_ledger(
    store: Store, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], tampering: str
) -> None:
    key = tmp_path / "audit.pem"
    ledger = Ledger(store, generate_signing_key(key))
    for i in range(6):
        ledger.append("rita", "disable_key", f"key-{i}", {"n": i})
    code, out = _verify(db_url, key, capsys)
    head = out.split("head: ")[1].split()[0]
    assert code == 0 and head.startswith("6:")
    cut = 0 if tampering == "wiped" else 3
    with store.writing() as conn:
        conn.execute(sa.delete(t.audit_checkpoints).where(t.audit_checkpoints.c.seq > cut))
        conn.execute(sa.delete(t.audit_records).where(t.audit_records.c.seq > cut))
    assert _verify(db_url, key, capsys)[0] == 0, "alone, a valid prefix (or nothing) verifies"
    code, out = _verify(db_url, key, capsys, head)
    assert code == 1 and "missing" in out


def test_a_kept_head_passes_while_the_ledger_grows(
    store: Store, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "audit.pem"
    ledger = Ledger(store, generate_signing_key(key))
    ledger.append("rita", "disable_key", "k1", {})
    head = _verify(db_url, key, capsys)[1].split("head: ")[1].split()[0]
    ledger.append("rita", "enable_key", "k1", {})
    code, out = _verify(db_url, key, capsys, head)
    assert code == 0 and "head: 2:" in out
    with pytest.raises(SystemExit, match="2"):
        main(["audit", "verify", "--db", db_url, "--signing-key", str(key), "--expect", "x:y"])
