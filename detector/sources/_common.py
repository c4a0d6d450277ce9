"""Shared pieces of the parsers: the result type and hostile-input-proof field readers."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from detector.domain.errors import ParseError
from detector.domain.events import Event, parse_ts

MAX_STR = 2048
MAX_RESOURCE = 512
"""Longest ``resource`` a source parser extracts from a log (see :func:`safe_resource`)."""
# Epoch bounds accepted for any event: 1970-01-01 .. 2100-01-01 (UTC).
MIN_TS = 0.0
MAX_TS = 4_102_444_800.0
NO_KEY = "*"
"""``key_id`` of an operation that targets no single key (ListKeys, GenerateRandom, ...)."""

# C0, DEL and C1 controls, and the bidirectional embedding/override/isolate controls that
# make text display differently from what it is ("Trojan Source", CVE-2021-42574).
_BAD_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_ASCII_CONTROLS = bytes(range(0x20)) + b"\x7f"  # the only _BAD_CHARS an ASCII string can hold

Record = Mapping[str, Any]


@dataclass(slots=True)
class ParseResult:
    """Events parsed from one record, plus how many sub-records were skipped and why."""

    events: list[Event]
    skipped: int = 0
    skip_reason: str | None = None

    def skip(self, reason: str, count: int = 1) -> None:
        """Count ``count`` records skipped for ``reason`` (the first reason is kept)."""
        self.skipped += count
        if self.skip_reason is None:
            self.skip_reason = reason

    def merge(self, other: ParseResult) -> None:
        """Add the events and skips of ``other`` to this result."""
        self.events.extend(other.events)
        if other.skipped:
            self.skip(other.skip_reason or "skipped", other.skipped)


def check_str(value: object, name: str) -> str:
    """Return ``value`` if it is a clean string of at most MAX_STR characters, else raise."""
    if type(value) is not str:
        raise ParseError(f"field {name!r} must be a string, got {type(value).__name__}")
    if len(value) > MAX_STR:
        raise ParseError(f"field {name!r} is {len(value)} characters long, the limit is {MAX_STR}")
    if _BAD_CHARS.search(value):
        raise ParseError(f"field {name!r} contains control characters")
    return value


def is_clean(value: object) -> bool:
    """True when ``value`` would pass :func:`check_str` (fast path, no message built)."""
    return (
        type(value) is str
        and len(value) <= MAX_STR
        and (value.isprintable() or _BAD_CHARS.search(value) is None)
    )


def is_clean_text(text: str) -> bool:
    """True when ``text`` holds none of the characters :func:`check_str` rejects (length aside).

    >>> is_clean_text("zoë o'brien"), is_clean_text("tab\\there"), is_clean_text("admin\\u202egnp.exe")
    (True, False, False)
    """
    if text.isascii():
        # bytes.translate deletes the controls several times faster than a regex or isprintable scans.
        return len(text.encode().translate(None, _ASCII_CONTROLS)) == len(text)
    return text.isprintable() or _BAD_CHARS.search(text) is None


def safe_resource(text: str) -> str:
    """``text`` made safe to keep as an event's ``resource``: printable and at most MAX_RESOURCE long.

    What a key protected is named by whoever made the call (an encryption context, a Vault
    ``context``), so its value must not decide whether the event is kept: instead of being
    rejected as :func:`check_str` would, each character it rejects becomes a ``\\uXXXX``
    escape, and a longer result keeps its first characters plus a digest of the whole, so
    distinct long values stay distinct and the same value always gives the same resource.

    >>> safe_resource("arn:aws:s3:::bucket/key")
    'arn:aws:s3:::bucket/key'
    >>> safe_resource("a\\x1b[31mb\\u202e")
    'a\\\\u001b[31mb\\\\u202e'
    >>> r = safe_resource("x" * 600); (len(r), r[:3], r[-20:-16], r == safe_resource("x" * 600))
    (512, 'xxx', '...#', True)
    """
    if not is_clean_text(text):
        text = _BAD_CHARS.sub(_escape, text)
    if len(text) <= MAX_RESOURCE:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{text[: MAX_RESOURCE - 20]}...#{digest}"


def _escape(match: re.Match[str]) -> str:
    """``\\uXXXX`` for one character :func:`check_str` rejects."""
    return f"\\u{ord(match.group()):04x}"


def req_str(obj: Record, key: str, name: str | None = None, *, empty_ok: bool = False) -> str:
    """Read a required string field of ``obj``; ``name`` is how errors refer to it."""
    label = name or key
    if key not in obj or obj[key] is None:
        raise ParseError(f"missing field {label!r}")
    value = check_str(obj[key], label)
    if not value and not empty_ok:
        raise ParseError(f"field {label!r} is empty")
    return value


def opt_str(obj: Record, key: str, name: str | None = None) -> str | None:
    """Read an optional string field; absent, null and empty give None."""
    value = obj.get(key)
    if value is None or value == "":
        return None
    return check_str(value, name or key)


def opt_dict(obj: Record, key: str, name: str | None = None) -> dict[str, Any]:
    """Read an optional object field; absent or null give an empty dict."""
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ParseError(f"field {name or key!r} must be an object, got {type(value).__name__}")
    return value


def opt_list(obj: Record, key: str, name: str | None = None) -> list[Any]:
    """Read an optional array field; absent or null give an empty list."""
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ParseError(f"field {name or key!r} must be an array, got {type(value).__name__}")
    return value


def first_str(obj: Record, keys: tuple[str, ...], prefix: str) -> str | None:
    """First non-empty string among ``keys`` of ``obj`` (each checked), else None."""
    for key in keys:
        value = opt_str(obj, key, f"{prefix}{key}")
        if value:
            return value
    return None


def to_ts(value: object, name: str) -> float:
    """Parse an RFC 3339 timestamp field into epoch seconds within [1970, 2100)."""
    if value is None:
        raise ParseError(f"missing field {name!r}")
    text = check_str(value, name)
    try:
        ts = parse_ts(text)
    except (ValueError, OverflowError, OSError) as exc:
        raise ParseError(f"field {name!r} is not an RFC 3339 timestamp: {text[:64]!r}") from exc
    if not MIN_TS <= ts < MAX_TS:
        raise ParseError(f"field {name!r} is outside 1970..2100: {text[:64]!r}")
    return ts


def derive_id(prefix: str, obj: object) -> str:
    """Deterministic event id for records that carry none: a digest of the whole record.

    The same record always gets the same id, so a replayed file does not double count.
    """
    try:
        blob = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise ParseError(f"record cannot be re-encoded to derive an event id: {exc}") from exc
    return f"{prefix}:{hashlib.sha256(blob).hexdigest()[:32]}"


def as_record(obj: object, what: str) -> dict[str, Any]:
    """Return ``obj`` if it is a JSON object, else raise a ParseError naming ``what``."""
    if not isinstance(obj, dict):
        raise ParseError(f"{what} must be a JSON object, got {type(obj).__name__}")
    return obj
