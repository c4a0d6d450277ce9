"""Azure Key Vault ``AuditEvent`` resource-log records (storage account / Event Hub shape).

Decisions
---------
* Key operations (``Key<Verb>`` in the table below) produce events; secret, certificate,
  vault, authentication and Event Grid notification records are skipped and counted.
  ``{"records": [...]}`` blobs are unpacked. The Log Analytics flat-column shape
  (``AzureDiagnostics``/``AZKVAuditLogs``) is not parsed: no published sample was found to
  pin its column names down.
* ``key_id`` is the key URI without its version, host lower-cased and ``deletedkeys``
  folded into ``keys`` so every record of one key agrees; ``*`` when none is logged
  (KeyList). It comes from ``properties.id``, else from ``properties.requestUri``.
* Outcome from ``httpStatusCode`` (2xx success, 401/403 denied, else error), else from
  ``resultSignature``; ``resultType`` is not used (Key Vault logs ``Success`` for requests
  it refused).
* ``principal``: the UPN claim, else ``unique_name``, ``appid``, ``oid``.
* AuditEvent records carry no unique id: ``event_id`` is a digest of the record and
  ``request_id`` the caller's ``correlationId`` when set.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import orjson

from detector.domain.errors import ParseError
from detector.domain.events import Event
from detector.domain.operations import OpClass, register_table
from detector.sources._common import (
    MAX_STR,
    NO_KEY,
    ParseResult,
    as_record,
    check_str,
    derive_id,
    first_str,
    opt_dict,
    opt_list,
    opt_str,
    req_str,
    to_ts,
)

SOURCE = "azure-keyvault"

AZURE_KEY_OPERATIONS: dict[str, OpClass] = {
    **dict.fromkeys(
        ("KeyEncrypt", "KeyDecrypt", "KeySign", "KeyVerify", "KeyWrap", "KeyUnwrap", "KeyRelease"),
        OpClass.DATA,
    ),
    **dict.fromkeys(
        ("KeyGet", "KeyList", "KeyListVersions", "KeyGetDeleted", "KeyListDeleted", "KeyGetRotationPolicy"),
        OpClass.READ,
    ),
    **dict.fromkeys(
        (
            "KeyCreate",
            "KeyImport",
            "KeyUpdate",
            "KeyRotate",
            "KeySetRotationPolicy",
            "KeyRestore",
            "KeyRecover",
        ),
        OpClass.ADMIN,
    ),
    # A backup blob can be restored into another vault of the same geography.
    "KeyBackup": OpClass.ADMIN,
    **dict.fromkeys(("KeyDelete", "KeyPurge"), OpClass.DESTRUCTIVE),
}
register_table(SOURCE, AZURE_KEY_OPERATIONS)

_UPN_CLAIMS = ("upn", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn", "unique_name")
_OTHER_CLAIMS = ("appid", "oid", "http://schemas.microsoft.com/identity/claims/objectidentifier")
_DENIED_STATUS = frozenset({401, 403})
_DENIED_SIGNATURES = frozenset({"Unauthorized", "Forbidden"})
_OK_SIGNATURES = frozenset({"OK", "Created", "Accepted", "NoContent"})


def parse(obj: dict[str, Any]) -> ParseResult:
    """Parse one AuditEvent record or a ``{"records": [...]}`` blob of them."""
    if "records" in obj and "operationName" not in obj:
        result = ParseResult([])
        items = opt_list(obj, "records")
        for index, item in enumerate(items):
            try:
                result.merge(_parse_one(as_record(item, f"records[{index}]")))
            except ParseError as exc:
                raise ParseError(f"records[{index}]: {exc}") from exc
        if not items:
            result.skip("an Azure resource-log blob with no records")
        return result
    return _parse_one(obj)


def _parse_one(rec: dict[str, Any]) -> ParseResult:
    """One record: an event for key operations, a skip for the rest."""
    operation = req_str(rec, "operationName")
    if operation not in AZURE_KEY_OPERATIONS:
        return ParseResult([], 1, "Key Vault record of a non-key operation")
    props = opt_dict(rec, "properties")
    correlation = opt_str(rec, "correlationId")
    event = Event(
        event_id=derive_id("azure", rec),
        ts=to_ts(rec.get("time"), "time"),
        key_id=_key_id(props),
        operation=operation,
        principal=_principal(rec),
        source_ip=opt_str(rec, "callerIpAddress") or "",
        outcome=_outcome(rec, props),
        source=SOURCE,
        user_agent=opt_str(props, "clientInfo", "properties.clientInfo"),
        request_id=correlation,
    )
    return ParseResult([event])


def _key_id(props: dict[str, Any]) -> str:
    """Versionless key URI from ``properties.id``, else from ``properties.requestUri``."""
    for field in ("id", "requestUri"):
        uri = opt_str(props, field, f"properties.{field}")
        key = _key_uri(uri) if uri else None
        if key:
            return key
    return NO_KEY


def _key_uri(uri: str) -> str | None:
    """``https://<vault>/keys/<name>`` for a key, key-version or key-operation URI."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) < 2 or segments[0].lower() not in ("keys", "deletedkeys") or not parts.hostname:
        return None
    return f"https://{parts.hostname.lower()}/keys/{segments[1]}"


def _principal(rec: dict[str, Any]) -> str:
    """UPN, else app id, else object id, from ``identity.claim``."""
    identity = rec.get("identity")
    if isinstance(identity, str):
        identity = _decode_identity(identity)
    claim = opt_dict(as_record(identity or {}, "field 'identity'"), "claim", "identity.claim")
    return first_str(claim, _UPN_CLAIMS + _OTHER_CLAIMS, "identity.claim.") or "unknown"


def _decode_identity(text: str) -> object:
    """``identity`` logged as a JSON string (Managed HSM shape)."""
    if len(text) > 8 * MAX_STR:
        raise ParseError(f"field 'identity' is {len(text)} characters long")
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ParseError("field 'identity' is a string but not JSON") from exc


def _outcome(rec: dict[str, Any], props: dict[str, Any]) -> str:
    """success / denied / error from the HTTP status, else the result signature."""
    status = props.get("httpStatusCode", rec.get("httpStatusCode"))
    if type(status) is int:
        if 200 <= status < 300:
            return "success"
        return "denied" if status in _DENIED_STATUS else "error"
    if status is not None:
        raise ParseError(f"field 'properties.httpStatusCode' must be an integer, got {type(status).__name__}")
    signature = opt_str(rec, "resultSignature")
    if signature is None:
        raise ParseError("missing field 'properties.httpStatusCode' (and no 'resultSignature')")
    if signature in _OK_SIGNATURES:
        return "success"
    return "denied" if check_str(signature, "resultSignature") in _DENIED_SIGNATURES else "error"
