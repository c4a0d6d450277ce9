"""Hostile and broken files: a corrupt gzip is a dead letter and the run goes on; a small file of
a million bad records writes a bounded dead-letter file whose counts are still exact."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from detector.adapters.inputs import read_events
from detector.cli.main import main

GOOD = {"event_id": "e1", "ts": "2024-05-01T12:00:00Z", "key_id": "k1", "operation": "Decrypt",
        "principal": "alice", "source_ip": "", "outcome": "success", "source": "aws-kms"}  # fmt: skip


def _gz(lines: int = 50) -> bytes:
    text = "\n".join(json.dumps({**GOOD, "event_id": f"e{i}"}) for i in range(lines)) + "\n"
    return gzip.compress(text.encode(), mtime=0)


def _corruptions() -> dict[str, bytes]:
    data = _gz()
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    return {
        "truncated": data[: len(data) // 2],
        "bit-flipped": bytes(flipped),
        "bad-magic-after-header": data[:2] + b"\x00" * 8 + data[10:],
        "trailing-garbage": data + b"not gzip at all",
    }


@pytest.mark.parametrize("kind", list(_corruptions()))
def test_a_corrupt_gzip_is_dead_lettered_and_the_run_goes_on(tmp_path: Path, kind: str) -> None:
    (tmp_path / "a-bad.jsonl.gz").write_bytes(_corruptions()[kind])
    (tmp_path / "b-good.jsonl.gz").write_bytes(_gz(7))
    dead = tmp_path / "dead.jsonl"
    batch = read_events([tmp_path], "auto", dead)
    assert batch.dead >= 1 and len(batch.events) >= 7
    letters = [json.loads(line) for line in dead.read_text().splitlines()]
    assert any(e["origin"] == "a-bad.jsonl.gz" and "unreadable file" in e["error"] for e in letters)
    assert batch.records == len(batch.events) + batch.skipped + batch.dead


@pytest.mark.parametrize("command", ["normalize", "replay"])
def test_the_commands_finish_with_a_corrupt_gzip(tmp_path: Path, command: str) -> None:
    (tmp_path / "bad.jsonl.gz").write_bytes(_corruptions()["truncated"])
    out, dead = tmp_path / "out.jsonl", tmp_path / "dead.jsonl"
    if command == "normalize":
        argv = ["normalize", str(tmp_path / "bad.jsonl.gz"), "--out", str(out), "--no-geo"]
    else:
        world = tmp_path / "world"
        simulate = ["simulate", "--out", str(world), "--keys", "3", "--days", "1.5", "--test-days", "0.5"]
        assert main(simulate) == 0
        assert main(["train", str(world / "history.jsonl"), "--out", str(tmp_path / "model")]) == 0
        argv = [
            "replay",
            str(tmp_path / "bad.jsonl.gz"),
            "--model",
            str(tmp_path / "model"),
            "--out",
            str(out),
        ]
    assert main([*argv, "--dead-letter", str(dead)]) == 0
    assert out.exists() and "unreadable file" in dead.read_text()


def test_a_million_bad_records_in_a_tiny_file_write_a_bounded_dead_letter_file(tmp_path: Path) -> None:
    bomb = gzip.compress(b"[" + b"0," * 999_999 + b"0]", mtime=0)
    assert len(bomb) < 5_000
    (tmp_path / "bomb.json.gz").write_bytes(bomb)
    dead = tmp_path / "dead.jsonl"
    batch = read_events([tmp_path / "bomb.json.gz"], "auto", dead)
    assert batch.records == batch.dead == 1_000_000, "every record is counted"
    letters = dead.read_text().splitlines()
    assert len(letters) == 1001 and dead.stat().st_size < 2_000_000
    assert json.loads(letters[-1])["left_out"] == 999_000
