"""The audit ledger's pure core: canonical hashing, redaction, and every kind of tampering named."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import replace
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.adapters.store.rows import to_dt, to_ts
from detector.domain.ledger import (
    CHECKPOINT_CONTEXT,
    GENESIS_HASH,
    REDACTED,
    AuditCheckpoint,
    AuditRecord,
    LedgerError,
    ProblemKind,
    VerifyReport,
    canonical_json,
    chain_hash,
    checkpoint_message,
    is_secret_name,
    next_record,
    redact,
    sign_checkpoint,
    verify_chain,
)

KEY = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()
T0 = 1_714_348_800.123456

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
names = st.text(min_size=1, max_size=24).filter(lambda s: "\x00" not in s)
entries = st.fixed_dictionaries(
    {
        "recorded_at": st.floats(min_value=0, max_value=4e9),
        "actor": names,
        "action": names,
        "target": st.text(max_size=24).filter(lambda s: "\x00" not in s),
        "details": st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    }
)


def verifier(public: Ed25519PublicKey) -> Any:
    def verify(message: bytes, signature: bytes) -> bool:
        try:
            public.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    return verify


def build(
    n: int, every: int = 1, specs: list[dict[str, Any]] | None = None
) -> tuple[list[AuditRecord], list[AuditCheckpoint]]:
    """``n`` chained records (or one per spec), a checkpoint every ``every``."""
    specs = specs or [
        {"recorded_at": T0 + i, "actor": "alice", "action": "disable", "target": f"key-{i}",
         "details": {"run_id": f"run-{i}", "step": i}}
        for i in range(n)
    ]  # fmt: skip
    records: list[AuditRecord] = []
    checkpoints: list[AuditCheckpoint] = []
    for spec in specs:
        record = next_record(records[-1] if records else None, **spec)
        records.append(record)
        if record.seq % every == 0:
            checkpoints.append(sign_checkpoint(record, KEY.sign, key_fingerprint="fp", signed_at=T0))
    return records, checkpoints


def check(
    records: list[AuditRecord],
    checkpoints: list[AuditCheckpoint],
    key: Ed25519PrivateKey = KEY,
    max_unsigned: int | None = None,
) -> VerifyReport:
    return verify_chain(records, checkpoints, verifier(key.public_key()), max_unsigned=max_unsigned)


def problem(report: VerifyReport) -> tuple[ProblemKind, int]:
    assert report.problem is not None, report
    return report.problem.kind, report.problem.seq


# -- intact chains -------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(entries, min_size=1, max_size=8), st.integers(min_value=1, max_value=4))
def test_generated_records_verify_and_round_trip(specs: list[dict[str, Any]], every: int) -> None:
    records, checkpoints = build(0, every, specs)
    report = check(records, checkpoints, max_unsigned=every - 1)
    assert report.ok, report
    assert (report.records, report.last_seq, report.last_hash) == (len(specs), len(specs), records[-1].hash)
    again = [AuditRecord.from_dict(json.loads(json.dumps(r.to_dict()))) for r in records]
    assert again == records
    assert check(again, checkpoints).ok
    for record, spec in zip(records, specs, strict=True):
        assert record.details == json.loads(canonical_json(redact(spec["details"])))


@given(st.floats(min_value=0, max_value=4e9))
def test_recorded_at_survives_the_store_round_trip(ts: float) -> None:
    record = next_record(None, recorded_at=ts, actor="a", action="b", target="c")
    assert round(to_ts(to_dt(record.recorded_at)), 6) == record.recorded_at


def test_empty_ledger_verifies() -> None:
    report = check([], [], max_unsigned=0)
    assert report.ok
    assert report.summary() == f"ledger verified: 0 records, 0 checkpoints, last hash {GENESIS_HASH}"


def test_hash_format_is_stable() -> None:
    record = next_record(None, recorded_at=T0, actor="alice", action="disable", target="key-1",
                         details={"run_id": "r1", "ratio": 0.1})  # fmt: skip
    body = (
        b'{"action":"disable","actor":"alice","details":{"ratio":0.1,"run_id":"r1"},'
        b'"recorded_at":1714348800.123456,"seq":1,"target":"key-1"}'
    )
    assert canonical_json(record.fields()) == body
    assert record.hash == chain_hash(GENESIS_HASH, record.fields())
    assert record.hash == hashlib.sha256(bytes(32) + body).hexdigest()
    second = next_record(record, recorded_at=T0, actor="alice", action="enable", target="key-1")
    assert second.prev_hash == record.hash
    assert (
        second.hash
        == hashlib.sha256(bytes.fromhex(record.hash) + canonical_json(second.fields())).hexdigest()
    )


def test_checkpoint_message_format() -> None:
    message = checkpoint_message(258, "ab" * 32)
    assert message == CHECKPOINT_CONTEXT + bytes([0, 0, 0, 0, 0, 0, 1, 2]) + bytes([0xAB] * 32)
    assert CHECKPOINT_CONTEXT == b"keywatch-audit-checkpoint\x00"


# -- canonical JSON and inputs -------------------------------------------------------------------


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert (
        canonical_json({"b": 1e16, "a": ["é", 0.1, -0.0, True]})
        == '{"a":["é",0.1,-0.0,true],"b":1e+16}'.encode()
    )


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, {1: "x"}, {"s": {1, 2}}, "\ud800", b"raw"])
def test_canonical_json_refuses_what_cannot_be_hashed(bad: Any) -> None:
    with pytest.raises(LedgerError):
        canonical_json({"value": bad})


@pytest.mark.parametrize(
    "change",
    [
        {"recorded_at": math.nan},
        {"recorded_at": math.inf},
        {"actor": ""},
        {"action": ""},
        {"actor": "x" * 129},
        {"action": "x" * 65},
        {"target": "a\x00b"},
        {"details": {"ratio": math.nan}},
    ],
)
def test_next_record_refuses_bad_input(change: dict[str, Any]) -> None:
    entry: dict[str, Any] = {"recorded_at": T0, "actor": "a", "action": "b", "target": "c", **change}
    with pytest.raises(LedgerError):
        next_record(None, **entry)


def test_secrets_are_redacted_before_hashing() -> None:
    details = {
        "pin": "PIN-0000",
        "nested": {"slackToken": "xoxb-1", "token_label": "kw-token", "DB_PASSWORD": "p"},
        "steps": [{"client_secret": "s", "key_id": "k1"}],
        "tokens": ["a", "b"],
        "spin": 3,
    }
    record = next_record(None, recorded_at=T0, actor="a", action="b", target="c", details=details)
    assert record.details == {
        "pin": REDACTED,
        "nested": {"slackToken": REDACTED, "token_label": "kw-token", "DB_PASSWORD": REDACTED},
        "steps": [{"client_secret": REDACTED, "key_id": "k1"}],
        "tokens": REDACTED,
        "spin": 3,
    }
    assert b"PIN-0000" not in canonical_json(record.fields())
    assert [is_secret_name(n) for n in ("passphrase", "secret_id", "pinned", "api-key-pin")] == [
        True,
        False,
        False,
        True,
    ]


# -- tampering -----------------------------------------------------------------------------------

EDITS = {
    "actor": lambda r: replace(r, actor=r.actor + "x"),
    "action": lambda r: replace(r, action="enable"),
    "target": lambda r: replace(r, target="key-other"),
    "details": lambda r: replace(r, details={**r.details, "tampered": True}),
    "recorded_at": lambda r: replace(r, recorded_at=r.recorded_at + 1),
    "hash": lambda r: replace(r, hash="f" * 64),
    "prev_hash": lambda r: replace(r, prev_hash="e" * 64),
}


@given(st.integers(min_value=1, max_value=10), st.data())
def test_an_edited_field_names_the_record(n: int, data: st.DataObject) -> None:
    records, checkpoints = build(n)
    k = data.draw(st.integers(min_value=0, max_value=n - 1))
    edit = data.draw(st.sampled_from(sorted(EDITS)))
    records[k] = EDITS[edit](records[k])
    report = check(records, checkpoints)
    assert problem(report) == (ProblemKind.EDITED, k + 1)
    assert f"record {k + 1} was edited" in report.summary()


@given(st.integers(min_value=2, max_value=10), st.data())
def test_a_deleted_record_is_named(n: int, data: st.DataObject) -> None:
    records, checkpoints = build(n)
    k = data.draw(st.integers(min_value=0, max_value=n - 2))
    del records[k]
    assert problem(check(records, checkpoints)) == (ProblemKind.DELETED, k + 1)
    assert "was deleted" in str(check(records, checkpoints).problem)


@given(st.integers(min_value=2, max_value=10), st.data())
def test_a_deleted_record_with_the_rest_renumbered_is_named(n: int, data: st.DataObject) -> None:
    records, checkpoints = build(n)
    k = data.draw(st.integers(min_value=0, max_value=n - 2))
    tampered = records[:k] + [replace(r, seq=r.seq - 1) for r in records[k + 1 :]]
    report = check(tampered, checkpoints)
    assert problem(report) == (ProblemKind.DELETED, k + 1)


@given(st.integers(min_value=2, max_value=10), st.data())
def test_two_swapped_records_are_named(n: int, data: st.DataObject) -> None:
    records, checkpoints = build(n)
    i, j = sorted(data.draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=2, unique=True)))
    listed = records.copy()
    listed[i], listed[j] = listed[j], listed[i]  # out of seq order
    report = check(listed, checkpoints)
    assert problem(report) == (ProblemKind.REORDERED, i + 1)
    assert f"records {i + 1}-{j + 1} were reordered" in report.summary()
    stored = records.copy()  # as the database shows a swap: seq values exchanged, read in seq order
    stored[i], stored[j] = replace(records[j], seq=i + 1), replace(records[i], seq=j + 1)
    report = check(stored, checkpoints)
    assert problem(report) == (ProblemKind.REORDERED, i + 1)
    assert f"records {i + 1}-{j + 1} were reordered" in report.summary()


@given(st.integers(min_value=1, max_value=10), st.data(), st.booleans())
def test_an_inserted_record_is_named(n: int, data: st.DataObject, signed: bool) -> None:
    records, checkpoints = build(n)
    k = data.draw(st.integers(min_value=0, max_value=n - 1))
    forged = next_record(records[k - 1] if k else None, recorded_at=T0, actor="mallory", action="enable",
                         target="key-0")  # fmt: skip
    tampered = [*records[:k], forged, *(replace(r, seq=r.seq + 1) for r in records[k:])]
    report = check(tampered, checkpoints if signed else [])
    assert problem(report) == (ProblemKind.INSERTED, k + 1)
    assert f"record {k + 1} was inserted" in report.summary()


def test_a_repeated_seq_is_an_insertion() -> None:
    records, checkpoints = build(4)
    assert problem(check([*records[:3], records[1], records[3]], checkpoints)) == (ProblemKind.INSERTED, 2)


@given(st.integers(min_value=1, max_value=10), st.data())
def test_a_truncated_tail_is_named(n: int, data: st.DataObject) -> None:
    records, checkpoints = build(n)
    keep = data.draw(st.integers(min_value=0, max_value=n - 1))
    report = check(records[:keep], checkpoints)
    assert problem(report) == (ProblemKind.TRUNCATED, keep + 1)
    assert f"checkpoint {n} covers them" in report.summary()


@given(st.integers(min_value=1, max_value=10), st.data())
def test_a_forged_checkpoint_signature_is_named(n: int, data: st.DataObject) -> None:
    records, checkpoints = build(n)
    k = data.draw(st.integers(min_value=0, max_value=n - 1))
    forge = data.draw(st.sampled_from(["other key", "garbage", "other message"]))
    message = checkpoint_message(checkpoints[k].seq, checkpoints[k].hash)
    signature = {"other key": OTHER.sign(message), "garbage": b"\x01" * 64,
                 "other message": KEY.sign(message[:-1] + b"\x00")}[forge]  # fmt: skip
    checkpoints[k] = replace(checkpoints[k], signature=signature)
    report = check(records, checkpoints)
    assert problem(report) == (ProblemKind.BAD_CHECKPOINT, k + 1)
    assert f"checkpoint {k + 1} has an invalid signature" in report.summary()


def test_a_forged_checkpoint_beyond_the_end_is_named() -> None:
    records, checkpoints = build(3)
    forged = AuditCheckpoint(9, "a" * 64, b"\x00" * 64, "fp", T0)
    assert problem(check(records, [*checkpoints, forged])) == (ProblemKind.BAD_CHECKPOINT, 9)


def test_the_wrong_public_key_fails_on_the_first_checkpoint() -> None:
    records, checkpoints = build(7, every=3)
    report = check(records, checkpoints, key=OTHER)
    assert problem(report) == (ProblemKind.BAD_CHECKPOINT, 3)


@pytest.mark.parametrize(("every", "start", "named"), [(1, 4, 4), (3, 5, 4), (3, 3, 1)])
def test_a_rewritten_chain_is_caught_by_the_next_checkpoint(every: int, start: int, named: int) -> None:
    records, checkpoints = build(8, every)
    rewritten = records[: start - 1]
    for old in records[start - 1 :]:
        actor = "mallory" if old.seq == start else old.actor
        entry = {**old.fields(), "actor": actor}
        del entry["seq"]
        rewritten.append(next_record(rewritten[-1] if rewritten else None, **entry))
    report = check(rewritten, checkpoints)
    assert problem(report) == (ProblemKind.REWRITTEN, named)
    assert check(rewritten, []).ok  # without checkpoints a full rewrite is invisible


def test_an_edit_with_a_recomputed_hash_names_the_record() -> None:
    records, _ = build(5)
    edited = replace(records[2], actor="mallory")
    records[2] = replace(edited, hash=chain_hash(edited.prev_hash, edited.fields()))
    assert problem(check(records, [])) == (ProblemKind.EDITED, 3)


def test_the_first_problem_wins() -> None:
    records, checkpoints = build(8)
    records[5] = replace(records[5], actor="mallory")
    del records[2]
    report = check(records, checkpoints)
    assert problem(report) == (ProblemKind.DELETED, 3)


@pytest.mark.parametrize(("every", "n"), [(1, 4), (3, 5), (3, 6)])
def test_records_after_the_newest_checkpoint_within_the_interval_pass(every: int, n: int) -> None:
    records, checkpoints = build(n, every)
    assert check(records, checkpoints, max_unsigned=every - 1).ok


def test_unsigned_records_beyond_the_interval_are_named() -> None:
    records, checkpoints = build(4)
    forged = next_record(records[-1], recorded_at=T0, actor="mallory", action="enable", target="key-1")
    report = check([*records, forged], checkpoints, max_unsigned=0)
    assert problem(report) == (ProblemKind.UNSIGNED, 5)
    assert check([*records, forged], checkpoints).ok  # not asked to check the tail
