"""Reading log files into canonical events, with dead letters for what cannot be parsed."""

from __future__ import annotations

import gc
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path

from detector.adapters.files import DeadLetterWriter, RawRecord, iter_raw_records
from detector.domain.errors import ParseError, UnknownFormatError
from detector.domain.events import Event
from detector.sources import DEFAULT_MAX_BYTES, FORMATS, decode_and_parse
from detector.sources.canonical import FAST_PATH_ERRORS, event_from_json


@dataclass(slots=True)
class InputBatch:
    """Events read from files (sorted by event time) and what happened to every record."""

    events: list[Event] = field(default_factory=list)
    records: int = 0
    skipped: int = 0
    dead: int = 0

    def summary(self) -> str:
        """One line: records, events, skipped and dead-lettered counts."""
        return (
            f"{self.records:,} records ({self.events.__len__():,} events, {self.skipped:,} skipped as "
            f"other services' records, {self.dead:,} dead-lettered)"
        )


LOG_SUFFIXES = (".json", ".jsonl", ".ndjson", ".log", ".gz")


def expand_inputs(paths: list[Path]) -> list[Path]:
    """Files as given; directories become their log files (recursively, sorted by name)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(LOG_SUFFIXES)))
        elif path.is_file():
            out.append(path)
        else:
            raise FileNotFoundError(2, "No such file or directory", str(path))
    return out


def read_events(paths: list[Path], fmt: str = "auto", dead_letter: Path | None = None) -> InputBatch:
    """Parse every record of every file; unparseable ones go to ``dead_letter`` with the reason."""
    if fmt not in FORMATS:
        raise UnknownFormatError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    paths = expand_inputs(paths)
    batch = InputBatch()
    # Events hold no reference cycles: collecting while a million of them pile up only costs time.
    collecting = gc.isenabled()
    gc.disable()
    try:
        with DeadLetterWriter(dead_letter) as dead:
            for path in paths:
                try:
                    _parse_into(batch, iter_raw_records(path), fmt, dead)
                except UNREADABLE as exc:  # a corrupt file: what it held so far is kept, the rest lost
                    batch.records += 1
                    dead.write(
                        RawRecord(_head(path), path.name), f"unreadable file: {type(exc).__name__}: {exc}"
                    )
            batch.dead = dead.count
    finally:
        if collecting:
            gc.enable()
    # Stable, so events already in time order (the usual case) stay as they are, in one pass.
    batch.events.sort(key=_TS)
    return batch


_TS = attrgetter("ts")
# What a corrupt or cut file raises while it is read: bad gzip magic or data, a truncated stream.
UNREADABLE = (OSError, EOFError, zlib.error)


def _head(path: Path, limit: int = 65_536) -> bytes:
    """The first bytes of a file, for the dead letter that says it could not be read."""
    with path.open("rb") as fh:
        return fh.read(limit)


def _parse_into(batch: InputBatch, records: Iterable[RawRecord], fmt: str, dead: DeadLetterWriter) -> None:
    """Parse ``records`` into ``batch``; the ones that fail go to ``dead``."""
    events, count, skipped = batch.events, 0, 0
    append = events.append
    # Canonical records (the replay hot path) go straight to their event; whatever that path
    # does not decide, decode_and_parse parses again and turns into the same event or error.
    fast = event_from_json if fmt in ("auto", "canonical") else None
    try:
        for record in records:
            count += 1
            raw = record.raw
            if fast is not None and len(raw) <= DEFAULT_MAX_BYTES:
                try:
                    event = fast(raw)
                except _FALLBACK:
                    event = None
                if event is not None:
                    append(event)
                    continue
            try:
                result = decode_and_parse(raw, fmt)
            except ParseError as exc:
                dead.write(record, str(exc))
                continue
            events += result.events
            skipped += result.skipped
    finally:  # a file that breaks off midway still counts what it held
        batch.records += count
        batch.skipped += skipped


# What parse_record reports as a ParseError: the general path redoes the record and says which.
_FALLBACK = FAST_PATH_ERRORS
