"""Operation classes the detectors reason about, with one table per log source."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class OpClass(StrEnum):
    """What an operation does to or with a key."""

    DATA = "data"  # encrypt, decrypt, sign, wrap: uses the key on data
    ADMIN = "admin"  # changes policy, rotation, aliases, grants, versions
    DESTRUCTIVE = "destructive"  # disables, schedules deletion, destroys
    READ = "read"  # describes or lists metadata only


_TABLES: dict[str, Mapping[str, OpClass]] = {}
_CACHE: dict[tuple[str, str], OpClass] = {}

_DESTRUCTIVE_WORDS = ("delete", "destroy", "disable", "schedule", "purge", "revoke", "remove")
_DATA_WORDS = (
    "encrypt",
    "decrypt",
    "sign",
    "verify",
    "wrap",
    "unwrap",
    "datakey",
    "generatedatakey",
    "mac",
    "hmac",
    "derive",
    "random",
    "rewrap",
)
_READ_WORDS = ("get", "list", "describe", "read", "show")


def register_table(source: str, table: Mapping[str, OpClass]) -> None:
    """Register the operation table of one source (called by each parser module)."""
    if source in _TABLES and dict(_TABLES[source]) != dict(table):
        raise ValueError(f"operation table for source {source!r} registered twice")
    _TABLES[source] = table
    _CACHE.clear()


def classify_cached(source: str, operation: str) -> OpClass:
    """:func:`classify` with the cache consulted inline (hot loops)."""
    return _CACHE.get((source, operation)) or classify(source, operation)


def classify(source: str, operation: str) -> OpClass:
    """Class of ``operation`` as logged by ``source``; unknown names fall back to their verb.

    >>> classify("aws-kms", "ScheduleKeyDeletion")
    <OpClass.DESTRUCTIVE: 'destructive'>
    >>> classify("unknown-source", "DecryptBlob")
    <OpClass.DATA: 'data'>
    """
    cached = _CACHE.get((source, operation))
    if cached is not None:
        return cached
    table = _TABLES.get(source)
    found = table.get(operation) if table is not None else None
    if found is None:
        for other in _TABLES.values():
            found = other.get(operation)
            if found is not None:
                break
    result = found if found is not None else _by_verb(operation)
    _CACHE[(source, operation)] = result
    return result


def _by_verb(operation: str) -> OpClass:
    """Guess a class from the words of an unknown operation name, leaning to the safe side."""
    name = operation.lower().replace("_", "").replace("-", "").replace(".", "").replace("/", "")
    if any(w in name for w in _DESTRUCTIVE_WORDS):
        return OpClass.DESTRUCTIVE
    if any(w in name for w in _DATA_WORDS):
        return OpClass.DATA
    if name.startswith(_READ_WORDS):
        return OpClass.READ
    return OpClass.ADMIN


AWS_KMS_OPERATIONS: Mapping[str, OpClass] = {
    **dict.fromkeys(
        (
            "Decrypt",
            "Encrypt",
            "ReEncrypt",
            "GenerateDataKey",
            "GenerateDataKeyWithoutPlaintext",
            "GenerateDataKeyPair",
            "GenerateDataKeyPairWithoutPlaintext",
            "GenerateMac",
            "VerifyMac",
            "Sign",
            "Verify",
            "DeriveSharedSecret",
            "GenerateRandom",
            "Decapsulate",
        ),
        OpClass.DATA,
    ),
    **dict.fromkeys(
        (
            "DescribeKey",
            "GetKeyPolicy",
            "GetKeyRotationStatus",
            "GetPublicKey",
            "GetParametersForImport",
            "ListAliases",
            "ListGrants",
            "ListKeyPolicies",
            "ListKeyRotations",
            "ListKeys",
            "ListResourceTags",
            "ListRetirableGrants",
            "DescribeCustomKeyStores",
        ),
        OpClass.READ,
    ),
    **dict.fromkeys(
        (
            "CreateKey",
            "CreateAlias",
            "UpdateAlias",
            "CreateGrant",
            "PutKeyPolicy",
            "EnableKey",
            "EnableKeyRotation",
            "RotateKeyOnDemand",
            "UpdateKeyDescription",
            "TagResource",
            "UntagResource",
            "ImportKeyMaterial",
            "ReplicateKey",
            "UpdatePrimaryRegion",
            "CancelKeyDeletion",
            "CreateCustomKeyStore",
            "UpdateCustomKeyStore",
            "ConnectCustomKeyStore",
            "DisableKeyRotation",
            "DeleteAlias",
            "RetireGrant",
            "RevokeGrant",
            "RotateKey",
            "SynchronizeMultiRegionKey",
        ),
        OpClass.ADMIN,
    ),
    **dict.fromkeys(
        (
            "DisableKey",
            "ScheduleKeyDeletion",
            "DeleteImportedKeyMaterial",
            "DeleteCustomKeyStore",
            "DisconnectCustomKeyStore",
            "DeleteKey",
            "DeleteExpiredKeyMaterial",
        ),
        OpClass.DESTRUCTIVE,
    ),
}

register_table("aws-kms", AWS_KMS_OPERATIONS)
