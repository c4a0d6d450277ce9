"""CloudTrail parser on published AWS KMS log samples (tests/fixtures/cloudtrail)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from detector.domain.errors import ParseError
from detector.domain.events import parse_ts
from detector.domain.operations import OpClass, classify
from detector.sources import parse_record
from detector.sources._common import is_clean_text

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cloudtrail"
KEY = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
EBS_KEY = "arn:aws:kms:us-east-1:123456789012:key/e29ddfd4-1bf6-4e1b-8ecb-08216bd70d07"
ALICE = "arn:aws:iam::111122223333:user/Alice"


def load(name: str) -> dict[str, Any]:
    """A fixture as a decoded JSON object."""
    value: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return value


def one(name: str, fmt: str = "auto") -> dict[str, Any]:
    """The canonical dict of the single event a fixture yields."""
    result = parse_record(load(name), fmt)
    assert result.skipped == 0
    assert len(result.events) == 1
    return result.events[0].to_dict()


def test_decrypt_exact_fields() -> None:
    assert one("kms_decrypt.json") == {
        "event_id": "abcde202-ba1a-467c-b4ba-f729d45ae521",
        "ts": "2020-07-27T22:58:24.000Z",
        "key_id": KEY,
        "operation": "Decrypt",
        "principal": ALICE,
        "source_ip": "192.0.2.0",
        "outcome": "success",
        "source": "aws-kms",
        "user_agent": "AWS Internal",
        "region": "us-west-2",
        "request_id": "12345126-30d5-4b28-98b9-9153da559963",
    }


def test_failed_calls_are_errors_not_denials() -> None:
    assert one("kms_decrypt_failure_incorrect_key.json")["outcome"] == "error"
    xks = one("kms_decrypt_xks_failure_invalid_state.json")
    assert xks["outcome"] == "error"  # KMSInvalidStateException: the key's state, not the caller's rights
    assert xks["key_id"] == "arn:aws:kms:us-west-2:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321"
    assert xks["source_ip"] == "AWS Internal"
    assert one("panther_kms_disable_key_error.json")["outcome"] == "error"


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        ("AccessDenied", "denied"),
        ("AccessDeniedException", "denied"),
        ("UnauthorizedOperation", "denied"),
        ("Client.UnauthorizedOperation", "denied"),
        ("NotAuthorizedException", "denied"),
        ("ExpiredTokenException", "denied"),
        ("KMSInvalidStateException", "error"),
        ("ThrottlingException", "error"),
        ("NotFoundException", "error"),
    ],
)
def test_error_code_families(code: str, outcome: str) -> None:
    record = load("kms_decrypt.json")  # derived in the test: the published record plus an errorCode
    record["errorCode"] = code
    assert parse_record(record).events[0].outcome == outcome


def test_schedule_key_deletion_is_destructive() -> None:
    event = one("kms_schedule_key_deletion.json")
    assert event["operation"] == "ScheduleKeyDeletion"
    assert event["key_id"] == KEY
    assert event["ts"] == "2021-03-23T18:58:30.000Z"
    assert classify("aws-kms", event["operation"]) is OpClass.DESTRUCTIVE


def test_missing_resources_prefers_the_returned_key_arn() -> None:
    event = one("panther_kms_schedule_deletion_missing_resources.json")
    assert event["key_id"] == "arn:aws:kms:us-west-2:123456789012:key/1"
    assert event["principal"] == "arn:aws:sts::123456789012:assumed-role/tester"


def test_resource_without_type_still_names_the_key() -> None:
    event = one("kms_generate_data_key.json")
    assert event["key_id"] == KEY  # older records omit resources[].type
    assert event["operation"] == "GenerateDataKey"
    assert "key_alias" not in event


def test_create_key_delivery_file() -> None:
    result = parse_record(load("kms_create_key_records.json"))
    assert (len(result.events), result.skipped) == (1, 0)
    event = result.events[0]
    assert (event.operation, event.key_id, event.principal) == ("CreateKey", KEY, ALICE)
    assert classify("aws-kms", "CreateKey") is OpClass.ADMIN


def test_delivery_file_skips_and_counts_other_services() -> None:
    result = parse_record(load("ec2_example_two_records.json"))
    assert result.skipped == 1  # the RunInstances record
    assert result.skip_reason == "CloudTrail record of another service"
    assert [e.operation for e in result.events] == [
        "CreateGrant",
        "GenerateDataKeyWithoutPlaintext",
        "Decrypt",
    ]
    assert {e.key_id for e in result.events} == {EBS_KEY}
    grant, datakey, decrypt = result.events
    assert grant.principal == "arn:aws:iam::123456789012:user/Alice"
    assert datakey.key_alias == "alias/aws/ebs"
    assert decrypt.principal == "arn:aws:sts::123456789012:assumed-role/aws:ec2-infrastructure/i-81e2f56c"
    assert decrypt.source_ip == "172.172.172.172"
    assert decrypt.user_agent is None
    assert decrypt.ts == parse_ts("2014-11-05T21:35:47Z")


def test_alias_operation_keeps_key_arn_and_alias() -> None:
    event = one("kms_create_alias.json")
    assert event["key_id"] == KEY  # the alias ARN in resources[] is passed over
    assert event["key_alias"] == "alias/ExampleAlias"


def test_aws_service_identity_is_named_by_invoked_by() -> None:
    event = one("dsql_generate_data_key_aws_service.json")
    assert event["principal"] == "dsql.amazonaws.com"
    assert event["source_ip"] == "dsql.amazonaws.com"
    assert event["key_id"] == "arn:aws:kms:us-east-1:982127530226:key/8b60dd9f-2ff8-4b1f-8a9c-bf570cbfdb5e"


def test_kms_service_event_without_request_id() -> None:
    event = one("kms_delete_key_service_event.json")
    assert (event["operation"], event["principal"], event["key_id"]) == ("DeleteKey", "AWS Internal", KEY)
    assert "request_id" not in event
    assert classify("aws-kms", "DeleteKey") is OpClass.DESTRUCTIVE


def test_keyless_operation_uses_star() -> None:
    result = parse_record(load("kms_generate_random_records.json"))
    assert [(e.operation, e.key_id) for e in result.events] == [("GenerateRandom", "*")]


def test_disable_key_file_format_forced() -> None:
    result = parse_record(load("kms_disable_key_records.json"), "cloudtrail")
    assert [(e.operation, e.key_id, e.outcome) for e in result.events] == [("DisableKey", KEY, "success")]


def test_eventbridge_cloudtrail_envelope() -> None:
    envelope = load("eventbridge_kms_cmk_rotation.json")  # published envelope fields
    envelope["detail-type"] = "AWS API Call via CloudTrail"  # derived: carries a published record
    envelope["detail"] = load("kms_decrypt.json")
    result = parse_record(envelope)
    assert [(e.event_id, e.operation, e.key_id) for e in result.events] == [
        ("abcde202-ba1a-467c-b4ba-f729d45ae521", "Decrypt", KEY)
    ]


def test_eventbridge_kms_service_event_is_skipped() -> None:
    result = parse_record(load("eventbridge_kms_cmk_rotation.json"))
    assert (result.events, result.skipped) == ([], 1)
    assert result.skip_reason is not None
    assert "KMS CMK Rotation" in result.skip_reason


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("eventName",), None, "eventName"),
        (("eventName",), 42, "eventName"),
        (("eventTime",), "not a time", "eventTime"),
        (("userIdentity", "arn"), "x" * 5000, "userIdentity.arn"),
        (("sourceIPAddress",), "192.0.2.0\n", "sourceIPAddress"),
        (("resources",), {"ARN": KEY}, "resources"),
        (("requestParameters",), [1, 2], "requestParameters"),
    ],
)
def test_malformed_records_name_the_field(path: tuple[str, ...], value: object, message: str) -> None:
    record = copy.deepcopy(load("kms_decrypt.json"))
    target = record
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    with pytest.raises(ParseError, match=message):
        parse_record(record)


def test_bad_record_in_delivery_file_names_its_index() -> None:
    delivery = load("ec2_example_two_records.json")
    delivery["Records"][2]["eventTime"] = 7
    with pytest.raises(ParseError, match=r"Records\[2\]"):
        parse_record(delivery)


# --- resource: what the key protected, from requestParameters.encryptionContext ---------------------------

SECRET = "arn:aws:secretsmanager:us-east-2:111122223333:secret:test-secret-a1b2c3"
LAMBDA = "arn:aws:lambda:us-east-1:888888888888:function:panther-log-processor"
STRATUS_SECRET = (
    "arn:aws:secretsmanager:us-east-2:111122223333:secret:stratus-red-team-retrieve--batch-secret-"
)
STRATUS_PARAMETER = "arn:aws:ssm:us-east-2:111122223333:parameter/credentials/stratus-red-team/credentials-"


def with_context(context: object, name: str = "kms_decrypt.json") -> dict[str, Any]:
    """A published record with its encryption context replaced (derived in the test)."""
    record = load(name)
    record["requestParameters"]["encryptionContext"] = context
    return record


def resource_of(record: dict[str, Any]) -> str | None:
    """``resource`` of the single event a record yields."""
    events = parse_record(record).events
    assert len(events) == 1
    return events[0].resource


def test_published_service_records_name_the_protected_object() -> None:
    secret = one("secretsmanager_decrypt.json")
    assert secret["resource"] == SECRET
    assert (
        secret["principal"] == "arn:aws:sts::111122223333:assumed-role/Admin/user01"
    )  # the person, not the service
    assert one("secretsmanager_generate_data_key.json")["resource"] == SECRET
    table = one("dynamodb_decrypt.json")
    assert (table["resource"], table["key_id"]) == (
        "111122223333:table/Books",
        "*",
    )  # published record names no key
    assert one("s3_decrypt.json")["resource"] == "arn:aws:s3:::example_bucket/example_object"
    volumes = parse_record(load("ec2_example_two_records.json")).events
    assert [e.resource for e in volumes] == [
        None,
        "vol-f67bafb2",
        "vol-f67bafb2",
    ]  # CreateGrant has no context
    assert one("dsql_generate_data_key_aws_service.json")["resource"] == "aws:dsql:ClusterId=w4abucpbwuxx"


def test_records_without_a_single_naming_context_have_no_resource() -> None:
    assert "resource" not in one(
        "kms_decrypt.json"
    )  # {"Department": ..., "Project": ...}: two caller entries
    assert "resource" not in one("kms_schedule_key_deletion.json")  # no encryption context at all
    assert [e.resource for e in parse_record(load("kms_create_key_records.json")).events] == [None]


@pytest.mark.parametrize(
    ("context", "resource"),
    [
        ({"SecretARN": SECRET, "SecretVersionId": "EXAMPLE1-90ab-cdef-fedc-ba987SECRET1"}, SECRET),
        ({"SecretARN": SECRET, "SecretVersionId": "RequestToValidateKeyAccess"}, SECRET),
        (
            {"PARAMETER_ARN": "arn:aws:ssm:us-west-2:111122223333:parameter/ReadableParameters/MyParameter"},
            "arn:aws:ssm:us-west-2:111122223333:parameter/ReadableParameters/MyParameter",
        ),
        ({"aws:s3:arn": "arn:aws:s3:::DOC-EXAMPLE-BUCKET1"}, "arn:aws:s3:::DOC-EXAMPLE-BUCKET1"),
        (
            {"aws:dynamodb:tableName": "Services", "aws:dynamodb:subscriberId": "111122223333"},
            "111122223333:table/Services",
        ),
        ({"aws:dynamodb:tableName": "Services"}, "table/Services"),
        ({"aws:lambda:FunctionArn": LAMBDA}, LAMBDA),
        ({"aws:rds:db-id": "db-CQYSMDPBRZ7BPMH7Y3RTDG5QY"}, "db-CQYSMDPBRZ7BPMH7Y3RTDG5QY"),
        (
            {"aws:rds:db-id": "db-BRG7VYS3SVIFQW7234EJQOM5RQ", "aws:ebs:id": "vol-ad8c6542"},
            "db-BRG7VYS3SVIFQW7234EJQOM5RQ",
        ),
        ({"aws:ebs:id": "snap-069a655b568de654f"}, "snap-069a655b568de654f"),
        (
            {"aws:logs:arn": "arn:aws:logs:us-east-1:111122223333:log-group:app"},
            "arn:aws:logs:us-east-1:111122223333:log-group:app",
        ),
        (  # CloudTrail log files: the S3 object beats the trail
            {
                "aws:cloudtrail:arn": "arn:aws:cloudtrail:us-west-2:111122223333:trail/Default",
                "aws:s3:arn": "arn:aws:s3:::example-bucket-for-CT-logs/AWSLogs/111122223333/",
            },
            "arn:aws:s3:::example-bucket-for-CT-logs/AWSLogs/111122223333/",
        ),
        (
            {"aws:cloudtrail:arn": "arn:aws:cloudtrail:us-west-2:111122223333:trail/Default", "other": "x"},
            "arn:aws:cloudtrail:us-west-2:111122223333:trail/Default",
        ),
        ({"Department": "Engineering"}, "Department=Engineering"),  # one entry of the caller's own
        ({"aws:ssm:SessionId": "s-1", "aws:ssm:TargetId": "i-1"}, None),  # two entries, none naming an object
        ({"aws:secretsmanager:arn": SECRET, "other": "x"}, None),  # not a key AWS uses
        ({}, None),
        ({"SecretARN": 5, "aws:ebs:id": "vol-1"}, "vol-1"),  # a non-string value counts as absent
        ({"SecretARN": ""}, None),
        ({"SecretARN": ["x"]}, None),
        ({"aws:dynamodb:tableName": "T", "aws:dynamodb:subscriberId": 7}, "table/T"),
        (None, None),
        ("SecretARN=x", None),  # not an object: ignored, as before resources were read
        ([{"SecretARN": SECRET}], None),
    ],
)
def test_encryption_context_to_resource(context: object, resource: str | None) -> None:
    assert resource_of(with_context(context)) == resource


def test_service_decrypts_for_a_person_count_distinct_objects() -> None:
    """A batch read as Stratus Red Team's techniques detonate it, built from the published Decrypt."""
    records = []
    for index in range(76):
        secret = f"{STRATUS_SECRET}{index}"
        records.append(
            with_context({"SecretARN": secret, "SecretVersionId": f"v{index}"}, "secretsmanager_decrypt.json")
        )
    for index in range(164):
        parameter = f"{STRATUS_PARAMETER}{index % 42}"
        records.append(with_context({"PARAMETER_ARN": parameter}, "secretsmanager_decrypt.json"))
    events = parse_record({"Records": records}).events
    assert {e.principal for e in events} == {"arn:aws:sts::111122223333:assumed-role/Admin/user01"}
    assert len({e.resource for e in events}) == 76 + 42


