"""The audit ledger on SQLite and PostgreSQL: appends, tampering in SQL, the CLI, concurrency, keys."""

from __future__ import annotations

import base64
import json
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from detector.adapters.audit import (
    Ledger,
    generate_signing_key,
    key_fingerprint,
    load_public_key,
    load_signing_key,
    write_public_key,
)
from detector.adapters.store import Store
from detector.adapters.store import tables as t
from detector.adapters.store.rows import to_dt
from detector.cli.main import main
from detector.domain.ledger import REDACTED, LedgerError, ProblemKind, checkpoint_message, next_record

pytestmark = pytest.mark.integration

T0 = 1_714_348_800.123456
DETAILS = {"run_id": "run-1", "ratio": 0.1, "big": 2**62 + 1, "label": "clé ✓", "steps": [1, 2.5, None]}


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "audit.pem"
    write_public_key(generate_signing_key(path).public_key(), tmp_path / "audit.pem.pub")
    return path


def ticking(start: float = T0) -> Callable[[], float]:
    now = [start]

    def clock() -> float:
        now[0] += 0.000_137
        return now[0]

    return clock


@pytest.fixture
def ledger(store: Store, key_file: Path) -> Ledger:
    ledger = Ledger(store, load_signing_key(key_file), clock=ticking())
    for i in range(1, 6):
        ledger.append("alice", "disable", f"key-{i}", {**DETAILS, "step": i})
    return ledger


def verify_cli(
    db_url: str, key_file: Path, capsys: pytest.CaptureFixture[str], *flags: str
) -> tuple[int, str]:
    code = main(["audit", "verify", "--db", db_url, *(flags or ("--signing-key", str(key_file)))])
    return code, capsys.readouterr().out


def test_appended_records_round_trip_and_verify(ledger: Ledger, key_file: Path) -> None:
    records = ledger.records()
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[0].details == {**DETAILS, "step": 1}
    assert records[0].recorded_at == round(T0 + 0.000_137, 6)
    assert [r.seq for r in ledger.records(limit=2, newest_first=True)] == [5, 4]
    assert [c.seq for c in ledger.checkpoints()] == [1, 2, 3, 4, 5]
    assert {c.key_fingerprint for c in ledger.checkpoints()} == {ledger.fingerprint}
    report = ledger.verify(load_signing_key(key_file).public_key())
    assert report.ok, report
    assert (report.records, report.checkpoints, report.last_hash) == (5, 5, records[-1].hash)


def test_checkpoints_follow_the_interval(store: Store, key_file: Path) -> None:
    ledger = Ledger(store, load_signing_key(key_file), checkpoint_every=3)
    for i in range(7):
        ledger.append("keywatch", "rotate", f"key-{i}")
    assert [c.seq for c in ledger.checkpoints()] == [3, 6]
    assert ledger.verify(load_signing_key(key_file).public_key()).ok
    strict = Ledger(store, None, checkpoint_every=1).verify(load_signing_key(key_file).public_key())
    assert strict.problem is not None
    assert (strict.problem.kind, strict.problem.seq) == (ProblemKind.UNSIGNED, 7)


