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
* ``resource`` (what the key protected) comes from ``requestParameters.encryptionContext``,
  which AWS services fill with the object they encrypt or decrypt on the caller's behalf
  (a Decrypt by ``secretsmanager.amazonaws.com`` for a person names the secret read). The
  first of these keys present wins; the sources are AWS's own pages (the archived
  ``awsdocs/*`` GitHub repositories, last content commits of May-June 2023) and published
  CloudTrail records:

  ==========================  ===============================================================
  ``SecretARN``               Secrets Manager, with ``SecretVersionId`` (``RequestToValidate
                              KeyAccess`` on key-access checks). ``awsdocs/aws-secrets-
                              manager-docs`` ``doc_source/security-encryption.md``, whose
                              GenerateDataKey/Decrypt records are in tests/fixtures/cloudtrail.
  ``PARAMETER_ARN``           Parameter Store SecureString. ``awsdocs/aws-kms-developer-
                              guide`` ``doc_source/services-parameter-store.md``.
  ``aws:s3:arn``              S3 SSE-KMS: the object ARN, or the bucket ARN with an S3 Bucket
                              Key. ``awsdocs/amazon-s3-userguide`` ``doc_source/UsingKMS
                              Encryption.md``; KMS guide ``deleting-keys-determining-usage.md``
                              (record in tests/fixtures). Also on CloudTrail's own log files,
                              beside ``aws:cloudtrail:arn``: the log object wins.
  ``aws:dynamodb:tableName``  DynamoDB, always with ``aws:dynamodb:subscriberId`` (the account
                              id): ``resource`` is ``<subscriberId>:table/<tableName>``, as in
                              the table ARN. ``awsdocs/amazon-dynamodb-developer-guide``
                              ``doc_source/encryption.usagenotes.md`` (record in fixtures).
  ``aws:lambda:FunctionArn``  Lambda environment variables (Decrypt at cold start). Not in
                              ``awsdocs/aws-lambda-developer-guide``; published Decrypt records
                              carry it (Panther's log-processor test record of 2018, a 2024
                              write-up: code-index file ids 5219308071, 54735724091), as do the
                              grants Lambda creates (``EncryptionContextEquals``).
  ``aws:rds:db-id``           RDS DB instance (resource id ``db-...``), alone or beside
                              ``aws:ebs:id``: the instance wins. KMS guide
                              ``doc_source/services-rds.md``.
  ``aws:ebs:id``              EBS volume ``vol-...`` or snapshot ``snap-...`` (CopySnapshot).
                              KMS guide ``doc_source/services-ebs.md``, ``ct-ec2two.md``.
  ``aws:logs:arn``            CloudWatch Logs log group ARN. ``awsdocs/amazon-cloudwatch-logs-
                              user-guide`` ``doc_source/encrypt-log-data-kms.md``.
  ``aws:cloudtrail:arn``      CloudTrail trail ARN (with ``aws:s3:arn``, see above). KMS
                              guide ``doc_source/services-cloudtrail.md``.
  ==========================  ===============================================================

  ``aws:secretsmanager:arn`` and ``aws:ssm:arn`` are not used: no AWS page or published
  record shows them (Secrets Manager uses ``SecretARN``, Parameter Store ``PARAMETER_ARN``,
  Session Manager ``aws:ssm:SessionId``/``aws:ssm:TargetId``); the first appears only in
  hand-written IAM conditions, the second nowhere. Otherwise a context of exactly one entry
  gives ``key=value`` (a caller's own context, ``aws:dsql:ClusterId=...``), and anything else
  ``None``. The value is the caller's to choose, so it never rejects the record: a non-string
  value counts as absent, and :func:`~detector.sources._common.safe_resource` escapes control
  characters and bounds the length to 512 (longer values keep their start plus a digest).
  ``ReEncrypt`` (``sourceEncryptionContext``) and grant constraints are not read.
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
    safe_resource,
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
# Encryption-context keys that name the protected object, in the order they are preferred.
RESOURCE_CONTEXT_KEYS = (
    "SecretARN",
    "PARAMETER_ARN",
    "aws:s3:arn",
    "aws:dynamodb:tableName",
    "aws:lambda:FunctionArn",
    "aws:rds:db-id",
    "aws:ebs:id",
    "aws:logs:arn",
    "aws:cloudtrail:arn",
)
_DYNAMODB_TABLE, _DYNAMODB_ACCOUNT = "aws:dynamodb:tableName", "aws:dynamodb:subscriberId"

register_table(SOURCE, AWS_KMS_OPERATIONS)


def parse(obj: dict[str, Any]) -> ParseResult:
    """Parse a CloudTrail record, a ``{"Records": [...]}`` file or an EventBridge envelope.

    A record that names its event source is a record, whatever stray ``Records`` field it
    carries; a delivery file without records is counted as skipped, never dropped unseen.
    """
    if "Records" in obj and "eventSource" not in obj:
        return _parse_file(obj)
    if "detail-type" in obj and "eventSource" not in obj:
        return _parse_envelope(obj)
    return _parse_one(obj)


def _parse_file(obj: dict[str, Any]) -> ParseResult:
    """All KMS events of a delivery file; other services' records are counted as skipped."""
    result = ParseResult([])
    items = opt_list(obj, "Records")
    for index, item in enumerate(items):
        record = as_record(item, f"Records[{index}]")
        try:
            result.merge(_parse_one(record))
        except ParseError as exc:
            raise ParseError(f"Records[{index}]: {exc}") from exc
    if not items:
        result.skip("a CloudTrail delivery file with no records")
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
        resource=_resource(params),
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


def _resource(params: dict[str, Any]) -> str | None:
    """What the call protected, from ``requestParameters.encryptionContext`` (see the module notes)."""
    context = params.get("encryptionContext")
    if type(context) is not dict or not context:
        return None
    for key in RESOURCE_CONTEXT_KEYS:
        value = context.get(key)
        if type(value) is str and value:
            if key == _DYNAMODB_TABLE:
                account = context.get(_DYNAMODB_ACCOUNT)
                value = f"{account}:table/{value}" if type(account) is str and account else f"table/{value}"
            return safe_resource(value)
    if len(context) == 1:
        ((key, value),) = context.items()
        if type(key) is str and type(value) is str and value:
            return safe_resource(f"{key}={value}")
    return None
