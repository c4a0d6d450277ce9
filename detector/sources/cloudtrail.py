"""AWS CloudTrail records of AWS KMS calls (single records, delivery files, EventBridge).

Decisions
---------
* Only ``eventSource == "kms.amazonaws.com"`` produces events; records of other services
  (and EventBridge events that are not CloudTrail records) are skipped and counted.
* ``key_id`` is the key ARN from ``resources[]``, else the first key ARN among
  ``requestParameters.keyId``/``targetKeyId``, the ARN or id KMS returned (CreateKey,
  ScheduleKeyDeletion, CreateAlias) and the service event's key id, else the first of
  those as logged (an id or alias). Calls that name no key (ListKeys,
  ListAliases, GenerateRandom, custom key stores) keep ``key_id = "*"`` instead of being
  dropped: enumeration and random-number calls are signals in their own right.
* ``denied`` means the caller lacked permission or credentials (access-denied and
  not-authorized families, invalid or expired credentials). ``KMSInvalidStateException``
  and every other code is ``error``: a disabled or pending-deletion key says nothing about
  the caller's rights, and rules can still match on the operation.
* Service identities (``userIdentity.type == "AWSService"``) are named by ``invokedBy``.
"""

from __future__ import annotations

from typing import Any

from detector.domain.errors import ParseError
from detector.domain.events import Event
from detector.domain.operations import AWS_KMS_OPERATIONS, register_table
from detector.sources._common import (
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

SOURCE = "aws-kms"
KMS_EVENT_SOURCE = "kms.amazonaws.com"
CLOUDTRAIL_DETAIL_TYPES = frozenset({"AWS API Call via CloudTrail", "AWS Service Event via CloudTrail"})
DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnauthorizedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "IncompleteSignature",
        "SignatureDoesNotMatch",
    }
)
_DENIED_WORDS = ("accessdenied", "notauthorized", "unauthorized")

register_table(SOURCE, AWS_KMS_OPERATIONS)


def parse(obj: dict[str, Any]) -> ParseResult:
    """Parse a CloudTrail record, a ``{"Records": [...]}`` file or an EventBridge envelope."""
    if "Records" in obj:
        return _parse_file(obj)
    if "detail-type" in obj and "eventSource" not in obj:
        return _parse_envelope(obj)
    return _parse_one(obj)


def _parse_file(obj: dict[str, Any]) -> ParseResult:
    """All KMS events of a delivery file; other services' records are counted as skipped."""
    result = ParseResult([])
    for index, item in enumerate(opt_list(obj, "Records")):
        record = as_record(item, f"Records[{index}]")
        try:
            result.merge(_parse_one(record))
        except ParseError as exc:
            raise ParseError(f"Records[{index}]: {exc}") from exc
    return result


def _parse_envelope(obj: dict[str, Any]) -> ParseResult:
    """EventBridge event: the CloudTrail record is its ``detail``."""
    detail_type = check_str(obj.get("detail-type"), "detail-type")
    if detail_type not in CLOUDTRAIL_DETAIL_TYPES:
        return ParseResult([], 1, f"EventBridge event {detail_type[:64]!r} is not a CloudTrail record")
    detail = as_record(obj.get("detail"), "field 'detail'")
    try:
        return _parse_one(detail)
    except ParseError as exc:
        raise ParseError(f"detail: {exc}") from exc


def _parse_one(rec: dict[str, Any]) -> ParseResult:
    """One CloudTrail record: an event if it is a KMS call, else a skip."""
    event_source = req_str(rec, "eventSource")
    if event_source != KMS_EVENT_SOURCE:
        return ParseResult([], 1, "CloudTrail record of another service")
    params = opt_dict(rec, "requestParameters")
    event = Event(
        event_id=opt_str(rec, "eventID") or derive_id("aws", rec),
        ts=to_ts(rec.get("eventTime"), "eventTime"),
        key_id=_key_id(rec, params),
        operation=req_str(rec, "eventName"),
        principal=_principal(rec, event_source),
        source_ip=opt_str(rec, "sourceIPAddress") or "",
        outcome=_outcome(opt_str(rec, "errorCode")),
        source=SOURCE,
        user_agent=opt_str(rec, "userAgent"),
        region=opt_str(rec, "awsRegion"),
        key_alias=_alias(params),
        request_id=opt_str(rec, "requestID"),
    )
    return ParseResult([event])


def _principal(rec: dict[str, Any], event_source: str) -> str:
    """Who called: the identity ARN, or the AWS service that acted."""
    ident = opt_dict(rec, "userIdentity")
    if opt_str(ident, "type", "userIdentity.type") == "AWSService":
        return opt_str(ident, "invokedBy", "userIdentity.invokedBy") or event_source
    keys = ("arn", "invokedBy", "principalId")
    return first_str(ident, keys, "userIdentity.") or event_source


def _outcome(error_code: str | None) -> str:
    """success / denied / error from ``errorCode``."""
    if error_code is None:
        return "success"
    lowered = error_code.lower()
    if error_code in DENIED_CODES or any(word in lowered for word in _DENIED_WORDS):
        return "denied"
    return "error"


def _key_id(rec: dict[str, Any], params: dict[str, Any]) -> str:
    """The KMS key the call used: a key ARN when the record has one anywhere, else the id logged."""
    arn = _resource_key_arn(rec)
    if arn:
        return arn
    response = opt_dict(rec, "responseElements")
    metadata = opt_dict(response, "keyMetadata", "responseElements.keyMetadata")
    details = opt_dict(rec, "serviceEventDetails")
    candidates = [
        *(opt_str(params, key, f"requestParameters.{key}") for key in ("keyId", "targetKeyId")),
        opt_str(metadata, "arn", "responseElements.keyMetadata.arn"),
        opt_str(metadata, "keyId", "responseElements.keyMetadata.keyId"),
        opt_str(response, "keyId", "responseElements.keyId"),
        opt_str(details, "keyId", "serviceEventDetails.keyId"),
    ]
    found = [c for c in candidates if c]
    for candidate in found:
        if ":key/" in candidate:
            return candidate
    return found[0] if found else NO_KEY


def _resource_key_arn(rec: dict[str, Any]) -> str | None:
    """First key ARN (``...:key/...``) listed in ``resources[]``; alias ARNs are passed over."""
    for index, item in enumerate(opt_list(rec, "resources")):
        resource = as_record(item, f"resources[{index}]")
        kind = opt_str(resource, "type", f"resources[{index}].type")
        arn = opt_str(resource, "ARN", f"resources[{index}].ARN")
        if arn and ":key/" in arn and kind in (None, "AWS::KMS::Key"):
            return arn
    return None


def _alias(params: dict[str, Any]) -> str | None:
    """The alias named in the request, if the caller used one."""
    key_id = opt_str(params, "keyId", "requestParameters.keyId")
    if key_id and (key_id.startswith("alias/") or ":alias/" in key_id):
        return key_id
    return opt_str(params, "aliasName", "requestParameters.aliasName")
