"""Format detection and the public parse_record / decode_and_parse API on every fixture."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from detector.domain.errors import ParseError, UnknownFormatError
from detector.sources import FORMATS, ParseResult, decode_and_parse, detect_format, parse_record

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EXPECTED = {
    "cloudtrail": "cloudtrail",
    "vault": "vault",
    "azure": "azure",
    "gcp": "gcp",
    "canonical": "canonical",
}


def fixture_records() -> list[tuple[str, Path, object]]:
    """(folder, path, first record) of every published fixture."""
    found = []
    for folder in EXPECTED:
        for path in sorted((FIXTURES / folder).iterdir()):
            first = next(line for line in path.read_bytes().splitlines() if line.strip())
            raw = first if path.suffix == ".jsonl" else path.read_bytes()
            found.append((folder, path, orjson.loads(raw)))
    return found


@pytest.mark.parametrize(
    ("folder", "path", "record"), fixture_records(), ids=lambda v: getattr(v, "name", None)
)
def test_every_fixture_is_detected_and_parses(folder: str, path: Path, record: object) -> None:
    assert detect_format(record) == EXPECTED[folder]
    auto = parse_record(record)
    forced = parse_record(record, EXPECTED[folder])
    assert auto == forced
    assert len(auto.events) + auto.skipped >= 1


def test_formats_constant() -> None:
    assert FORMATS == ("auto", "canonical", "cloudtrail", "vault", "azure", "gcp")


@pytest.mark.parametrize("value", [None, 1, "x", [], [{"eventSource": "kms.amazonaws.com"}], {"a": 1}, {}])
def test_unrecognised_values(value: object) -> None:
    with pytest.raises(UnknownFormatError):
        parse_record(value)


def test_unknown_format_name() -> None:
    with pytest.raises(UnknownFormatError, match="unknown format 'syslog'"):
        parse_record({}, "syslog")


def test_forced_format_needs_an_object() -> None:
    with pytest.raises(ParseError, match="a gcp record must be a JSON object"):
        parse_record([1], "gcp")


def test_decode_and_parse_limits_and_json_errors() -> None:
    with pytest.raises(ParseError, match="record is 11 bytes, over the limit of 10 bytes"):
        decode_and_parse(b'{"a": 123}\n', max_bytes=10)
    with pytest.raises(ParseError, match="invalid JSON"):
        decode_and_parse(b'{"event_id": ')
    with pytest.raises(ParseError, match="invalid JSON"):
        decode_and_parse(b"\xff\xfe")


def test_parse_result_shape() -> None:
    result = ParseResult([])
    assert (result.events, result.skipped, result.skip_reason) == ([], 0, None)
