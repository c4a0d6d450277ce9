"""Keys as the response layer sees them, the outcomes of acting on them, and the backend port.

Every backend operation is idempotent: repeating it reports ``already_*`` instead of failing, so a
replayed playbook step is harmless. Expected results are :class:`Outcome` values; only the
unexpected raises :class:`KeyBackendError` (permanent) or :class:`BackendUnavailable` (transient).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from detector.domain.errors import KeyWatchError

KEY_USES = ("ENCRYPT", "DECRYPT", "SIGN", "VERIFY", "WRAP", "UNWRAP", "DERIVE")
# Uses that make new ciphertext or signatures; a rotated-out key keeps only the others.
PRODUCING_USES = frozenset({"ENCRYPT", "WRAP", "SIGN"})
CONSUMING_USES = frozenset({"DECRYPT", "UNWRAP", "VERIFY"})

_VERSIONED = re.compile(r"^(?P<base>.+)\.v(?P<version>[1-9][0-9]*)$")


class KeyState(StrEnum):
    """Lifecycle state of a key in its backend."""

    ENABLED = "enabled"
    DISABLED = "disabled"
    DECRYPT_ONLY = "decrypt_only"
    PENDING_DELETION = "pending_deletion"
    DESTROYED = "destroyed"


class Outcome(StrEnum):
    """What an operation did; ``already_*`` marks a repeat that changed nothing."""

    DISABLED = "disabled"
    ALREADY_DISABLED = "already_disabled"
    ENABLED = "enabled"
    ALREADY_ENABLED = "already_enabled"
    ROTATED = "rotated"
    REVOKED = "revoked"
    ALREADY_REVOKED = "already_revoked"
    REVOKE_CANCELLED = "revoke_cancelled"
    NOT_FOUND = "not_found"
    DRY_RUN = "dry_run"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """One key as a backend reports it; ``allowed_uses`` are the uses permitted right now."""

    key_id: str
    backend: str
    label: str
    key_type: str
    allowed_uses: tuple[str, ...]
    state: KeyState
    version: int = 1
    last_used: float | None = None


@dataclass(frozen=True, slots=True)
class ActionResult:
    """The outcome of one operation on one key, with backend-specific detail (JSON-safe values)."""

    outcome: Outcome
    key_id: str
    backend: str
    detail: dict[str, Any] = field(default_factory=dict)


class KeyBackendError(KeyWatchError):
    """A key operation failed and retrying will not help (bad configuration, refused, unsupported)."""


class BackendUnavailable(KeyBackendError):  # noqa: N818 - the name the response layer uses
    """The backend cannot be reached right now; retry with backoff, then escalate."""


class KeyBackend(Protocol):
    """A place where keys live (an HSM token, a cloud KMS) and the containment actions it offers."""

    name: str

    def inventory(self) -> list[KeyInfo]:
        """Every key the backend holds."""
        ...

    def describe(self, key_id: str) -> KeyInfo | None:
        """The key ``key_id`` resolves to, or None."""
        ...

    def disable(self, key_id: str, *, dry_run: bool = False) -> ActionResult:
        """Stop every use of the key, remembering what to restore."""
        ...

    def enable(self, key_id: str, *, dry_run: bool = False) -> ActionResult:
        """Undo :meth:`disable`, restoring exactly what it turned off."""
        ...

    def rotate(self, key_id: str, *, dry_run: bool = False) -> ActionResult:
        """Make a successor for new data; the old key keeps decrypting."""
        ...

    def revoke(
        self, key_id: str, *, approved: bool, backup: bool = True, dry_run: bool = False
    ) -> ActionResult:
        """Destroy (or schedule destruction of) the key; needs ``approved=True`` unless a dry run."""
        ...

    def rollback_revoke(self, key_id: str) -> ActionResult:
        """Bring a revoked key back where the backend can; raise KeyBackendError where it cannot."""
        ...


def ordered_uses(uses: Iterable[str]) -> tuple[str, ...]:
    """Uses in the canonical :data:`KEY_USES` order, without duplicates.

    >>> ordered_uses({"DECRYPT", "ENCRYPT", "DECRYPT"})
    ('ENCRYPT', 'DECRYPT')
    """
    wanted = set(uses)
    return tuple(use for use in KEY_USES if use in wanted)


def merge_uses(
    *maps: Mapping[str, Iterable[str]] | None, only: Iterable[str] | None = None
) -> dict[str, list[str]]:
    """Union of use maps keyed by part of a key (e.g. PKCS#11 object class), limited to ``only``.

    Parts left without uses are dropped.

    >>> merge_uses({"SECRET_KEY": ["DECRYPT"]}, None, {"SECRET_KEY": ["ENCRYPT"], "X": []})
    {'SECRET_KEY': ['ENCRYPT', 'DECRYPT']}
    >>> merge_uses({"PRIVATE_KEY": ["SIGN", "DERIVE"]}, only={"SIGN"})
    {'PRIVATE_KEY': ['SIGN']}
    """
    allowed = set(KEY_USES if only is None else only)
    merged: dict[str, set[str]] = {}
    for uses in maps:
        for part, names in (uses or {}).items():
            merged.setdefault(part, set()).update(n for n in names if n in allowed)
    return {part: list(ordered_uses(names)) for part, names in merged.items() if names}


def state_of(uses_on: Iterable[str], *, disabled: bool) -> KeyState:
    """The state a set of permitted uses amounts to; ``disabled`` when KeyWatch turned them off.

    >>> state_of({"DECRYPT", "UNWRAP"}, disabled=False)
    <KeyState.DECRYPT_ONLY: 'decrypt_only'>
    """
    on = set(uses_on)
    if disabled or not on:
        return KeyState.DISABLED
    if not on & PRODUCING_USES and on & CONSUMING_USES:
        return KeyState.DECRYPT_ONLY
    return KeyState.ENABLED


def split_version(label: str) -> tuple[str, int]:
    """Base label and version of a versioned label ``<base>.v<N>``; an unversioned label is version 1.

    >>> split_version("payments.v3")
    ('payments', 3)
    >>> split_version("payments")
    ('payments', 1)
    """
    match = _VERSIONED.match(label)
    if match is None:
        return label, 1
    return match["base"], int(match["version"])


def successor_label(label: str) -> str:
    """The label a rotation gives the successor of ``label``.

    >>> successor_label("payments"), successor_label("payments.v2")
    ('payments.v2', 'payments.v3')
    """
    base, version = split_version(label)
    return f"{base}.v{version + 1}"
