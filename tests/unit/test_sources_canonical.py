"""Canonical schema v1 validation (tests/fixtures/canonical, tests/fixtures/bad)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.domain.errors import ParseError
from detector.domain.events import OPTIONAL_FIELDS, REQUIRED_FIELDS
from detector.sources import canonical, decode_and_parse, parse_record
from detector.sources._common import check_str, is_clean_text

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def valid() -> dict[str, Any]:
    """A minimal valid canonical record."""
    return {
        "event_id": "e-1",
        "ts": "2024-05-01T12:00:00Z",
        "key_id": "k1",
        "operation": "Decrypt",
        "principal": "alice",
        "source_ip": "198.51.100.7",
        "outcome": "success",
        "source": "aws-kms",
    }


def lines(name: str) -> list[bytes]:
    """Non-blank lines of a fixture."""
    return [line for line in (FIXTURES / name).read_bytes().splitlines() if line.strip()]


def test_fixture_lines_round_trip() -> None:
    events = [decode_and_parse(line).events[0] for line in lines("canonical/events.jsonl")]
    assert [e.source for e in events] == ["aws-kms", "vault", "pkcs11"]
    assert events[0].to_dict() == orjson.loads(lines("canonical/events.jsonl")[0])
    assert events[1].country == ""  # explicitly unknown
    hsm = events[2]
    assert (hsm.country, hsm.lat, hsm.lon, hsm.key_alias, hsm.source_ip, hsm.resource) == (
        "DE",
        52.52,
        13.405,
        "signing-key",
        "",
        "release-manifest-2024-05-01.json",
    )
    assert events[0].resource is None
    assert hsm.ts == pytest.approx(1714564800.123456)  # nanoseconds truncated to microseconds


def test_to_dict_parses_back_to_the_same_event() -> None:
    for line in lines("canonical/events.jsonl"):
        first = decode_and_parse(line).events[0].to_dict()  # to_dict keeps milliseconds
        assert parse_record(first, "canonical").events[0].to_dict() == first


@pytest.mark.parametrize(
    "field", ["event_id", "ts", "key_id", "operation", "principal", "source_ip", "outcome", "source"]
)
def test_missing_required_field_is_named(field: str) -> None:
    record = valid()
    del record[field]
    with pytest.raises(ParseError, match=f"missing field '{field}'"):
        parse_record(record, "canonical")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("key_id", ["k1"], "'key_id' must be a string"),
        ("principal", "a" * 2049, "'principal' is 2049 characters long"),
        ("principal", "alice\x00", "'principal' contains control characters"),
        ("operation", "Decrypt\u009b", "'operation' contains control characters"),
        ("principal", "admin\u202egnp.exe", "'principal' contains control characters"),  # bidi override
        ("event_id", "", "'event_id' is empty"),
        ("outcome", "maybe", "'outcome' must be one of"),
        ("ts", "yesterday", "'ts' is not an RFC 3339 timestamp"),
        ("ts", "1969-12-31T23:59:59Z", "'ts' is outside"),
        ("country", "de", "'country' must be two upper-case letters"),
        ("country", "DEU", "'country' must be two upper-case letters"),
        ("user_agent", 5, "'user_agent' must be a string"),
        ("region", "r" * 3000, "'region' is 3000 characters long"),
        ("resource", 5, "'resource' must be a string"),
        ("resource", ["arn:aws:s3:::b/k"], "'resource' must be a string"),
        ("resource", "r" * 2049, "'resource' is 2049 characters long"),
        ("resource", "arn:aws:s3:::b/k\n", "'resource' contains control characters"),
        ("resource", "secret\u202etxt.exe", "'resource' contains control characters"),
    ],
)
def test_invalid_values_are_named(field: str, value: object, message: str) -> None:
    record = valid()
    record[field] = value
    with pytest.raises(ParseError, match=message):
        parse_record(record, "canonical")


@pytest.mark.parametrize(
    ("lat", "lon", "message"),
    [
        (95.0, 10.0, "'lat' must be within"),
        (10.0, -181, "'lon' must be within"),
        (True, 1.0, "'lat' must be a number"),
        ("52.5", 1.0, "'lat' must be a number"),
        (10**400, 1.0, "'lat'"),
        (10.0, None, "'lon' is missing"),
    ],
)
def test_coordinates(lat: object, lon: object, message: str) -> None:
    record = valid()
    record.update(lat=lat, lon=lon)
    with pytest.raises(ParseError, match=message):
        parse_record(record, "canonical")


def test_unicode_that_is_not_a_control_character_is_kept() -> None:
    record = valid()
    record["principal"] = "zoë\u00a0o'brien"  # NBSP is unprintable but not a control character
    assert parse_record(record).events[0].principal == "zoë\u00a0o'brien"


def test_bad_fixture_lines() -> None:
    outcomes = []
    for line in lines("bad/mixed.jsonl"):
        try:
            outcomes.append(len(decode_and_parse(line).events))
        except ParseError as exc:
            outcomes.append(type(exc).__name__)
    assert outcomes == [1, *["ParseError"] * 6, *["UnknownFormatError"] * 3, "ParseError", 1]
    with pytest.raises(ParseError, match="'principal' is 3000 characters long"):
        decode_and_parse(lines("bad/oversized_field.jsonl")[0])


RESOURCE = {"resource": "arn:aws:secretsmanager:us-east-2:111122223333:secret:test-secret-a1b2c3"}


class Text(str):
    """A str subclass: check_str rejects it, so the fast path must too."""


# The fast path of to_event must accept, build and reject exactly what the field-by-field path does.
field_values = (
    st.none()
    | st.integers(min_value=-200, max_value=200)
    | st.floats(allow_nan=True)
    | st.booleans()
    | st.text(max_size=12)
    | st.sampled_from(["", "success", "DE", "US", "de", "2024-05-01T12:00:00Z", " 2024-05-01T12:00:00Z\n"])
    | st.sampled_from(["x\x7f", "x\x00", "x\u0085", "x\u202e", "x\u2066", "zoë\u00a0"])
    | st.sampled_from(["a" * 2049, "a" * 1200])
    | st.builds(Text, st.sampled_from(["success", "k1", "alice"]))
    | st.lists(st.integers(), max_size=2)
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from([*REQUIRED_FIELDS, *OPTIONAL_FIELDS]), field_values, max_size=6))
def test_fast_path_agrees_with_checked_path(changes: dict[str, Any]) -> None:
    record = {
        **valid(),
        "user_agent": "sdk/1.0",
        "country": "US",
        "lat": 1.5,
        "lon": 2,
        **RESOURCE,
        **changes,
    }
    for name, value in changes.items():
        if value is None and name in REQUIRED_FIELDS:
            del record[name]  # missing and null are both "missing"
    outcomes = []
    for build in (canonical.to_event, canonical._to_event_checked):
        try:
            outcomes.append(build(record))
        except ParseError as exc:
            outcomes.append(str(exc))
        except (TypeError, ValueError) as exc:  # parse_record reports these as malformed records
            outcomes.append(type(exc).__name__)
    assert outcomes[0] == outcomes[1]


@given(st.text(max_size=40) | st.sampled_from(["\x7f", "é\x9f", "\u2069", "plain ascii", "tab\t"]))
def test_is_clean_text_matches_check_str(text: str) -> None:
    try:
        check_str(text, "f")
    except ParseError:
        clean = False
    else:
        clean = True
    assert is_clean_text(text) == clean


# The raw fast path (read_events) must give what decode_and_parse gives, or leave the record to it.
@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from([*REQUIRED_FIELDS, *OPTIONAL_FIELDS]), field_values, max_size=6))
def test_raw_fast_path_agrees_with_decode_and_parse(changes: dict[str, Any]) -> None:
    record = {
        **valid(),
        "user_agent": "sdk/1.0",
        "country": "US",
        "lat": 1.5,
        "lon": 2.0,
        **RESOURCE,
        **changes,
    }
    try:
        raw = orjson.dumps(record)  # escapes control characters, writes DEL and non-ASCII as they are
    except orjson.JSONEncodeError:
        return  # not JSON (an integer beyond 64 bits): no such record reaches a parser
    try:
        fast = canonical.event_from_json(raw)
    except ParseError:
        fast = None  # read_events hands the record to decode_and_parse, which says why
    try:
        full: object = decode_and_parse(raw).events
    except ParseError as exc:
        full = str(exc)
    assert fast is None or full == [fast]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"event_id":"e\\u0000","ts":"2024-05-01T12:00:00Z","key_id":"k","operation":"Decrypt",'
        b'"principal":"a","source_ip":"","outcome":"success","source":"aws-kms"}',
        b'{"event_id":"e\x7f","ts":"2024-05-01T12:00:00Z","key_id":"k","operation":"Decrypt",'
        b'"principal":"a","source_ip":"","outcome":"success","source":"aws-kms"}',
        '{"event_id":"e\u202e","ts":"2024-05-01T12:00:00Z","key_id":"k","operation":"Decrypt",'
        '"principal":"a","source_ip":"","outcome":"success","source":"aws-kms"}'.encode(),
    ],
    ids=["escaped-nul", "raw-del", "bidi-override"],
)
def test_raw_fast_path_leaves_suspect_characters_to_the_checked_path(raw: bytes) -> None:
    assert canonical.event_from_json(raw) is None
    with pytest.raises(ParseError, match="control characters"):
        decode_and_parse(raw)


@pytest.mark.parametrize("char", [0x00, 0x01, 0x09, 0x0A, 0x1F])
def test_json_decoders_reject_raw_control_characters_in_strings(char: int) -> None:
    """The raw fast path relies on it: an ASCII record without backslash or DEL is then clean."""
    raw = b'{"a":"x' + bytes([char]) + b'y"}'
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw)
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode(raw)


# Clean records (ASCII, no escape) that the schema accepts take the one-pass msgspec decoder, and
# give exactly the event the field-by-field path gives; whatever it refuses is left to that path.
clean_values = (
    st.none()
    | st.integers(min_value=-200, max_value=200)
    | st.floats(min_value=-200, max_value=200)
    | st.booleans()
    | st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="\\\""),
              max_size=12)
    | st.sampled_from(["", "success", "denied", "error", "DE", "de", "2024-05-01T12:00:00Z",
                       "2024-05-01T12:00:00", "2024-05-01T12:00:00.123456789Z", "2101-01-01T00:00:00Z"])
    | st.lists(st.integers(min_value=-9, max_value=9), max_size=2)
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.sampled_from([*REQUIRED_FIELDS, *OPTIONAL_FIELDS]), clean_values, max_size=6))
def test_clean_fast_path_agrees_with_decode_and_parse(changes: dict[str, Any]) -> None:
    record = {
        **valid(),
        "user_agent": "sdk/1.0",
        "country": "US",
        "lat": 1.5,
        "lon": 2.0,
        **RESOURCE,
        **changes,
    }
    raw = orjson.dumps(record)
    assert raw.isascii() and b"\\" not in raw
    try:
        fast = canonical.event_from_json(raw)
    except ParseError:
        fast = None
    try:
        full: object = decode_and_parse(raw).events
    except ParseError as exc:
        full = str(exc)
    assert fast is None or full == [fast]
    assert fast is not None or not isinstance(full, list)  # every valid clean record takes it


def test_clean_fast_path_decodes_every_field() -> None:
    record = {**valid(), "country": "DE", "lat": -33.5, "lon": 151, "user_agent": "sdk/2", "region": "eu-1",
              "key_alias": "alias/a", "request_id": "r-9", "resource": "arn:aws:s3:::b/k",
              "extra": {"ignored": [1, 2]}}  # fmt: skip
    fast = canonical.event_from_json(orjson.dumps(record))
    assert fast is not None and fast == decode_and_parse(orjson.dumps(record)).events[0]
    f = fast
    optional = (f.country, f.lat, f.lon, f.user_agent, f.region, f.key_alias, f.request_id, f.resource)
    assert optional == ("DE", -33.5, 151.0, "sdk/2", "eu-1", "alias/a", "r-9", "arn:aws:s3:::b/k")
    assert {
        name for name in OPTIONAL_FIELDS if getattr(f, name) is None
    } == set()  # every optional field read


def test_parsed_values_that_repeat_share_one_string() -> None:
    first, second = (decode_and_parse(orjson.dumps({**valid(), "event_id": e})).events[0] for e in "ab")
    assert first.key_id is second.key_id and first.principal is second.principal
    assert first.event_id == "a" and second.event_id == "b"
    fast = canonical.event_from_json(orjson.dumps(valid()))
    assert (
        fast is not None
        and fast.source is first.source
        and fast.to_dict() == {**first.to_dict(), "event_id": "e-1"}
    )


@pytest.mark.parametrize(
    "resource",
    [
        "arn:aws:ssm:us-west-2:111122223333:parameter/ReadableParameters/MyParameter",
        "zoë/ключ",
        "",
        "r" * 2000,
    ],
    ids=["ascii", "non-ascii", "empty", "long"],
)
def test_resource_round_trips_on_every_path(resource: str) -> None:
    record = {**valid(), "resource": resource}
    raw = orjson.dumps(record)
    checked = canonical._to_event_checked(record)
    assert checked.resource == resource
    assert canonical.to_event(record) == checked  # the dict fast path
    assert decode_and_parse(raw).events == [checked]
    fast = canonical.event_from_json(raw)  # msgspec (ASCII) or orjson (non-ASCII) path
    assert fast is None or fast == checked
    assert checked.to_dict()["resource"] == resource
    assert parse_record(checked.to_dict()).events == [checked]


def test_absent_and_null_resource_are_none_and_not_written() -> None:
    for record in (valid(), {**valid(), "resource": None}):
        for event in (canonical.to_event(record), canonical._to_event_checked(record)):
            assert event.resource is None
            assert "resource" not in event.to_dict()
        fast = canonical.event_from_json(orjson.dumps(record))
        assert fast is not None and fast.resource is None


def test_resource_over_the_combined_length_takes_the_checked_path() -> None:
    """A record whose fields together exceed MAX_STR is decided field by field, and still accepted."""
    record = {**valid(), "user_agent": "u" * 1500, "resource": "r" * 1500}
    assert canonical._fast_event(record) is None
    assert canonical.to_event(record).resource == "r" * 1500
