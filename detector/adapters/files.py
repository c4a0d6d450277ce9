"""Read raw log records from files, and keep the ones that failed in a dead-letter file.

A file is JSON lines when its first non-blank line is a JSON value on its own; otherwise
it is one JSON document (CloudTrail delivery files, pretty-printed samples), and a
top-level array yields each element. ``.gz`` files (detected by their magic bytes) are
decompressed on the fly. Nothing here decodes records for good: that is
:func:`detector.sources.decode_and_parse`'s job, so every failure surfaces in one place.
"""

from __future__ import annotations

import base64
import gzip
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NamedTuple, cast

import orjson

log = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
DEFAULT_MAX_RECORD_BYTES = 1_048_576
DEFAULT_MAX_DOCUMENT_BYTES = 64 * 1_048_576
RAW_TEXT_LIMIT = 4096
DEFAULT_MAX_DEAD_PER_FILE = 1000
_BOM = b"\xef\xbb\xbf"
_POSITION = re.compile(r"(?::(?:\d+|[A-Za-z]*\[\d+\]))+$")  # :12, :[3], :Records[3] at the end


class RawRecord(NamedTuple):
    """The bytes of one record and where they came from (``file.jsonl:12``).

    A JSON-lines record keeps its file name and line number apart (``name``, ``line``) and
    builds ``origin`` only when asked, which is rare: only dead letters need it.

    >>> RawRecord(b"{}", "events.jsonl", 12).origin, RawRecord(b"{}", "a.json:[0]").origin
    ('events.jsonl:12', 'a.json:[0]')
    """

    raw: bytes
    name: str
    line: int = 0  # 1-based line number within ``name``; 0 when ``name`` says it all

    @property
    def origin(self) -> str:
        """Where the record came from: ``file.jsonl:12``, ``file.json:[3]``, ``file.json``."""
        return f"{self.name}:{self.line}" if self.line else self.name

    @property
    def file(self) -> str:
        """The file it came from, without line or element.

        >>> RawRecord(b"{}", "t.jsonl:12:Records[3]").file, RawRecord(b"{}", "a.json:[0]").file
        ('t.jsonl', 'a.json')
        """
        return _POSITION.sub("", self.name)


def iter_raw_records(
    path: Path,
    *,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
) -> Iterator[RawRecord]:
    """Yield every record of ``path`` (JSON lines, one JSON document or array, maybe gzipped).

    A record larger than ``max_record_bytes`` that is an envelope (``{"Records": [...]}``,
    ``{"records": [...]}`` or an array) is split into its elements, so that big CloudTrail
    delivery files and Key Vault blobs stay within the per-record limit. Any other
    over-long record is yielded cut to ``max_record_bytes + 1`` bytes for the parser's size
    check to reject; nothing larger than ``max_document_bytes`` is held in memory.
    """
    name = path.name
    with _open(path) as stream:
        first, number = _first_line(stream, max_document_bytes)
        if first is None:
            return
        if _parses_alone(first):
            yield from _sized(RawRecord(first, name, number), max_record_bytes)
            yield from _lines(stream, name, number, max_record_bytes, max_document_bytes)
            return
        head = first + b"\n" + stream.read(max_document_bytes + 1 - len(first))
    if len(head) > max_document_bytes:
        yield RawRecord(head[: max_record_bytes + 1], name)
        return
    yield from _document(name, head, max_record_bytes)


def _open(path: Path) -> IO[bytes]:
    """Open ``path`` for binary reading, through gzip when it starts with the gzip magic."""
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == GZIP_MAGIC:
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def _read_line(stream: IO[bytes], limit: int) -> bytes:
    """One line of at most ``limit + 1`` bytes; the rest of a longer line is dropped."""
    line = stream.readline(limit + 1)
    if len(line) > limit and not line.endswith(b"\n"):
        _skip_rest_of_line(stream)
    return line


def _skip_rest_of_line(stream: IO[bytes]) -> None:
    """Read up to the end of the current line without holding it."""
    while True:
        rest = stream.readline(1_048_576)
        if not rest or rest.endswith(b"\n"):
            return


def _first_line(stream: IO[bytes], limit: int) -> tuple[bytes | None, int]:
    """First non-blank line (stripped, BOM removed) and its 1-based number."""
    number = 0
    while True:
        line = _read_line(stream, limit)
        if not line:
            return None, number
        number += 1
        stripped = line.removeprefix(_BOM).strip() if number == 1 else line.strip()
        if stripped:
            return stripped, number


