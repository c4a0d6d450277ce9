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
