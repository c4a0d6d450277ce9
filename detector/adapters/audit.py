"""The audit ledger in the alert store, and the Ed25519 key that signs its checkpoints.

Every action KeyWatch takes or approves is appended as one record of a hash chain
(:mod:`detector.domain.ledger` defines the hash and checkpoint formats); every ``checkpoint_every``
records a checkpoint signed with the ledger key makes rewrites and truncation detectable.

The signing key never enters the database: it is a PEM file (``audit.signing_key``) readable by its
owner only. A key held in an HSM or a KMS plugs in as ``signer``: any object with
``sign(data: bytes) -> bytes`` (an Ed25519 signature over the checkpoint message, e.g. python-pkcs11's
``key.sign(data, mechanism=Mechanism.EDDSA)``) and ``public_key() -> Ed25519PublicKey``.

Callers put ids in ``details`` (key id, run id, incident id), never PINs, tokens or passwords;
values under keys named like those are redacted anyway before they are hashed and stored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.engine import Connection, RowMapping

from detector.adapters.store import Store
from detector.adapters.store import tables as t
from detector.adapters.store.engine import advisory_lock
from detector.adapters.store.rows import to_dt, to_ts
from detector.config import AuditSettings
from detector.domain.ledger import (
    AuditCheckpoint,
    AuditRecord,
    LedgerError,
    VerifyReport,
    VerifySignature,
    next_record,
    sign_checkpoint,
    verify_chain,
)

log = logging.getLogger(__name__)

LEDGER_LOCK = "keywatch.audit.ledger"  # serializes appends on PostgreSQL (SQLite: BEGIN IMMEDIATE)
PRIVATE_MODE_MASK = 0o077


class CheckpointSigner(Protocol):
    """What signs checkpoints: an ``Ed25519PrivateKey``, or an HSM-held key behind the same two calls."""

    def sign(self, data: bytes) -> bytes:
        """An Ed25519 signature over ``data``."""
        ...

    def public_key(self) -> Ed25519PublicKey:
        """The public half, for fingerprints and verification."""
        ...


class Ledger:
    """Append-only audit records with signed checkpoints, in the store's ``audit_records`` tables.

    ``signer`` None makes a read-only ledger (``records``, ``verify``); ``append`` then refuses.
    The store must be migrated.
    """

    def __init__(
        self,
        store: Store,
        signer: CheckpointSigner | None,
        checkpoint_every: int = 1,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Keep the parameters; the signer's fingerprint is taken once, here."""
        if checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be at least 1, got {checkpoint_every}")
        self.store = store
        self.signer = signer
        self.checkpoint_every = checkpoint_every
        self.fingerprint = key_fingerprint(signer.public_key()) if signer else None
        self._clock = clock

    @classmethod
    def from_settings(cls, store: Store, settings: AuditSettings) -> Ledger:
        """The ledger of ``settings``: its signing key file (if set) and checkpoint interval."""
        signer = load_signing_key(settings.signing_key) if settings.signing_key else None
        return cls(store, signer, settings.checkpoint_every)

    def append(
        self, actor: str, action: str, target: str, details: Mapping[str, Any] | None = None
    ) -> AuditRecord:
        """Append one record (and a checkpoint when due) in its own transaction."""
        with self.store.writing() as conn:
            return self.append_in(conn, actor, action, target, details)

    def append_in(
        self,
        conn: Connection,
        actor: str,
        action: str,
        target: str,
        details: Mapping[str, Any] | None = None,
    ) -> AuditRecord:
        """Append inside the caller's ``Store.writing()`` transaction, to commit with the action."""
        if self.signer is None or self.fingerprint is None:
            raise LedgerError(
                "the audit ledger has no signing key: set audit.signing_key (keywatch audit keygen)"
            )
        advisory_lock(conn, LEDGER_LOCK)
        newest = _records_query().order_by(t.audit_records.c.seq.desc()).limit(1)
        row = conn.execute(newest).mappings().first()
        prev = _record_from_row(row) if row else None
        record = next_record(prev, recorded_at=self._clock(), actor=actor, action=action, target=target,
                             details=details)  # fmt: skip
        conn.execute(t.audit_records.insert().values(_record_row(record)))
        if record.seq % self.checkpoint_every == 0:
            checkpoint = sign_checkpoint(record, self.signer.sign, key_fingerprint=self.fingerprint,
                                         signed_at=self._clock())  # fmt: skip
            conn.execute(t.audit_checkpoints.insert().values(_checkpoint_row(checkpoint)))
        log.info("audit record %d: %s %s %s", record.seq, actor, action, target)
        return record

    def records(self, *, limit: int | None = None, newest_first: bool = False) -> list[AuditRecord]:
        """Stored records in seq order (``newest_first``: reversed), at most ``limit``."""
        c = t.audit_records.c
        query = _records_query().order_by(c.seq.desc() if newest_first else c.seq).limit(limit)
        with self.store.reading() as conn:
            return [_record_from_row(r) for r in conn.execute(query).mappings()]

    def checkpoints(self) -> list[AuditCheckpoint]:
        """Stored checkpoints in seq order."""
        with self.store.reading() as conn:
            return self._checkpoints(conn)

    def verify(self, public_key: Ed25519PublicKey) -> VerifyReport:
        """Check the chain and the checkpoints against ``public_key``; the report names the first problem.

        Records and checkpoints are read from one snapshot, so appends running meanwhile cannot
        look like truncation. At most ``checkpoint_every - 1`` records may follow the newest checkpoint.
        """
        with self.store.reading() as conn:
            if conn.dialect.name == "postgresql":  # the first statement of the transaction
                conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            rows = conn.execute(_records_query().order_by(t.audit_records.c.seq)).mappings()
            records = [_record_from_row(r) for r in rows]
            checkpoints = self._checkpoints(conn)
        return verify_chain(records, checkpoints, signature_verifier(public_key),
                            max_unsigned=self.checkpoint_every - 1)  # fmt: skip

    @staticmethod
    def _checkpoints(conn: Connection) -> list[AuditCheckpoint]:
        query = sa.select(t.audit_checkpoints).order_by(t.audit_checkpoints.c.seq)
        return [_checkpoint_from_row(r) for r in conn.execute(query).mappings()]


