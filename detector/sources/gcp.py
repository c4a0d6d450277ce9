"""Google Cloud KMS entries of Cloud Audit Logs (``protoPayload`` LogEntry shape).

Decisions
---------
* Only ``protoPayload.serviceName == "cloudkms.googleapis.com"`` produces events; other
  services are skipped and counted.
* ``operation`` is the short method name (``Decrypt`` for both ``Decrypt`` and
  ``google.cloud.kms.v1.KeyManagementService.Decrypt``).
* ``key_id`` is ``resourceName`` with ``/cryptoKeyVersions/N`` removed; resources that are
  not crypto keys (key rings, locations, import jobs) give ``*``.
* ``status.code`` 7 (PERMISSION_DENIED) and 16 (UNAUTHENTICATED) are denied, any other
  non-zero code is error, an absent or zero code is success.
* ``UpdateCryptoKeyVersion`` is classed destructive: it is how versions are disabled, and
  the operation name alone cannot tell a disable from an enable.
* ``event_id`` is ``insertId``; entries without one get a digest of the entry. Timestamps
  with a space separator (as some exporters write them) are accepted.
"""

from __future__ import annotations

from typing import Any

from detector.domain.errors import ParseError
from detector.domain.events import Event
from detector.domain.operations import OpClass, register_table
from detector.sources._common import (
    NO_KEY,
    ParseResult,
    as_record,
    derive_id,
    first_str,
    opt_dict,
    opt_str,
    req_str,
    to_ts,
)

SOURCE = "gcp-kms"
KMS_SERVICE = "cloudkms.googleapis.com"

GCP_KMS_OPERATIONS: dict[str, OpClass] = {
    **dict.fromkeys(
        (
            "Encrypt",
            "Decrypt",
            "RawEncrypt",
            "RawDecrypt",
            "AsymmetricSign",
            "AsymmetricDecrypt",
            "MacSign",
            "MacVerify",
            "GenerateRandomBytes",
            "Decapsulate",
        ),
        OpClass.DATA,
    ),
    **dict.fromkeys(
        (
            "GetCryptoKey",
            "GetCryptoKeyVersion",
            "GetKeyRing",
            "GetPublicKey",
            "GetImportJob",
            "GetIamPolicy",
            "ListCryptoKeys",
            "ListCryptoKeyVersions",
            "ListKeyRings",
            "ListImportJobs",
            "ListLocations",
            "GetLocation",
        ),
        OpClass.READ,
    ),
    **dict.fromkeys(
        (
            "CreateKeyRing",
            "CreateCryptoKey",
            "CreateCryptoKeyVersion",
            "ImportCryptoKeyVersion",
            "CreateImportJob",
            "UpdateCryptoKey",
            "UpdateCryptoKeyPrimaryVersion",
            "SetIamPolicy",
            "RestoreCryptoKeyVersion",
        ),
        OpClass.ADMIN,
    ),
    **dict.fromkeys(("DestroyCryptoKeyVersion", "UpdateCryptoKeyVersion"), OpClass.DESTRUCTIVE),
}
register_table(SOURCE, GCP_KMS_OPERATIONS)

_DENIED_CODES = frozenset({7, 16})


def parse(obj: dict[str, Any]) -> ParseResult:
    """Parse one audit LogEntry: a Cloud KMS call becomes an event, others are skipped."""
    payload = as_record(obj.get("protoPayload"), "field 'protoPayload'")
    service = req_str(payload, "serviceName", "protoPayload.serviceName")
    if service != KMS_SERVICE:
        return ParseResult([], 1, "audit log entry of another Google Cloud service")
    method = req_str(payload, "methodName", "protoPayload.methodName")
    auth = opt_dict(payload, "authenticationInfo", "protoPayload.authenticationInfo")
    meta = opt_dict(payload, "requestMetadata", "protoPayload.requestMetadata")
    event = Event(
        event_id=opt_str(obj, "insertId") or derive_id("gcp", obj),
        ts=to_ts(obj.get("timestamp"), "timestamp"),
        key_id=_key_id(req_str(payload, "resourceName", "protoPayload.resourceName")),
        operation=method.rsplit(".", 1)[-1] or method,
        principal=first_str(auth, ("principalEmail", "principalSubject"), "authenticationInfo.") or "unknown",
        source_ip=first_str(meta, ("callerIp", "callerIP"), "requestMetadata.") or "",
        outcome=_outcome(payload),
        source=SOURCE,
        user_agent=opt_str(meta, "callerSuppliedUserAgent", "requestMetadata.callerSuppliedUserAgent"),
        region=_region(obj),
    )
    return ParseResult([event])


def _key_id(resource: str) -> str:
    """Crypto key name without the version suffix; ``*`` for non-key resources."""
    if "/cryptoKeys/" not in resource:
        return NO_KEY
    return resource.split("/cryptoKeyVersions/", 1)[0]


def _outcome(payload: dict[str, Any]) -> str:
    """success / denied / error from ``protoPayload.status.code``."""
    status = opt_dict(payload, "status", "protoPayload.status")
    code = status.get("code", 0)
    if code is None:
        code = 0
    if type(code) is not int:
        raise ParseError(f"field 'protoPayload.status.code' must be an integer, got {type(code).__name__}")
    if code == 0:
        return "success"
    return "denied" if code in _DENIED_CODES else "error"


def _region(obj: dict[str, Any]) -> str | None:
    """``resource.labels.location`` when logged."""
    labels = opt_dict(opt_dict(obj, "resource"), "labels", "resource.labels")
    return opt_str(labels, "location", "resource.labels.location")
