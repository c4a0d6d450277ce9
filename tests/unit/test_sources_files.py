"""Files adapter: JSONL, documents, arrays, gzip, size limits and the dead-letter path."""

from __future__ import annotations

import base64
import gzip
import shutil
from pathlib import Path

import orjson

from detector.adapters.files import DeadLetterWriter, RawRecord, iter_raw_records
from detector.domain.errors import ParseError
from detector.sources import decode_and_parse

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def origins(path: Path, **limits: int) -> list[str]:
    """Origins of every record of ``path``."""
    return [r.origin for r in iter_raw_records(path, **limits)]


def run(path: Path, dead: DeadLetterWriter) -> tuple[int, int]:
    """Parse every record of ``path``; failures go to ``dead``. Returns (events, skipped)."""
    events = skipped = 0
    for record in iter_raw_records(path):
        try:
            result = decode_and_parse(record.raw)
        except ParseError as exc:
            dead.write(record, exc)
            continue
        events += len(result.events)
        skipped += result.skipped
    return events, skipped


def test_jsonl_skips_blank_lines_and_numbers_lines() -> None:
    path = FIXTURES / "canonical" / "events.jsonl"
    assert origins(path) == ["events.jsonl:1", "events.jsonl:3", "events.jsonl:4"]


def test_pretty_printed_document_is_one_record() -> None:
    records = list(iter_raw_records(FIXTURES / "cloudtrail" / "ec2_example_two_records.json"))
    assert [r.origin for r in records] == ["ec2_example_two_records.json"]
    result = decode_and_parse(records[0].raw)
    assert (len(result.events), result.skipped) == (3, 1)


def test_top_level_array_yields_each_element(tmp_path: Path) -> None:
    path = tmp_path / "array.json"
    items = [
        orjson.loads((FIXTURES / "gcp" / name).read_bytes()) for name in ("panther_kms_set_iam_policy.json",)
    ]
    path.write_bytes(orjson.dumps(items * 2, option=orjson.OPT_INDENT_2))
    records = list(iter_raw_records(path))
    assert [r.origin for r in records] == ["array.json:[0]", "array.json:[1]"]
    assert decode_and_parse(records[1].raw).events[0].operation == "SetIamPolicy"


def test_single_line_array_is_an_array(tmp_path: Path) -> None:
    path = tmp_path / "one-line.json"
    path.write_bytes(b'[{"a": 1}, {"b": 2}]\n')
    assert origins(path) == ["one-line.json:[0]", "one-line.json:[1]"]


def test_gzip_is_detected_by_magic_bytes(tmp_path: Path) -> None:
    path = tmp_path / "CloudTrail_delivery"  # no .gz suffix on purpose
    with (
        (FIXTURES / "cloudtrail" / "kms_disable_key_records.json").open("rb") as src,
        gzip.open(path, "wb") as dst,
    ):
        shutil.copyfileobj(src, dst)
    records = list(iter_raw_records(path))
    assert len(records) == 1
    assert decode_and_parse(records[0].raw).events[0].operation == "DisableKey"


def test_big_delivery_file_is_split_into_its_records(tmp_path: Path) -> None:
    delivery = orjson.loads((FIXTURES / "cloudtrail" / "ec2_example_two_records.json").read_bytes())
    path = tmp_path / "big.json.gz"
    path.write_bytes(gzip.compress(orjson.dumps(delivery)))  # one line, over the small limit below
    records = list(iter_raw_records(path, max_record_bytes=2000))
    assert [r.origin for r in records] == [f"big.json.gz:1:Records[{i}]" for i in range(4)]
    operations = [e.operation for r in records for e in decode_and_parse(r.raw).events]
    assert operations == ["CreateGrant", "GenerateDataKeyWithoutPlaintext", "Decrypt"]


def test_over_long_line_is_cut_and_rejected(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    path.write_bytes(b'{"x": "' + b"a" * 5000 + b'"}\n{"event_id": 1}\n')
    records = list(iter_raw_records(path, max_record_bytes=100))
    assert [(r.origin, len(r.raw)) for r in records] == [("long.jsonl:1", 101), ("long.jsonl:2", 15)]


def test_bad_first_line_falls_back_to_lines(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_bytes(b'{"event_id": \n{"a": 1}\n\n{"b": 2}\n')
    assert origins(path) == ["broken.jsonl:1", "broken.jsonl:2", "broken.jsonl:4"]


def test_truncated_document_is_one_bad_record() -> None:
    path = FIXTURES / "bad" / "truncated_cloudtrail.json"
    records = list(iter_raw_records(path))
    assert [r.origin for r in records] == ["truncated_cloudtrail.json"]


def test_dead_letters_in_memory() -> None:
    with DeadLetterWriter(None) as dead:
        events, skipped = run(FIXTURES / "bad" / "mixed.jsonl", dead)
    assert (events, skipped, dead.count) == (2, 0, 10)
    first = dead.entries[0]
    assert first["origin"] == "mixed.jsonl:2"
    assert first["error"].startswith("invalid JSON")
    assert base64.b64decode(first["raw_b64"]) == first["raw_text"].encode()
    assert dead.entries[1]["error"] == "field 'principal' contains control characters"


def test_dead_letters_written_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "dlq" / "dead.jsonl"
    with DeadLetterWriter(out) as dead:
        run(FIXTURES / "bad" / "mixed.jsonl", dead)
        run(FIXTURES / "bad" / "oversized_field.jsonl", dead)
        dead.write(RawRecord(b"\xff" * 5000, "binary:1"), "invalid JSON: bytes")
    entries = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len(entries) == dead.count == 12
    assert {"origin", "error", "raw_b64", "raw_text"} <= set(entries[-1])
    assert len(entries[-1]["raw_text"]) == 4096  # 4 KiB of bytes, each replaced by U+FFFD
    assert entries[-2]["error"] == "field 'principal' is 3000 characters long, the limit is 2048"


def test_dead_letter_raw_is_capped() -> None:
    with DeadLetterWriter(None, max_raw_bytes=10) as dead:
        dead.write(RawRecord(b"x" * 50, "f:1"), ParseError("too big"))
    entry = dead.entries[0]
    assert (base64.b64decode(entry["raw_b64"]), entry["raw_truncated"]) == (b"x" * 10, True)
