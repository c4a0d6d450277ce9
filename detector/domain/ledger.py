"""The audit ledger's pure core: a hash chain of records, signed checkpoints, and their verification.

Record hash: ``sha256(prev_hash as 32 raw bytes || canonical_json(fields))`` as 64 lower-case hex
digits, where ``fields`` are ``seq, recorded_at, actor, action, target, details`` and record 1 chains
from :data:`GENESIS_HASH`. Canonical JSON: keys sorted by code point, no whitespace, UTF-8 (not
ASCII-escaped), floats as Python's shortest round-trip ``repr`` (``0.1``, ``1e+16``), NaN and
infinities refused. ``recorded_at`` is epoch seconds rounded to microseconds, as the store keeps it.

Checkpoint: a signature over :func:`checkpoint_message` (``CHECKPOINT_CONTEXT``, ``seq`` as 8
big-endian bytes, the record's hash as 32 raw bytes), vouching for the chain up to ``seq``. Signing
and checking signatures are injected callables, so this module needs no crypto library and no I/O.

:func:`verify_chain` names the first record edited, deleted, reordered or inserted, a checkpoint that
is forged or no longer matches, and records cut from the tail under the newest checkpoint. Deleting
the newest records *and* their checkpoints cannot be seen from inside the database: compare
``last_seq``/``last_hash`` with a copy kept elsewhere.

``details`` carry ids (key, run, incident), never secrets; as a safety net, values under keys named
like pin, token, secret, password or passphrase become ``"[redacted]"`` before hashing.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from detector.domain.errors import KeyWatchError

GENESIS_HASH = "0" * 64
CHECKPOINT_CONTEXT = b"keywatch-audit-checkpoint\x00"
REDACTED = "[redacted]"
SECRET_WORDS = frozenset({"pin", "token", "secret", "password", "passphrase", "passwd"})
SAFE_WORDS = frozenset({"id", "ids", "label", "name", "hash", "fingerprint", "arn"})  # "token_label" is an id
# PKCS#11 object classes as the standard spells them (CKO_SECRET_KEY ...): names of kinds of key
# objects, whose values are usages or labels, never key material.
OBJECT_CLASSES = frozenset({"SECRET_KEY", "PRIVATE_KEY", "PUBLIC_KEY", "CERTIFICATE", "DATA"})
MAX_ACTOR = 128  # column widths in the store
MAX_ACTION = 64
SEARCH_WINDOW = 64  # how far away a moved record's original seq is looked for

Sign = Callable[[bytes], bytes]
VerifySignature = Callable[[bytes, bytes], bool]  # (message, signature) -> valid

_HEX64 = re.compile(r"[0-9a-f]{64}")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")


class LedgerError(KeyWatchError):
    """A record or key cannot be used for the ledger; the message says why."""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One ledger entry; ``hash`` covers its fields and chains it to ``prev_hash``."""

    seq: int
    recorded_at: float
    actor: str
    action: str
    target: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def fields(self) -> dict[str, Any]:
        """The hashed content: everything but the two hashes."""
        return {"seq": self.seq, "recorded_at": self.recorded_at, "actor": self.actor,
                "action": self.action, "target": self.target, "details": self.details}  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, inverse of :meth:`from_dict`."""
        return {**self.fields(), "prev_hash": self.prev_hash, "hash": self.hash}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditRecord:
        """Rebuild a record from :meth:`to_dict` output."""
        return cls(int(data["seq"]), float(data["recorded_at"]), data["actor"], data["action"],
                   data["target"], data["details"], data["prev_hash"], data["hash"])  # fmt: skip


@dataclass(frozen=True, slots=True)
class AuditCheckpoint:
    """A signature over one record's seq and hash, vouching for the chain up to it."""

    seq: int
    hash: str
    signature: bytes
    key_fingerprint: str  # sha256 of the signer's raw public key, hex
    signed_at: float


class ProblemKind(StrEnum):
    """What verification found wrong."""

    EDITED = "edited"
    DELETED = "deleted"
    REORDERED = "reordered"
    INSERTED = "inserted"
    REWRITTEN = "rewritten"  # hashes recomputed: only a checkpoint shows it
    BAD_CHECKPOINT = "bad_checkpoint"  # signature invalid, or names no record
    TRUNCATED = "truncated"
    UNSIGNED = "unsigned"  # more records after the newest checkpoint than allowed