def _parses_alone(line: bytes) -> bool:
    """True when ``line`` is a complete JSON value other than an array."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return not isinstance(value, list)


def _lines(stream: IO[bytes], name: str, number: int, limit: int, doc_limit: int) -> Iterator[RawRecord]:
    """The remaining non-blank lines as records (the replay hot path: one line, one record)."""
    readline, cap = stream.readline, doc_limit + 1
    new = tuple.__new__  # what RawRecord(raw, name, number) runs, without its Python-level __new__
    while line := readline(cap):
        number += 1
        if len(line) == cap and not line.endswith(b"\n"):
            _skip_rest_of_line(stream)
        stripped = line.strip()
        if not stripped:
            continue
        if len(stripped) <= limit:
            yield new(RawRecord, (stripped, name, number))
        else:
            yield from _sized(RawRecord(stripped, name, number), limit)


def _sized(record: RawRecord, limit: int) -> Iterator[RawRecord]:
    """``record`` as it is, or its elements when it is an over-long envelope, or cut."""
    raw = record.raw
    if len(raw) <= limit:
        yield record
        return
    try:
        value: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = None
    items, label = _envelope_items(value)
    if items is None:
        yield record._replace(raw=raw[: limit + 1])
        return
    origin = record.origin
    for index, item in enumerate(items):
        yield RawRecord(orjson.dumps(item), f"{origin}:{label}[{index}]")


def _envelope_items(value: object) -> tuple[list[Any] | None, str]:
    """Elements of an envelope (``Records``, ``records`` or an array) and their label."""
    if isinstance(value, list):
        return value, ""
    if isinstance(value, dict):
        for key in ("Records", "records"):
            items = value.get(key)
            if isinstance(items, list):
                return items, key
    return None, ""


def _document(name: str, data: bytes, limit: int) -> Iterator[RawRecord]:
    """Records of a whole-file document; falls back to lines when it is not one document."""
    try:
        value: Any = orjson.loads(data)
    except orjson.JSONDecodeError:
        yield from _broken_document(name, data, limit)
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from _sized(RawRecord(orjson.dumps(item), f"{name}:[{index}]"), limit)
        return
    yield from _sized(RawRecord(data.strip(), name), limit)


def _broken_document(name: str, data: bytes, limit: int) -> Iterator[RawRecord]:
    """JSON lines whose first line is broken, else one bad record for the whole file."""
    lines = [(n, line.strip()) for n, line in enumerate(data.split(b"\n"), start=1)]
    lines = [(n, line) for n, line in lines if line]
    if not any(_parses_alone(line) for _, line in lines[1:]):
        yield RawRecord(data.strip()[: limit + 1], name)
        return
    log.debug("%s is not one JSON document; reading it as JSON lines", name)
    for number, line in lines:
        yield from _sized(RawRecord(line.removeprefix(_BOM), name, number), limit)


def dead_letter_entry(
    raw: bytes, error: BaseException | str, max_raw_bytes: int = DEFAULT_MAX_RECORD_BYTES, **where: Any
) -> dict[str, Any]:
    """The JSON form of a rejected record: where it came from, why, and its original bytes.

    >>> dead_letter_entry(b"oops", "invalid JSON", origin="a.jsonl:3")["raw_b64"]
    'b29wcw=='
    """
    entry: dict[str, Any] = {
        **where,
        "error": str(error),
        "raw_b64": base64.b64encode(raw[:max_raw_bytes]).decode("ascii"),
        "raw_text": raw[:RAW_TEXT_LIMIT].decode("utf-8", errors="replace"),
    }
    if len(raw) > max_raw_bytes:
        entry["raw_truncated"] = True
    return entry


class DeadLetterWriter:
    """Context manager collecting records that failed, as JSON lines at ``path``.

    With ``path=None`` the entries are kept in :attr:`entries` instead of written. Each entry
    is ``{"origin", "error", "raw_b64", "raw_text"}``; ``raw_text`` is the record decoded as
    UTF-8 with replacement and cut to 4 KiB, ``raw_b64`` holds at most
    ``max_raw_bytes`` bytes (``raw_truncated`` says when it was cut). At most
    ``max_per_file`` records of one file are written one by one: a small compressed file can
    hold a million bad records, and their dead letters would be a thousand times its size. The
    rest are counted, and one closing entry per file says how many were left out.
    """

    def __init__(
        self,
        path: Path | None,
        *,
        max_raw_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        max_per_file: int = DEFAULT_MAX_DEAD_PER_FILE,
    ) -> None:
        """Keep the destination; nothing is opened before ``__enter__``."""
        self.path = path
        self.max_raw_bytes = max_raw_bytes
        self.max_per_file = max_per_file
        self.entries: list[dict[str, Any]] = []
        self._count = 0
        self._per_file: dict[str, int] = {}
        self._stream: IO[bytes] | None = None

    @property
    def count(self) -> int:
        """Number of records written so far."""
        return self._count

    def __enter__(self) -> DeadLetterWriter:
        """Open the dead-letter file for appending (created with its parents if needed)."""
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._stream = self.path.open("ab")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Say how many records of each file were left out, then flush and close the file."""
        for name, seen in self._per_file.items():
            if seen > self.max_per_file:
                left = seen - self.max_per_file
                self._emit({"origin": name, "error": f"{left:,} more rejected records of this file are "
                            f"counted but not written (the first {self.max_per_file:,} are)",
                            "left_out": left, "raw_b64": "", "raw_text": ""})  # fmt: skip
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def write(self, record: RawRecord, error: BaseException | str) -> None:
        """Record that ``record`` failed with ``error``."""
        self._count += 1
        seen = self._per_file[record.file] = self._per_file.get(record.file, 0) + 1
        if seen <= self.max_per_file:
            self._emit(dead_letter_entry(record.raw, error, self.max_raw_bytes, origin=record.origin))

    def _emit(self, entry: dict[str, Any]) -> None:
        if self.path is None:
            self.entries.append(entry)
            return
        if self._stream is None:
            raise RuntimeError("DeadLetterWriter.write called outside its 'with' block")
        self._stream.write(orjson.dumps(entry) + b"\n")