@pytest.mark.parametrize(
    "value",
    [
        "x" * 5000,
        "\x1b[2J\x1b[31mFAKE LOG LINE\r\n",
        "admin\u202egnp.exe",
        "a\x00b",
        "é\u009b" * 400,
        "\u2066" * 3000,
    ],
    ids=["oversize", "ansi-crlf", "bidi", "nul", "c1-long", "isolates-long"],
)
def test_hostile_context_values_are_escaped_and_bounded_not_rejected(value: str) -> None:
    for context in ({"SecretARN": value}, {value: value}):
        resource = resource_of(with_context(context))
        assert resource is not None
        assert len(resource) <= 512
        assert is_clean_text(resource)  # what check_str accepts: no control or bidi character survives
        assert resource == resource_of(with_context(context))  # deterministic
        event = parse_record(with_context(context)).events[0]
        assert (
            parse_record(event.to_dict(), "canonical").events[0].resource == resource
        )  # canonical round trip


def test_truncated_values_stay_distinct() -> None:
    prefix = "arn:aws:s3:::bucket/" + "k" * 600
    first, second = (resource_of(with_context({"aws:s3:arn": prefix + tail})) for tail in ("/a", "/b"))
    assert first is not None and second is not None
    assert len(first) == len(second) == 512
    assert first[:400] == second[:400] and first != second
    exact = "arn:aws:s3:::bucket/" + "k" * 492
    assert resource_of(with_context({"aws:s3:arn": exact})) == exact  # 512 exactly: kept whole


def test_large_context_costs_only_the_known_keys() -> None:
    context = {f"k{index}": "v" for index in range(5000)}
    assert resource_of(with_context(context)) is None
    context["aws:ebs:id"] = "vol-9"
    assert resource_of(with_context(context)) == "vol-9"