@dataclass(frozen=True, slots=True)
class Problem:
    """The first problem: its kind, the first record concerned, and a sentence naming it."""

    kind: ProblemKind
    seq: int
    message: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of :func:`verify_chain`; ``problem`` is None when the ledger is intact."""

    records: int
    checkpoints: int
    last_seq: int
    last_hash: str
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return self.problem is None

    def summary(self) -> str:
        """One line for people."""
        if self.problem is None:
            return (f"ledger verified: {self.records} records, {self.checkpoints} checkpoints, "
                    f"last hash {self.last_hash}")  # fmt: skip
        return f"ledger verification FAILED: {self.problem.message}"


# -- hashing -------------------------------------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8; NaN, infinities, non-string keys, non-JSON types refused.

    >>> canonical_json({"b": [1, 2.5, None], "a": "x y"})
    b'{"a":"x y","b":[1,2.5,null]}'
    """
    _check_json(value, "value")
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return text.encode("utf-8")
    except ValueError as exc:  # lone surrogates
        raise LedgerError(f"audit data is not canonical JSON: {exc}") from None


def _check_json(value: Any, where: str) -> None:
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LedgerError(f"audit {where} is {value}: NaN and infinities cannot be hashed")
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise LedgerError(f"audit {where} has a key that is not a string: {key!r}")
            _check_json(item, f"{where}.{key}")
        return
    raise LedgerError(f"audit {where} holds a {type(value).__name__}, which is not JSON")


def chain_hash(prev_hash: str, record_fields: Mapping[str, Any]) -> str:
    """``sha256(prev_hash as 32 raw bytes || canonical_json(record_fields))`` in hex.

    >>> chain_hash(GENESIS_HASH, {"seq": 1})[:16]
    'ff44e121014845ba'
    """
    return hashlib.sha256(_raw(prev_hash) + canonical_json(dict(record_fields))).hexdigest()


def _raw(hex_hash: str) -> bytes:
    if not isinstance(hex_hash, str) or not _HEX64.fullmatch(hex_hash):
        raise LedgerError(f"not a sha256 hash (64 lower-case hex digits): {hex_hash!r}")
    return bytes.fromhex(hex_hash)


def is_secret_name(name: str) -> bool:
    """Whether a details key looks like it names a secret (``pin``, ``slackToken``, not ``token_label``).

    >>> [is_secret_name(n) for n in ("pin", "apiToken", "db_password", "token_label", "spin")]
    [True, True, True, False, False]
    >>> [is_secret_name(n) for n in ("SECRET_KEY", "secret_key", "aws_secret_key")]
    [False, True, True]
    """
    if name in OBJECT_CLASSES:
        return False
    words = [w for w in _NON_WORD.split(_CAMEL.sub("_", name).lower()) if w]
    if not words or words[-1] in SAFE_WORDS:
        return False
    return any(w in SECRET_WORDS or w.removesuffix("s") in SECRET_WORDS for w in words)


def redact(value: Any) -> Any:
    """A copy with values under secret-looking keys replaced by ``"[redacted]"``, at any depth."""
    if isinstance(value, Mapping):
        return {k: REDACTED if isinstance(k, str) and is_secret_name(k) else redact(v)
                for k, v in value.items()}  # fmt: skip
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def next_record(
    prev: AuditRecord | None,
    *,
    recorded_at: float,
    actor: str,
    action: str,
    target: str,
    details: Mapping[str, Any] | None = None,
) -> AuditRecord:
    """The record after ``prev`` (None: record 1), with details redacted and normalized, and its hash."""
    _check_text("actor", actor, MAX_ACTOR, required=True)
    _check_text("action", action, MAX_ACTION, required=True)
    _check_text("target", target, None, required=False)
    if not isinstance(recorded_at, int | float) or not math.isfinite(recorded_at):
        raise LedgerError(f"audit recorded_at must be finite epoch seconds, not {recorded_at!r}")
    clean = json.loads(canonical_json(redact(dict(details or {}))))  # as the store gives it back
    prev_hash = prev.hash if prev else GENESIS_HASH
    draft = AuditRecord(prev.seq + 1 if prev else 1, round(float(recorded_at), 6), actor, action,
                        target, clean, prev_hash, "")  # fmt: skip
    return replace(draft, hash=chain_hash(prev_hash, draft.fields()))


def _check_text(name: str, value: str, limit: int | None, *, required: bool) -> None:
    if not isinstance(value, str):
        raise LedgerError(f"audit {name} must be a string, not {type(value).__name__}")
    if required and not value:
        raise LedgerError(f"audit {name} must not be empty")
    if limit is not None and len(value) > limit:
        raise LedgerError(f"audit {name} is longer than {limit} characters")
    if "\x00" in value:
        raise LedgerError(f"audit {name} contains a NUL character")