def test_cli_verify_passes_an_intact_ledger(
    ledger: Ledger, db_url: str, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = verify_cli(db_url, key_file, capsys)
    assert code == 0, out
    assert out.startswith(f"ledger verified: 5 records, 5 checkpoints, last hash {ledger.records()[-1].hash}")
    code, out = verify_cli(db_url, key_file, capsys, "--public-key", f"{key_file}.pub")
    assert code == 0, out
    public = key_file.with_name("empty.pub")
    public.write_bytes(b"")
    assert main(["audit", "verify", "--db", db_url, "--public-key", str(public)]) == 2
    assert "not a PEM public key" in capsys.readouterr().err


def _swap(conn: sa.Connection, a: int, b: int) -> None:
    c = t.audit_records.c
    for old, new in ((a, -1), (b, a), (-1, b)):
        conn.execute(t.audit_records.update().where(c.seq == old).values(seq=new))


TAMPERING: dict[str, tuple[Callable[[sa.Connection], object], str]] = {
    "update actor": (
        lambda conn: conn.execute(
            t.audit_records.update().where(t.audit_records.c.seq == 3).values(actor="mallory")
        ),
        "record 3 was edited",
    ),
    "update details": (
        lambda conn: conn.execute(
            t.audit_records.update().where(t.audit_records.c.seq == 2).values(details={"run_id": "run-9"})
        ),
        "record 2 was edited",
    ),
    "update time": (
        lambda conn: conn.execute(
            t.audit_records.update().where(t.audit_records.c.seq == 4).values(recorded_at=to_dt(T0 - 3600))
        ),
        "record 4 was edited",
    ),
    "delete middle": (
        lambda conn: conn.execute(t.audit_records.delete().where(t.audit_records.c.seq == 3)),
        "record 3 was deleted",
    ),
    "delete tail": (
        lambda conn: conn.execute(t.audit_records.delete().where(t.audit_records.c.seq >= 4)),
        "records 4-5 were deleted from the end",
    ),
    "swap": (lambda conn: _swap(conn, 2, 3), "records 2-3 were reordered"),
    "forge signature": (
        lambda conn: conn.execute(
            t.audit_checkpoints.update()
            .where(t.audit_checkpoints.c.seq == 4)
            .values(signature=base64.b64encode(b"\x07" * 64).decode())
        ),
        "checkpoint 4 has an invalid signature",
    ),
}


@pytest.mark.parametrize("how", sorted(TAMPERING))
def test_cli_verify_names_the_record_tampered_with_in_sql(
    how: str, ledger: Ledger, store: Store, db_url: str, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper, expected = TAMPERING[how]
    with store.writing() as conn:
        tamper(conn)
    code, out = verify_cli(db_url, key_file, capsys)
    assert code == 1, out
    assert expected in out


def test_a_rewritten_chain_is_caught_by_its_checkpoint(
    ledger: Ledger, store: Store, db_url: str, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forger = Ledger(store, Ed25519PrivateKey.generate())  # a writer without the ledger key
    with store.writing() as conn:
        conn.execute(t.audit_records.delete().where(t.audit_records.c.seq >= 3))
        conn.execute(t.audit_checkpoints.delete().where(t.audit_checkpoints.c.seq >= 3))
    forger.append("mallory", "enable", "key-3")
    code, out = verify_cli(db_url, key_file, capsys)
    assert code == 1
    assert "checkpoint 3 has an invalid signature" in out
    assert f"verified with key {str(ledger.fingerprint)[:16]}" in out


def test_a_record_appended_without_a_checkpoint_is_named(
    ledger: Ledger, store: Store, db_url: str, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    last = ledger.records()[-1]
    forged = next_record(last, recorded_at=T0 + 60, actor="mallory", action="enable", target="key-1")
    with store.writing() as conn:
        conn.execute(
            t.audit_records.insert().values({**forged.to_dict(), "recorded_at": to_dt(forged.recorded_at)})
        )
    code, out = verify_cli(db_url, key_file, capsys)
    assert code == 1
    assert "record 6 is not covered by a signed checkpoint" in out


def test_verify_with_the_wrong_public_key_fails_on_the_first_checkpoint(
    ledger: Ledger, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "keygen", "--out", str(tmp_path / "other.pem")]) == 0
    capsys.readouterr()
    code = main(["audit", "verify", "--db", db_url, "--public-key", str(tmp_path / "other.pem.pub")])
    out = capsys.readouterr().out
    assert code == 1
    assert "checkpoint 1 has an invalid signature" in out


def test_concurrent_appends_keep_one_chain(db_url: str, key_file: Path) -> None:
    with Store(db_url) as first:
        first.migrate()
    errors: list[BaseException] = []
    key = load_signing_key(key_file)

    def work(name: str) -> None:
        try:
            with Store(db_url) as own:  # its own engine: like another process
                ledger = Ledger(own, key)
                for i in range(15):
                    ledger.append(name, "approve", f"run-{i}")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(name,)) for name in ("alice", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    with Store(db_url) as store:
        ledger = Ledger(store, None)
        records = ledger.records()
        assert [r.seq for r in records] == list(range(1, 31))
        assert [r.actor for r in records].count("bob") == 15
        assert ledger.verify(key.public_key()).ok


def test_secrets_never_reach_the_database(store: Store, key_file: Path) -> None:
    ledger = Ledger(store, load_signing_key(key_file))
    record = ledger.append(
        "alice", "login", "hsm", {"pin": "PIN-4711", "token_label": "kw", "slackToken": "xoxb"}
    )
    assert record.details == {"pin": REDACTED, "token_label": "kw", "slackToken": REDACTED}
    with store.reading() as conn:
        raw = conn.execute(sa.select(sa.cast(t.audit_records.c.details, sa.Text))).scalar_one()
    assert "PIN-4711" not in raw
    assert "xoxb" not in raw


def test_a_read_only_ledger_refuses_to_append(store: Store) -> None:
    with pytest.raises(LedgerError, match="no signing key"):
        Ledger(store, None).append("alice", "disable", "key-1")


def test_cli_audit_list(ledger: Ledger, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "list", "--db", db_url, "--json", "--limit", "2"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["seq"] for r in listed] == [5, 4]
    assert listed[0]["details"]["label"] == "clé ✓"
    assert main(["audit", "list", "--db", db_url]) == 0
    out = capsys.readouterr().out
    assert "5 audit records" in out
    assert "key-3" in out


def test_keygen_writes_a_private_key_only_its_owner_can_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ledger.pem"
    assert main(["audit", "keygen", "--out", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    key = load_signing_key(out)
    public = load_public_key(tmp_path / "ledger.pem.pub")
    assert key_fingerprint(public) == key_fingerprint(key.public_key())
    assert key_fingerprint(public) in capsys.readouterr().out
    assert main(["audit", "keygen", "--out", str(out)]) == 2  # never overwrites
    assert "already exists" in capsys.readouterr().err
    message = checkpoint_message(1, "0" * 64)
    public.verify(key.sign(message), message)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_signing_key_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "loose.pem"
    generate_signing_key(path)
    path.chmod(mode)
    with pytest.raises(LedgerError, match="chmod 600"):
        load_signing_key(path)


def test_bad_key_files_are_refused_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(LedgerError, match="not found"):
        load_signing_key(tmp_path / "missing.pem")
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"not a key")
    junk.chmod(0o600)
    with pytest.raises(LedgerError, match="not an unencrypted PEM private key"):
        load_signing_key(junk)
    assert (
        main(["audit", "verify", "--db", f"sqlite:///{tmp_path / 'x.db'}", "--signing-key", str(junk)]) == 2
    )
    assert "not an unencrypted PEM private key" in capsys.readouterr().err


def test_verify_while_appending_sees_one_consistent_snapshot(db_url: str, key_file: Path) -> None:
    key = load_signing_key(key_file)
    done = threading.Event()

    def append() -> None:
        with Store(db_url) as own:
            ledger = Ledger(own, key)
            for i in range(25):
                ledger.append("keywatch", "disable", f"key-{i}")
        done.set()

    with Store(db_url) as store:
        store.migrate()
        thread = threading.Thread(target=append)
        thread.start()
        reports = []
        while not done.is_set():
            reports.append(Ledger(store, None).verify(key.public_key()))
        thread.join()
        reports.append(Ledger(store, None).verify(key.public_key()))
    assert [r.problem for r in reports if not r.ok] == []
    assert reports[-1].records == 25


def test_cli_verify_takes_the_key_from_the_settings(
    ledger: Ledger,
    db_url: str,
    key_file: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KEYWATCH_AUDIT__SIGNING_KEY", raising=False)
    assert main(["audit", "verify", "--db", db_url]) == 2
    assert "no key to check checkpoints with" in capsys.readouterr().err
    monkeypatch.setenv("KEYWATCH_AUDIT__SIGNING_KEY", str(key_file))
    assert main(["audit", "verify", "--db", db_url]) == 0
    assert capsys.readouterr().out.startswith("ledger verified: 5 records")
