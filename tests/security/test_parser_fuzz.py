"""100,000 mutated published records through every parser: each one is counted, none is lost.

Every record read must come out as events, a counted skip, or a ParseError (a dead letter); a
record that yields nothing at all would vanish unseen, and any other exception would stop a
consumer. The mutations start from the published samples under ``tests/fixtures`` (every
format) and do what broken producers and attackers do: drop, retype and add fields, wrap
records in envelopes, add stray ``Records`` fields, nest deeply, cut and flip bytes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from detector.domain.errors import ParseError
from detector.domain.events import Event
from detector.sources import FORMATS, decode_and_parse

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MUTATIONS = 100_000
SCALARS: list[Any] = [
    None,
    True,
    0,
    -1,
    2**63,
    1e308,
    "",
    "x" * 5000,
    "\ud800",
    "\x00",
    [],
    {},
    "1970-01-01T00:00:00Z",
]


def _samples() -> list[Any]:
    out: list[Any] = []
    for fmt in ("cloudtrail", "vault", "azure", "gcp", "canonical"):
        for path in sorted((FIXTURES / fmt).glob("*.json*")):
            text = path.read_text(encoding="utf-8")
            if path.suffix == ".jsonl":
                out.extend(json.loads(line) for line in text.splitlines() if line.strip())
            else:
                out.append(json.loads(text))
    return out


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:4]):
            yield from _paths(v, (*prefix, i))


def _set(value: Any, path: tuple[Any, ...], new: Any, delete: bool = False) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        out = dict(value)
        if delete and not rest:
            out.pop(head, None)
        else:
            out[head] = _set(value.get(head), rest, new, delete)
        return out
    if isinstance(value, list) and isinstance(head, int) and head < len(value):
        out_list = list(value)
        if delete and not rest:
            del out_list[head]
        else:
            out_list[head] = _set(value[head], rest, new, delete)
        return out_list
    return value


def _mutate(rng: random.Random, value: Any) -> bytes:
    kind = rng.randrange(9)
    paths = list(_paths(value))
    path = rng.choice(paths)
    if kind == 0:
        mutated = _set(value, path, None, delete=True)
    elif kind == 1:
        mutated = _set(value, path, rng.choice(SCALARS))
    elif kind == 2 and isinstance(value, dict):
        mutated = {**value, rng.choice(["Records", "records"]): rng.choice([[], None, {}, [value], "x"])}
    elif kind == 3:
        mutated = rng.choice([{"Records": [value] * rng.randrange(3)}, {"records": [value]}, [value, value]])
    elif kind == 4:
        deep: Any = value
        for _ in range(rng.randrange(50, 400)):
            deep = [deep] if rng.random() < 0.5 else {"detail": deep}
        mutated = deep
    elif kind == 5:
        mutated = _set(value, path, rng.choice(paths[:1]) or {"nested": value})
    else:
        raw = orjson.dumps(value)
        cut = rng.randrange(len(raw) + 1)
        if kind == 6:
            return raw[:cut]
        if kind == 7:
            return raw[:cut] + bytes([rng.randrange(256)]) + raw[cut + 1 :]
        return raw + rng.choice([b"}", b"]", b",", b" garbage", b"\xff"])
    try:
        return json.dumps(mutated, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError, RecursionError):
        return b"{"


def _counted(raw: bytes, fmt: str) -> str:
    """How ``raw`` was accounted for: ``events``, ``skipped`` or ``dead``; fails when not at all."""
    try:
        result = decode_and_parse(raw, fmt)
    except ParseError:
        return "dead"
    assert all(isinstance(e, Event) for e in result.events)
    if result.events:
        return "events"
    assert result.skipped >= 1, f"a record yielded nothing and was not counted: {raw[:300]!r}"
    assert result.skip_reason, "a skip says why"
    return "skipped"


@pytest.mark.slow
def test_every_mutated_record_is_an_event_a_skip_or_a_dead_letter() -> None:
    samples = _samples()
    assert len(samples) >= 30
    rng = random.Random(20261203)
    outcomes = {"events": 0, "skipped": 0, "dead": 0}
    formats: list[str] = list(FORMATS)
    for _ in range(MUTATIONS):
        raw = _mutate(rng, rng.choice(samples))
        outcomes[_counted(raw, rng.choice(formats))] += 1
    assert sum(outcomes.values()) == MUTATIONS
    assert min(outcomes.values()) > 1000, outcomes  # every way out is exercised


@pytest.mark.parametrize(
    ("record", "outcome"),
    [({"Records": []}, "skipped"), ({"records": []}, "skipped"), ({"Records": None}, "dead")],
    ids=["cloudtrail-empty", "azure-empty", "cloudtrail-null"],
)
def test_an_empty_envelope_is_counted(record: dict[str, Any], outcome: str) -> None:
    assert _counted(orjson.dumps(record), "auto") == outcome


@pytest.mark.parametrize("stray", [[], None])
def test_a_kms_record_with_a_stray_records_field_is_still_read(stray: Any) -> None:
    record = json.loads((FIXTURES / "cloudtrail" / "kms_decrypt.json").read_text(encoding="utf-8"))
    record = record["Records"][0] if "Records" in record else record
    result = decode_and_parse(orjson.dumps({**record, "Records": stray}))
    assert len(result.events) == 1 and result.events[0].operation == "Decrypt"