# -- checkpoints ---------------------------------------------------------------------------------


def checkpoint_message(seq: int, record_hash: str) -> bytes:
    """What a checkpoint signs: the context, ``seq`` as 8 big-endian bytes, the hash as 32 raw bytes.

    >>> msg = checkpoint_message(17, GENESIS_HASH)
    >>> len(msg), msg[:26], msg[26:34].hex()
    (66, b'keywatch-audit-checkpoint\\x00', '0000000000000011')
    """
    if not 0 <= seq < 2**64:
        raise LedgerError(f"checkpoint seq out of range: {seq}")
    return CHECKPOINT_CONTEXT + seq.to_bytes(8, "big") + _raw(record_hash)


def sign_checkpoint(
    record: AuditRecord, sign: Sign, *, key_fingerprint: str, signed_at: float
) -> AuditCheckpoint:
    """A checkpoint over ``record``, signed by ``sign`` (e.g. an Ed25519 key's ``sign``)."""
    signature = sign(checkpoint_message(record.seq, record.hash))
    return AuditCheckpoint(record.seq, record.hash, signature, key_fingerprint, signed_at)


# -- verification --------------------------------------------------------------------------------


def verify_chain(
    records: Sequence[AuditRecord],
    checkpoints: Sequence[AuditCheckpoint],
    verify_signature: VerifySignature,
    *,
    max_unsigned: int | None = None,
) -> VerifyReport:
    """Check records (in stored seq order) and checkpoints; report the first problem, by position.

    ``max_unsigned``: how many records may follow the newest checkpoint (``checkpoint_every - 1``);
    None does not check.
    """
    by_seq = {c.seq: c for c in checkpoints}
    problem = _chain_problem(records, by_seq, verify_signature) or _tail_problem(
        records, checkpoints, verify_signature, max_unsigned
    )
    last = records[-1] if records else None
    return VerifyReport(len(records), len(checkpoints), last.seq if last else 0,
                        last.hash if last else GENESIS_HASH, problem)  # fmt: skip


def _chain_problem(
    records: Sequence[AuditRecord], checkpoints: Mapping[int, AuditCheckpoint], verify: VerifySignature
) -> Problem | None:
    where = {r.hash: i for i, r in enumerate(records)} | {GENESIS_HASH: -1}
    signed = 0  # seq of the newest checkpoint that matched
    for i, record in enumerate(records):
        problem = (
            _seq_problem(records, i)
            or _content_problem(records, i, where)
            or _link_problem(records, i, where)
            or _checkpoint_problem(records, i, checkpoints.get(record.seq), verify, where, signed)
        )
        if problem:
            return problem
        signed = record.seq if record.seq in checkpoints else signed
    return None


def _seq_problem(records: Sequence[AuditRecord], i: int) -> Problem | None:
    seq = records[i].seq
    expected = records[i - 1].seq + 1 if i else 1
    if seq == expected:
        return None
    if seq < expected:
        return Problem(ProblemKind.INSERTED, seq, f"record {seq} appears again after record {expected - 1}")
    if any(r.seq == expected for r in records[i + 1 :]):
        return Problem(ProblemKind.REORDERED, expected, f"records {expected}-{seq} were reordered")
    gone = f"record {expected} was" if seq == expected + 1 else f"records {expected}-{seq - 1} were"
    return Problem(ProblemKind.DELETED, expected, f"{gone} deleted")


def _consistent(record: AuditRecord, seq: int | None = None) -> bool:
    fields = record.fields() if seq is None else {**record.fields(), "seq": seq}
    try:
        return chain_hash(record.prev_hash, fields) == record.hash
    except LedgerError:
        return False


def _written_seq(record: AuditRecord) -> int | None:
    """The seq a moved record was written with, looked for near where it is now."""
    nearby = sorted(range(max(1, record.seq - SEARCH_WINDOW), record.seq + SEARCH_WINDOW + 1),
                    key=lambda s: abs(s - record.seq))  # fmt: skip
    return next((s for s in nearby if s != record.seq and _consistent(record, s)), None)


def _content_problem(records: Sequence[AuditRecord], i: int, where: Mapping[str, int]) -> Problem | None:
    record = records[i]
    if _consistent(record):
        return None
    seq, written = record.seq, _written_seq(record)
    if written is None:
        return Problem(
            ProblemKind.EDITED, seq, f"record {seq} was edited: its content does not match its hash"
        )
    pred = where.get(record.prev_hash)
    if pred is None and written > seq:
        return Problem(ProblemKind.DELETED, seq, f"record {seq} was deleted (the later ones renumbered)")
    if pred is not None and pred < i - 1:
        first = records[pred + 1].seq
        return Problem(
            ProblemKind.INSERTED, first, f"record {first} was inserted (the later ones renumbered)"
        )
    low, high = min(seq, written), max(seq, written)
    return Problem(ProblemKind.REORDERED, low, f"records {low}-{high} were reordered")


