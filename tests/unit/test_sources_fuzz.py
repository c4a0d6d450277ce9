"""Hostile input: whatever JSON value arrives, only ParseResult or ParseError come out."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detector.domain.errors import ParseError
from detector.domain.events import Event
from detector.sources import FORMATS, ParseResult, decode_and_parse, parse_record
from detector.sources._common import MAX_RESOURCE, MAX_STR, is_clean_text

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(
        [
            "",
            "response",
            "request",
            "kms.amazonaws.com",
            "cloudkms.googleapis.com",
            "AuditEvent",
            "2024-05-01T12:00:00Z",
            "transit/decrypt/k",
            "transit/keys/k",
            "KeyDecrypt",
            "\x00",
            "x" * 3000,
        ]
    )
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)


def seed(name: str) -> dict[str, Any]:
    """A published fixture to mutate."""
    value: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return value


SEEDS = [
    seed("cloudtrail/kms_decrypt.json"),
    seed("cloudtrail/ec2_example_two_records.json"),
    seed("cloudtrail/secretsmanager_decrypt.json"),
    seed("cloudtrail/dynamodb_decrypt.json"),
    seed("vault/openbao_transit_keys_read_denied_response.json"),
    seed("azure/keyget_record.json"),
    seed("gcp/panther_kms_disable_key_version.json"),
    orjson.loads((FIXTURES / "canonical" / "events.jsonl").read_bytes().splitlines()[0]),
    orjson.loads((FIXTURES / "canonical" / "events.jsonl").read_bytes().splitlines()[3]),  # has a resource
]


def paths(obj: object, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key/index path inside ``obj``."""
    found = [prefix]
    if isinstance(obj, dict):
        for key, value in obj.items():
            found += paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            found += paths(value, (*prefix, index))
    return found


def check(obj: object, fmt: str = "auto") -> None:
    """parse_record returns a well-formed ParseResult or raises ParseError, nothing else."""
    try:
        result = parse_record(obj, fmt)
    except ParseError:
        return
    assert isinstance(result, ParseResult)
    assert result.skipped >= 0
    for event in result.events:
        assert isinstance(event, Event)
        for value in (event.event_id, event.key_id, event.operation, event.principal, event.source):
            assert isinstance(value, str)
            assert value
        assert event.outcome in ("success", "denied", "error")
        if event.resource is not None:
            assert isinstance(event.resource, str)
            assert len(event.resource) <= MAX_STR  # MAX_RESOURCE when a source parser extracted it
            assert is_clean_text(event.resource)


@SETTINGS
@given(json_values, st.sampled_from(FORMATS))
def test_random_json_values(value: object, fmt: str) -> None:
    check(value, fmt)


@SETTINGS
@given(st.data())
def test_published_records_with_one_field_replaced(data: st.DataObject) -> None:
    record = json.loads(json.dumps(data.draw(st.sampled_from(SEEDS))))
    path = data.draw(st.sampled_from(paths(record)[1:]))
    target = record
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = data.draw(json_values)
    check(record)


@SETTINGS
@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_random_bytes(raw: bytes) -> None:
    with contextlib.suppress(ParseError):
        decode_and_parse(raw, max_bytes=150)


@SETTINGS
@given(json_values, st.booleans())
def test_any_encryption_context_never_rejects_the_record(context: object, as_vault_context: bool) -> None:
    """What the caller put in the context decides ``resource`` only, never whether the event is kept."""
    if as_vault_context:
        record = seed("vault/transit_decrypt_denied_response.json")
        record["request"]["data"] = {"context": context}
    else:
        record = seed("cloudtrail/secretsmanager_decrypt.json")
        record["requestParameters"]["encryptionContext"] = context
    result = parse_record(record)
    assert len(result.events) == 1
    resource = result.events[0].resource
    assert resource is None or len(resource) <= MAX_RESOURCE
    check(record)
