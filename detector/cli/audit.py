"""``keywatch audit verify | keygen | list``: check, key and read the tamper-evident audit ledger."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from detector.adapters.audit import (
    Ledger,
    generate_signing_key,
    key_fingerprint,
    load_public_key,
    load_signing_key,
    write_public_key,
)
from detector.cli.store import store_options
from detector.cli.wiring import open_store
from detector.config import Settings, load_settings
from detector.domain.events import format_ts
from detector.domain.ledger import AuditRecord, LedgerError, ProblemKind


def add_parsers(sub: Any) -> None:
    """Register ``audit verify``, ``audit keygen`` and ``audit list``."""
    actions = sub.add_parser("audit", help="the tamper-evident audit ledger").add_subparsers(
        dest="action", required=True
    )
    p = actions.add_parser(
        "verify", help="check the hash chain and the signed checkpoints (exit 1: tampered)"
    )
    p.add_argument("--db", metavar="URL", help="alert store URL (default: config `store.url`)")
    p.add_argument("--config", type=Path, help="YAML settings")
    keys = p.add_mutually_exclusive_group()
    keys.add_argument(
        "--public-key", type=Path, metavar="FILE", help="Ed25519 public key PEM (FILE.pub of keygen)"
    )
    keys.add_argument(
        "--signing-key", type=Path, metavar="FILE", help="the private key (default: audit.signing_key)"
    )
    expect = (
        "a head printed by an earlier verify (kept outside the database): the ledger must still hold "
        "that record; catches a wiped or rolled-back ledger (repeatable)"
    )
    p.add_argument("--expect", action="append", default=[], type=_head, metavar="SEQ:HASH", help=expect)
    p.set_defaults(handler=cmd_audit_verify)

    p = actions.add_parser("keygen", help="create the Ed25519 key that signs checkpoints (mode 0600)")
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="FILE",
        help="private key PEM; FILE.pub gets the public key",
    )
    p.set_defaults(handler=cmd_audit_keygen)

    p = actions.add_parser("list", help="audit records, newest first")
    store_options(p)
    p.set_defaults(handler=cmd_audit_list)


def _public_key(args: argparse.Namespace, settings: Settings) -> Ed25519PublicKey:
    if args.public_key:
        return load_public_key(args.public_key)
    path = args.signing_key or settings.audit.signing_key
    if path is None:
        raise LedgerError("no key to check checkpoints with: pass --public-key FILE or --signing-key FILE, "
                          "or set audit.signing_key")  # fmt: skip
    return load_signing_key(path).public_key()


def _head(text: str) -> tuple[int, str]:
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        raise argparse.ArgumentTypeError(
            f"expected SEQ:HASH (a record number and its 64-hex hash), got {text!r}"
        )
    return int(seq), digest.lower()


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Verify the ledger; exit 0 when intact, 1 naming the first record tampered with.

    The chain and the checkpoints prove the records are unedited, but a ledger wiped or cut back
    to a valid prefix verifies too: ``--expect`` compares with a head kept outside the database.
    """
    settings = load_settings(args.config)
    public_key = _public_key(args, settings)
    with open_store(args.db, args.config) as store:
        ledger = Ledger(store, None, settings.audit.checkpoint_every)
        report = ledger.verify(public_key)
        records = {r.seq: r.hash for r in ledger.records()} if args.expect or report.ok else {}
    print(report.summary())
    if report.problem is not None and report.problem.kind == ProblemKind.BAD_CHECKPOINT:
        print(f"verified with key {key_fingerprint(public_key)[:16]}")
    missing = [f"{seq}:{digest}" for seq, digest in args.expect if records.get(seq) != digest]
    for head in missing:
        seq = head.split(":")[0]
        print(f"expected record {head[:24]}... is {'changed' if int(seq) in records else 'missing'}: "
              "the ledger was wiped, rolled back or rewritten since that head was taken")  # fmt: skip
    if records and report.ok:
        newest = max(records)
        print(f"head: {newest}:{records[newest]}  (keep it outside the database; verify --expect it)")
    return 0 if report.ok and not missing else 1


def cmd_audit_keygen(args: argparse.Namespace) -> int:
    """Write a new signing key (0600) and its public key beside it."""
    public_path = args.out.with_name(args.out.name + ".pub")
    if public_path.exists():
        raise LedgerError(f"{public_path} already exists: refusing to overwrite it")
    key = generate_signing_key(args.out)
    write_public_key(key.public_key(), public_path)
    print(f"wrote the audit signing key {args.out} (mode 0600) and its public key {public_path}")
    print(f"key fingerprint {key_fingerprint(key.public_key())}")
    print(f"sign with it: audit.signing_key: {args.out}  (or KEYWATCH_AUDIT__SIGNING_KEY)")
    return 0


def cmd_audit_list(args: argparse.Namespace) -> int:
    """Print audit records, newest first, as lines or JSON."""
    with open_store(args.db, args.config) as store:
        records = Ledger(store, None).records(limit=args.limit, newest_first=True)
    if args.json:
        print(json.dumps([r.to_dict() for r in records], indent=2, ensure_ascii=False))
        return 0
    print(f"{len(records)} audit records, newest first, in {store.safe_url}")
    for record in records:
        print(_line(record))
    return 0


def _line(record: AuditRecord) -> str:
    details = json.dumps(record.details, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    details = details if len(details) <= 80 else details[:79] + "…"
    return (f"{record.seq:>6}  {format_ts(record.recorded_at)}  {record.actor:<16} {record.action:<16} "
            f"{record.target}  {details}  {record.hash[:12]}")  # fmt: skip