# -- rows ----------------------------------------------------------------------------------------


def _records_query() -> sa.Select[Any]:
    """Details as the stored text, so a corrupted value reads as an edit instead of crashing."""
    c = t.audit_records.c
    details = sa.cast(c.details, sa.Text).label("details")
    return sa.select(c.seq, c.recorded_at, c.actor, c.action, c.target, details, c.prev_hash, c.hash)


def _record_row(record: AuditRecord) -> dict[str, Any]:
    return {**record.to_dict(), "recorded_at": to_dt(record.recorded_at)}


def _record_from_row(row: RowMapping) -> AuditRecord:
    try:
        details = json.loads(row["details"])
    except (TypeError, ValueError):
        details = {"<unreadable>": str(row["details"])}
    return AuditRecord(int(row["seq"]), round(to_ts(row["recorded_at"]), 6), row["actor"], row["action"],
                       row["target"], details, row["prev_hash"], row["hash"])  # fmt: skip


def _checkpoint_row(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    return {"seq": checkpoint.seq, "hash": checkpoint.hash, "key_fingerprint": checkpoint.key_fingerprint,
            "signature": base64.b64encode(checkpoint.signature).decode("ascii"),
            "signed_at": to_dt(checkpoint.signed_at)}  # fmt: skip


def _checkpoint_from_row(row: RowMapping) -> AuditCheckpoint:
    try:
        signature = base64.b64decode(row["signature"], validate=True)
    except (binascii.Error, ValueError):
        signature = b""  # fails verification, naming this checkpoint
    return AuditCheckpoint(int(row["seq"]), row["hash"], signature, row["key_fingerprint"],
                           to_ts(row["signed_at"]))  # fmt: skip


# -- keys ----------------------------------------------------------------------------------------


def signature_verifier(public_key: Ed25519PublicKey) -> VerifySignature:
    """``(message, signature) -> bool`` for :func:`~detector.domain.ledger.verify_chain`."""

    def verify(message: bytes, signature: bytes) -> bool:
        try:
            public_key.verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True

    return verify


def key_fingerprint(public_key: Ed25519PublicKey) -> str:
    """sha256 of the raw 32-byte public key, in hex."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def load_signing_key(path: Path | str) -> Ed25519PrivateKey:
    """Read an unencrypted Ed25519 PEM private key; refuse a file that group or others may access."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            mode = os.fstat(fh.fileno()).st_mode
            if mode & PRIVATE_MODE_MASK:
                raise LedgerError(f"audit signing key {path} is accessible by group or others "
                                  f"(mode {mode & 0o777:04o}): run chmod 600 {path}")  # fmt: skip
            data = fh.read()
    except FileNotFoundError:
        raise LedgerError(f"audit signing key not found: {path}") from None
    except (PermissionError, IsADirectoryError) as exc:
        raise LedgerError(f"cannot read the audit signing key {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise LedgerError(f"audit signing key {path} is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise LedgerError(f"audit signing key {path} is not an Ed25519 key")
    return key


def load_public_key(path: Path | str) -> Ed25519PublicKey:
    """Read an Ed25519 PEM public key (``keywatch audit keygen`` writes one beside the private key)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LedgerError(f"audit public key not found: {path}") from None
    except (PermissionError, IsADirectoryError) as exc:
        raise LedgerError(f"cannot read the audit public key {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise LedgerError(f"{path} is not a PEM public key (a private key goes to --signing-key)") from None
    if not isinstance(key, Ed25519PublicKey):
        raise LedgerError(f"audit public key {path} is not an Ed25519 key")
    return key


def generate_signing_key(path: Path | str) -> Ed25519PrivateKey:
    """Create a new Ed25519 key as PEM in ``path`` with mode 0600; never overwrite a file."""
    path = Path(path)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())  # fmt: skip
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise LedgerError(f"{path} already exists: refusing to overwrite a signing key") from None
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fd, 0o600)  # whatever the umask
        fh.write(pem)
    return key


def write_public_key(public_key: Ed25519PublicKey, path: Path | str) -> None:
    """Write the public key as PEM for verifiers; never overwrite a file."""
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        with Path(path).open("xb") as fh:
            fh.write(pem)
    except FileExistsError:
        raise LedgerError(f"{path} already exists: refusing to overwrite it") from None
