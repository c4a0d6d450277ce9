"""Vault audit parser on published file-audit-device entries (tests/fixtures/vault)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from detector.domain.errors import ParseError
from detector.domain.operations import OpClass, classify
from detector.sources import decode_and_parse, parse_record
from detector.sources._common import is_clean_text

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vault"


def load(name: str) -> dict[str, Any]:
    """A fixture as a decoded JSON object."""
    value: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return value


def test_denied_decrypt_exact_fields() -> None:
    result = parse_record(load("transit_decrypt_denied_response.json"))
    assert result.skipped == 0
    assert [e.to_dict() for e in result.events] == [
        {
            "event_id": "adc24b63-a11c-21ea-1c3c-b96b99d7465d",
            "ts": "2022-01-13T19:27:00.594Z",
            "key_id": "transit/test1",
            "operation": "decrypt",
            "principal": "approle",
            "source_ip": "10.9.187.252",
            "outcome": "denied",
            "source": "vault",
            "request_id": "adc24b63-a11c-21ea-1c3c-b96b99d7465d",
        }
    ]


def test_denied_request_yields_exactly_one_event() -> None:
    response = load("transit_decrypt_denied_response.json")
    request = copy.deepcopy(response)  # derived: the request entry Vault writes for the same call
    request["type"] = "request"
    del request["response"]
    results = [parse_record(request), parse_record(response)]
    assert sum(len(r.events) for r in results) == 1
    assert sum(r.skipped for r in results) == 1
    assert results[1].events[0].outcome == "denied"


def test_nested_mount_without_mount_point() -> None:
    event = parse_record(load("transit_decrypt_invalid_request_response.json")).events[0]
    assert (event.key_id, event.operation, event.outcome) == (
        "kbhealth-transit/prod/aes256",
        "decrypt",
        "error",
    )
    assert (event.principal, event.source_ip) == ("root", "10.100.0.85")


def test_old_vault_without_mount_type() -> None:
    event = parse_record(load("transit_encrypt_raw_response.json")).events[0]
    assert (event.key_id, event.operation, event.outcome, event.principal) == (
        "transit/test",
        "encrypt",
        "success",
        "root",
    )
    assert event.ts == pytest.approx(1576203133.917000)


def test_mount_point_and_key_admin_path() -> None:
    event = parse_record(load("openbao_transit_keys_read_denied_response.json")).events[0]
    assert (event.key_id, event.operation, event.outcome, event.principal) == (
        "transit/ipe-cpf",
        "keys/read",
        "denied",
        "token",
    )
    assert classify("vault", "keys/read") is OpClass.READ


def test_request_entries_are_skipped_and_counted() -> None:
    raw = (FIXTURES / "vault_format_json_test_request_entry.jsonl").read_bytes().strip()
    result = decode_and_parse(raw)
    assert (result.events, result.skipped) == ([], 1)
    assert result.skip_reason is not None
    assert "request entry" in result.skip_reason


@pytest.mark.parametrize(
    ("path", "mount_type", "operation", "expected"),
    [
        ("transit/encrypt/orders", "transit", "update", ("transit/orders", "encrypt")),
        ("transit/sign/orders/sha2-256", "transit", "update", ("transit/orders", "sign")),
        ("transit/hmac/orders", "transit", "update", ("transit/orders", "hmac")),
        ("transit/datakey/plaintext/orders", "transit", "update", ("transit/orders", "datakey/plaintext")),
        ("transit/rewrap/orders", "transit", "update", ("transit/orders", "rewrap")),
        ("transit/keys/orders", "transit", "create", ("transit/orders", "keys/create")),
        ("transit/keys/orders", "transit", "delete", ("transit/orders", "keys/delete")),
        ("transit/keys/orders/rotate", "transit", "update", ("transit/orders", "keys/rotate")),
        ("transit/keys/orders/config", "transit", "update", ("transit/orders", "keys/config")),
        ("transit/keys/orders/trim", "transit", "update", ("transit/orders", "keys/trim")),
        ("transit/keys", "transit", "list", ("*", "keys/list")),
        ("transit/export/encryption-key/orders/latest", "transit", "read", ("transit/orders", "export")),
        ("transit/backup/orders", "transit", "read", ("transit/orders", "backup")),
        ("transit/restore", "transit", "update", ("*", "restore")),
        ("team-a/crypto/decrypt/orders", "transit", "update", ("team-a/crypto/orders", "decrypt")),
    ],
)
def test_transit_paths(path: str, mount_type: str, operation: str, expected: tuple[str, str]) -> None:
    entry = load("transit_decrypt_denied_response.json")  # derived: same entry, other paths
    entry["request"].update(path=path, mount_type=mount_type, operation=operation)
    event = parse_record(entry).events[0]
    assert (event.key_id, event.operation) == expected


@pytest.mark.parametrize(
    ("path", "mount_type"),
    [
        ("sys/audit/file", "system"),
        ("auth/approle/login", "approle"),
        ("secret/data/app", "kv"),
        ("transit/random/32", "transit"),
        ("transit/hash/sha2-256", "transit"),
    ],
)
def test_other_paths_are_skipped(path: str, mount_type: str) -> None:
    entry = load("transit_decrypt_denied_response.json")
    entry["request"].update(path=path, mount_type=mount_type)
    result = parse_record(entry)
    assert (result.events, result.skipped) == ([], 1)


def test_namespace_prefixes_the_key_id() -> None:
    entry = load("openbao_transit_keys_read_denied_response.json")
    entry["request"]["namespace"] = {"id": "abc", "path": "team-a/"}
    assert parse_record(entry).events[0].key_id == "team-a/transit/ipe-cpf"


def test_hostile_display_name_is_rejected() -> None:
    raw = (FIXTURES.parent / "bad" / "vault_header_injection.json").read_bytes()
    with pytest.raises(ParseError, match=r"auth\.display_name"):
        decode_and_parse(raw)


def test_missing_path_names_the_field() -> None:
    entry = load("transit_decrypt_denied_response.json")
    del entry["request"]["path"]
    with pytest.raises(ParseError, match=r"request\.path"):
        parse_record(entry, "vault")


# --- resource: the transit ``context`` parameter when the audit device logs it in clear --------------------


def with_data(data: object, name: str = "transit_decrypt_denied_response.json") -> dict[str, Any]:
    """A published entry with its ``request.data`` replaced (derived in the test)."""
    entry = load(name)
    entry["request"]["data"] = data
    return entry


def test_published_entries_have_no_resource() -> None:
    for name in (
        "transit_decrypt_denied_response.json",  # data holds only the HMAC'd ciphertext
        "transit_encrypt_raw_response.json",  # log_raw, but no context parameter
        "openbao_transit_keys_read_denied_response.json",
    ):
        assert [e.resource for e in parse_record(load(name)).events] == [None]


@pytest.mark.parametrize(
    ("data", "resource"),
    [
        ({"ciphertext": "vault:v1:abc", "context": "dGVuYW50LTQy"}, "dGVuYW50LTQy"),  # log_raw: in clear
        ({"ciphertext": "hmac-sha256:1f", "context": "hmac-sha256:56691b97f2abe696536367ebf4b14a0e"}, None),
        ({"context": ""}, None),
        ({"context": 42}, None),
        ({"batch_input": [{"context": "YQ=="}, {"context": "Yg=="}]}, None),  # one context per item
        (None, None),
        (["context"], None),
        ("context", None),
    ],
)
def test_transit_context_to_resource(data: object, resource: str | None) -> None:
    assert [e.resource for e in parse_record(with_data(data)).events] == [resource]


def test_context_on_encrypt_entry_logged_raw() -> None:
    entry = load("transit_encrypt_raw_response.json")
    entry["request"]["data"]["context"] = "cHJvamVjdC03"
    assert parse_record(entry).events[0].resource == "cHJvamVjdC03"


@pytest.mark.parametrize(
    "value", ["c" * 4000, "\x1b]0;pwned\x07\r\nFAKE", "a\u202eb"], ids=["oversize", "osc", "bidi"]
)
def test_hostile_context_is_escaped_and_bounded_not_rejected(value: str) -> None:
    event = parse_record(with_data({"context": value})).events[0]
    assert event.resource is not None and len(event.resource) <= 512 and is_clean_text(event.resource)
    assert parse_record(event.to_dict(), "canonical").events[0].resource == event.resource
