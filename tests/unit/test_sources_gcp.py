"""GCP Cloud KMS audit log parser on published entries (tests/fixtures/gcp)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from detector.domain.errors import ParseError
from detector.domain.operations import OpClass, classify
from detector.sources import parse_record

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gcp"
KEY = "projects/test-project/locations/us/keyRings/test-keyring/cryptoKeys/test-key"


def load(name: str) -> dict[str, Any]:
    """A fixture as a decoded JSON object."""
    value: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return value


def test_disable_key_version_exact_fields() -> None:
    result = parse_record(load("panther_kms_disable_key_version.json"))
    assert result.skipped == 0
    assert [e.to_dict() for e in result.events] == [
        {
            "event_id": "abc123def456",
            "ts": "2025-12-15T15:40:47.284Z",
            "key_id": KEY,
            "operation": "UpdateCryptoKeyVersion",
            "principal": "denethor@lotr.com",
            "source_ip": "1.2.3.4",
            "outcome": "success",
            "source": "gcp-kms",
            "user_agent": "google-cloud-sdk gcloud/548.0.0 command/gcloud.kms.keys.versions.disable",
            "region": "us",
        }
    ]
    assert classify("gcp-kms", "UpdateCryptoKeyVersion") is OpClass.DESTRUCTIVE


def test_destroy_strips_the_version() -> None:
    event = parse_record(load("panther_kms_destroy_key_version.json")).events[0]
    assert (event.operation, event.key_id, event.principal) == (
        "DestroyCryptoKeyVersion",
        KEY,
        "user@example.com",
    )
    assert event.event_id.startswith("gcp:")  # no insertId in this entry: digest of the entry
    assert classify("gcp-kms", "DestroyCryptoKeyVersion") is OpClass.DESTRUCTIVE


def test_encrypt_success_and_failed_precondition() -> None:
    ok = parse_record(load("panther_kms_encrypt_gcs_service_account.json")).events[0]
    assert (ok.operation, ok.outcome, ok.source_ip, ok.region) == ("Encrypt", "success", "", "us")
    failed = parse_record(load("panther_kms_encrypt_failed_precondition.json")).events[0]
    assert failed.outcome == "error"  # code 9 FAILED_PRECONDITION
    assert ok.event_id != failed.event_id


def test_set_iam_policy_and_cross_project_key() -> None:
    policy = parse_record(load("panther_kms_set_iam_policy.json")).events[0]
    assert (policy.operation, policy.key_id, policy.source_ip) == ("SetIamPolicy", KEY, "1.2.3.4")
    assert classify("gcp-kms", "SetIamPolicy") is OpClass.ADMIN
    cross = parse_record(load("panther_kms_cross_project_encrypt.json")).events[0]
    assert cross.event_id == "test-insert-id-001"
    assert cross.key_id == (
        "projects/attacker-project/locations/us/keyRings/malicious-keyring/cryptoKeys/ransomware-key"
    )


@pytest.mark.parametrize(("code", "outcome"), [(0, "success"), (7, "denied"), (16, "denied"), (5, "error")])
def test_status_codes(code: int, outcome: str) -> None:
    entry = load("panther_kms_disable_key_version.json")  # derived: published entry, other status
    entry["protoPayload"]["status"] = {"code": code, "message": "x"}
    assert parse_record(entry).events[0].outcome == outcome


def test_full_method_names_are_shortened() -> None:
    entry = load("panther_kms_set_iam_policy.json")
    entry["protoPayload"]["methodName"] = "google.cloud.kms.v1.KeyManagementService.Decrypt"
    entry["timestamp"] = "2025-12-02T19:39:33.896113820Z"
    event = parse_record(entry).events[0]
    assert (event.operation, event.ts) == ("Decrypt", pytest.approx(1764704373.896113))


def test_other_services_are_skipped_and_counted() -> None:
    entry = load("panther_kms_set_iam_policy.json")
    entry["protoPayload"]["serviceName"] = "storage.googleapis.com"
    result = parse_record(entry)
    assert (result.events, result.skipped) == ([], 1)


def test_key_ring_resources_have_no_single_key() -> None:
    entry = load("panther_kms_set_iam_policy.json")
    entry["protoPayload"]["methodName"] = "CreateKeyRing"
    entry["protoPayload"]["resourceName"] = "projects/test-project/locations/us/keyRings/test-keyring"
    assert parse_record(entry).events[0].key_id == "*"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("methodName", None, "methodName"),
        ("resourceName", 12, "resourceName"),
        ("status", {"code": "7"}, "status.code"),
        ("authenticationInfo", "alice", "authenticationInfo"),
    ],
)
def test_malformed_entries_name_the_field(field: str, value: object, message: str) -> None:
    entry = load("panther_kms_set_iam_policy.json")
    entry["protoPayload"][field] = value
    with pytest.raises(ParseError, match=message):
        parse_record(entry)


def test_protopayload_must_be_an_object() -> None:
    with pytest.raises(ParseError, match="protoPayload"):
        parse_record({"protoPayload": ["cloudkms.googleapis.com"]})
