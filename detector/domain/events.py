"""Canonical key-usage event, schema v1."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

SCHEMA_VERSION = 1
OUTCOMES = frozenset({"success", "denied", "error"})
REQUIRED_FIELDS = (
    "event_id",
    "ts",
    "key_id",
    "operation",
    "principal",
    "source_ip",
    "outcome",
    "source",
)
OPTIONAL_FIELDS = (
    "country",
    "lat",
    "lon",
    "user_agent",
    "region",
    "key_alias",
    "request_id",
    "resource",
)


class Event(msgspec.Struct, gc=False):
    """One use of one key, as every detector sees it.

    ``ts`` is seconds since the Unix epoch (UTC); ``to_dict`` writes it as RFC 3339.
    ``country``/``lat``/``lon`` are filled by the source when it logs them, otherwise by
    geolocation of ``source_ip`` during enrichment ("" country = explicitly unknown).
    A msgspec Struct: built in C (millions per replay) and, holding only strings and
    numbers, never tracked by the cyclic garbage collector.
    """

    event_id: str
    ts: float
    key_id: str
    operation: str
    principal: str
    source_ip: str
    outcome: str
    source: str
    country: str | None = None
    lat: float | None = None
    lon: float | None = None
    user_agent: str | None = None
    region: str | None = None
    key_alias: str | None = None
    request_id: str | None = None
    resource: str | None = None  # what the key protected (a secret, parameter, object), when logged

    def to_dict(self) -> dict[str, Any]:
        """Return the canonical JSON object (optional fields only when set)."""
        out: dict[str, Any] = {
            "event_id": self.event_id,
            "ts": format_ts(self.ts),
            "key_id": self.key_id,
            "operation": self.operation,
            "principal": self.principal,
            "source_ip": self.source_ip,
            "outcome": self.outcome,
            "source": self.source,
        }
        for name in OPTIONAL_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def format_ts(ts: float) -> str:
    """Format epoch seconds as RFC 3339 UTC with millisecond precision.

    >>> format_ts(0.0)
    '1970-01-01T00:00:00.000Z'
    """
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_ts(text: str) -> float:
    """Parse an RFC 3339 / ISO 8601 timestamp into epoch seconds; naive times are UTC.

    Accepts nanosecond fractions (GCP, Vault) by truncating to microseconds.

    >>> parse_ts("1970-01-01T00:01:00Z")
    60.0
    >>> round(parse_ts("2024-05-01T12:00:00.123456789Z") - parse_ts("2024-05-01T12:00:00Z"), 6)
    0.123456
    """
    if not isinstance(text, str) or not text:
        raise ValueError(f"timestamp must be a non-empty string, got {text!r}")
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    dot = s.find(".")
    if dot != -1:
        end = dot + 1
        while end < len(s) and s[end].isdigit():
            end += 1
        s = s[: dot + 1] + s[dot + 1 : end][:6].ljust(6, "0") + s[end:]
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()
