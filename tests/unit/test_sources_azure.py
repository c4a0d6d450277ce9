"""Azure Key Vault AuditEvent parser on published records (tests/fixtures/azure)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from detector.domain.errors import ParseError
from detector.domain.operations import OpClass, classify
from detector.sources import parse_record

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "azure"
KEY = "https://securaallkeyvault.vault.azure.net/keys/SecuraAllRSAKeys"


def load(name: str) -> dict[str, Any]:
    """A fixture as a decoded JSON object."""
    value: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return value


def test_key_get_exact_fields() -> None:
    result = parse_record(load("keyget_record.json"))
    assert result.skipped == 0
    event = result.events[0].to_dict()
    assert event["event_id"].startswith("azure:")
    del event["event_id"]
    assert event == {
        "ts": "2022-06-30T11:57:06.619Z",
        "key_id": KEY,
        "operation": "KeyGet",
        "principal": "attacker@securathesis.onmicrosoft.com",
        "source_ip": "<Redacted>",
        "outcome": "success",
        "source": "azure-keyvault",
        "user_agent": "azsdk-python-keyvault-keys/4.5.0b6 Python/3.8.9 (Windows-10-10.0.19041-SP0)",
        "request_id": "9f6ac6cb-695c-43da-a2ee-62040cfba289",
    }
    assert classify("azure-keyvault", "KeyGet") is OpClass.READ


def test_event_id_is_stable_across_replays() -> None:
    first = parse_record(load("keyget_record.json")).events[0].event_id
    assert parse_record(load("keyget_record.json")).events[0].event_id == first
    assert parse_record(load("keylist_record.json")).events[0].event_id != first


def test_key_list_has_no_single_key() -> None:
    event = parse_record(load("keylist_record.json")).events[0]
    assert (event.operation, event.key_id) == ("KeyList", "*")


def test_non_key_operations_are_skipped_and_counted() -> None:
    secret = parse_record(load("secretget_record.json"))
    assert (secret.events, secret.skipped) == ([], 1)
    blob = parse_record(load("docs_vaultget_records.json"))  # {"records": [...]} storage blob
    assert (blob.events, blob.skipped) == ([], 1)
    assert blob.skip_reason == "Key Vault record of a non-key operation"


def test_records_blob_with_key_and_secret_operations() -> None:
    blob = {
        "records": [load("keyget_record.json"), load("secretget_record.json"), load("keylist_record.json")]
    }
    result = parse_record(blob)
    assert [e.operation for e in result.events] == ["KeyGet", "KeyList"]
    assert result.skipped == 1


@pytest.mark.parametrize(
    ("status", "signature", "outcome"),
    [
        (200, "OK", "success"),
        (403, "Forbidden", "denied"),
        (401, "Unauthorized", "denied"),
        (404, "NotFound", "error"),
    ],
)
def test_outcome_from_http_status(status: int, signature: str, outcome: str) -> None:
    record = load("keyget_record.json")  # derived: the published record with another status
    record["properties"]["httpStatusCode"] = status
    record["resultSignature"] = signature
    assert parse_record(record).events[0].outcome == outcome


def test_outcome_from_signature_when_status_is_absent() -> None:
    record = load("keyget_record.json")
    del record["properties"]["httpStatusCode"]
    record["resultSignature"] = "Forbidden"
    assert parse_record(record).events[0].outcome == "denied"


def test_versioned_and_operation_uris_fold_to_the_key() -> None:
    record = load("keyget_record.json")
    record["operationName"] = "KeyDecrypt"
    record["properties"]["id"] = (
        "https://SecuraAllKeyVault.vault.azure.net/keys/SecuraAllRSAKeys/0c24b95c67534a3e"
    )
    assert parse_record(record).events[0].key_id == KEY
    del record["properties"]["id"]
    record["properties"]["requestUri"] = (
        "https://securaallkeyvault.vault.azure.net/keys/SecuraAllRSAKeys/0c24b95c/decrypt?api-version=7.4"
    )
    assert parse_record(record).events[0].key_id == KEY
    assert classify("azure-keyvault", "KeyDecrypt") is OpClass.DATA
    assert classify("azure-keyvault", "KeyPurge") is OpClass.DESTRUCTIVE


def test_principal_falls_back_to_app_id() -> None:
    record = load("keyget_record.json")
    record["identity"] = {"claim": {"oid": "f8c18f51", "appid": "bb2a64ee"}}
    assert parse_record(record).events[0].principal == "bb2a64ee"


def test_identity_as_json_string() -> None:
    record = load("keyget_record.json")
    record["identity"] = json.dumps({"claim": {"upn": "admin@contoso.com"}})
    assert parse_record(record).events[0].principal == "admin@contoso.com"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("time", "2022-13-40", "time"),
        ("operationName", ["KeyGet"], "operationName"),
        ("callerIpAddress", "1.2.3.4\x1b[2J", "callerIpAddress"),
        ("identity", "{not json", "identity"),
        ("properties", "text", "properties"),
    ],
)
def test_malformed_records_name_the_field(field: str, value: object, message: str) -> None:
    record = load("keyget_record.json")
    record[field] = value
    with pytest.raises(ParseError, match=message):
        parse_record(record, "azure")
