"""Parsers from real key-usage log formats into canonical events (pure: no I/O).

``parse_record`` takes one decoded JSON value; ``decode_and_parse`` takes its raw bytes.
Every malformed or hostile input ends as :class:`ParseError` (or its subclass
:class:`UnknownFormatError`), never as another exception type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from detector.domain.errors import ParseError, UnknownFormatError
from detector.sources import azure, canonical, cloudtrail, gcp, vault
from detector.sources._common import ParseResult
from detector.sources.detect import detect_format

__all__ = [
    "FORMATS",
    "ParseError",
    "ParseResult",
    "UnknownFormatError",
    "decode_and_parse",
    "detect_format",
    "parse_record",
]

FORMATS = ("auto", "canonical", "cloudtrail", "vault", "azure", "gcp")
DEFAULT_MAX_BYTES = 1_048_576

_PARSERS: dict[str, Callable[[dict[str, Any]], ParseResult]] = {
    "canonical": canonical.parse,
    "cloudtrail": cloudtrail.parse,
    "vault": vault.parse,
    "azure": azure.parse,
    "gcp": gcp.parse,
}
# Python errors a parser could still hit on input nobody foresaw; reported as ParseError.
_UNFORESEEN = (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError, RecursionError)


def parse_record(obj: object, fmt: str = "auto") -> ParseResult:
    """Parse one decoded JSON value in format ``fmt`` (``auto`` detects it per record).

    Examples
    --------
    >>> r = parse_record({"event_id": "e1", "ts": "2024-05-01T12:00:00Z", "key_id": "k1",
    ...     "operation": "Decrypt", "principal": "alice", "source_ip": "", "outcome": "success",
    ...     "source": "aws-kms"})
    >>> (len(r.events), r.events[0].key_id, r.skipped)
    (1, 'k1', 0)
    """
    if fmt not in FORMATS:
        raise UnknownFormatError(f"unknown format {str(fmt)[:32]!r}; expected one of {', '.join(FORMATS)}")
    name = detect_format(obj) if fmt == "auto" else fmt
    if not isinstance(obj, dict):
        raise ParseError(f"a {name} record must be a JSON object, got {type(obj).__name__}")
    try:
        return _PARSERS[name](obj)
    except ParseError:
        raise
    except _UNFORESEEN as exc:
        raise ParseError(f"malformed {name} record: {type(exc).__name__}: {str(exc)[:200]}") from exc


def decode_and_parse(raw: bytes, fmt: str = "auto", max_bytes: int = DEFAULT_MAX_BYTES) -> ParseResult:
    """Decode one raw JSON record (at most ``max_bytes``) with orjson and parse it.

    Examples
    --------
    >>> r = decode_and_parse(b'{"Records": []}')
    >>> r.events, r.skipped, r.skip_reason
    ([], 1, 'a CloudTrail delivery file with no records')
    """
    if len(raw) > max_bytes:
        raise ParseError(f"record is {len(raw)} bytes, over the limit of {max_bytes} bytes")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"invalid JSON: {exc}") from exc
    return parse_record(obj, fmt)