def _link_problem(records: Sequence[AuditRecord], i: int, where: Mapping[str, int]) -> Problem | None:
    record = records[i]
    expected = records[i - 1].hash if i else GENESIS_HASH
    if record.prev_hash == expected:
        return None
    pred = where.get(record.prev_hash)
    if pred is not None and -1 <= pred < i - 1:
        first = records[pred + 1].seq
        return Problem(ProblemKind.INSERTED, first, f"record {first} was inserted: {record.seq} skips it")
    if pred is not None and pred > i:
        other = records[pred].seq
        return Problem(ProblemKind.REORDERED, record.seq, f"records {record.seq}-{other} were reordered")
    if i == 0:
        return Problem(ProblemKind.EDITED, record.seq, f"record {record.seq} was replaced: no genesis link")
    prev = records[i - 1].seq
    msg = f"record {prev} was edited and its hash recomputed: record {record.seq} does not follow it"
    return Problem(ProblemKind.EDITED, prev, msg)


def _signature_ok(checkpoint: AuditCheckpoint, verify: VerifySignature) -> bool:
    try:
        return verify(checkpoint_message(checkpoint.seq, checkpoint.hash), checkpoint.signature)
    except LedgerError:
        return False


def _bad_signature(checkpoint: AuditCheckpoint) -> Problem:
    msg = (f"checkpoint {checkpoint.seq} has an invalid signature: forged, or signed by another key "
           f"(it names key {checkpoint.key_fingerprint[:16]})")  # fmt: skip
    return Problem(ProblemKind.BAD_CHECKPOINT, checkpoint.seq, msg)


def _checkpoint_problem(
    records: Sequence[AuditRecord],
    i: int,
    checkpoint: AuditCheckpoint | None,
    verify: VerifySignature,
    where: Mapping[str, int],
    signed: int,
) -> Problem | None:
    if checkpoint is None:
        return None
    if not _signature_ok(checkpoint, verify):
        return _bad_signature(checkpoint)
    record = records[i]
    if checkpoint.hash == record.hash:
        return None
    moved = where.get(checkpoint.hash, -1)
    if moved > i:  # the signed record sits further on: something was slipped in before it
        now = records[moved].seq
        msg = f"record {record.seq} was inserted: checkpoint {checkpoint.seq} signed the one now at {now}"
        return Problem(ProblemKind.INSERTED, record.seq, msg)
    first = signed + 1
    span = f"record {first} was" if first == record.seq else f"records {first}-{record.seq} were"
    signed_hash, held = checkpoint.hash[:16], record.hash[:16]
    msg = f"{span} rewritten: checkpoint {checkpoint.seq} signed hash {signed_hash}, the ledger holds {held}"
    return Problem(ProblemKind.REWRITTEN, first, msg)


def _tail_problem(
    records: Sequence[AuditRecord],
    checkpoints: Sequence[AuditCheckpoint],
    verify: VerifySignature,
    max_unsigned: int | None,
) -> Problem | None:
    last = records[-1].seq if records else 0
    stray = sorted((c for c in checkpoints if c.seq > last or c.seq < 1), key=lambda c: c.seq)
    for checkpoint in stray:
        if not _signature_ok(checkpoint, verify):
            return _bad_signature(checkpoint)
        if checkpoint.seq < 1:
            return Problem(
                ProblemKind.BAD_CHECKPOINT, checkpoint.seq, f"checkpoint {checkpoint.seq} has no record"
            )
    if stray:
        newest = stray[-1].seq
        gone = f"record {newest} was" if newest == last + 1 else f"records {last + 1}-{newest} were"
        ends = f"the ledger ends at record {last}" if last else "the ledger is empty"
        msg = f"{gone} deleted from the end: checkpoint {newest} covers them, {ends}"
        return Problem(ProblemKind.TRUNCATED, last + 1, msg)
    newest_signed = max((c.seq for c in checkpoints), default=0)
    if max_unsigned is not None and last - newest_signed > max_unsigned:
        first = newest_signed + 1
        span = f"record {first} is" if first == last else f"records {first}-{last} are"
        msg = f"{span} not covered by a signed checkpoint (at most {max_unsigned} may be): forged?"
        return Problem(ProblemKind.UNSIGNED, first, msg)
    return None
