"""Canonical event schema v1: strict, fast validation (the replay hot path).

Plain dict access only: a benchmark replays a million lines through here. Fields outside
the schema are ignored so that additive schema changes do not break older readers.
No operation table is registered: a canonical record names its own ``source`` and is
classified by that source's table.
"""

from __future__ import annotations

import operator
from datetime import UTC, datetime
from typing import Any

from detector.domain.errors import ParseError
from detector.domain.events import OUTCOMES, REQUIRED_FIELDS, Event, parse_ts
from detector.sources._common import MAX_STR, MAX_TS, MIN_TS, ParseResult, check_str, is_clean, is_clean_text

_MAY_BE_EMPTY = frozenset({"source_ip"})
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_OPTIONAL_STR = ("user_agent", "region", "key_alias", "request_id")
# The fast path reads the 8 required fields in one call (KeyError when one is absent).
_REQUIRED = operator.itemgetter(*REQUIRED_FIELDS)
_STR_OR_NONE = frozenset({str, type(None)})
# Every value ``_country`` accepts as it is: "" and two upper-case letters.
_COUNTRIES = frozenset({""} | {a + b for a in _UPPER for b in _UPPER})


def parse(obj: dict[str, Any]) -> ParseResult:
    """Validate one canonical record and return it as a single event."""
    return ParseResult([to_event(obj)])


def to_event(obj: dict[str, Any]) -> Event:
    """Build an Event from a canonical record, raising ParseError naming the bad field.

    The common, valid record passes a few combined checks; anything they do not accept
    (including every invalid record) goes through :func:`_to_event_checked`, which checks
    field by field and names the first bad one, so both paths accept exactly the same records.
    """
    get = obj.get
    try:
        required: tuple[Any, ...] = _REQUIRED(obj)
    except KeyError:
        return _to_event_checked(obj)
    optional = (get("user_agent"), get("region"), get("key_alias"), get("request_id"))
    event_id, ts, key_id, operation, principal, source_ip, outcome, source = required
    user_agent, region, key_alias, request_id = optional
    # Exact types, as check_str wants them; the three OUTCOMES need no character check.
    if not (
        type(event_id) is type(ts) is type(key_id) is type(operation) is type(principal) is str
        and type(source_ip) is type(outcome) is type(source) is str
        and _STR_OR_NONE.issuperset(map(type, optional))
        and event_id
        and ts
        and key_id
        and operation
        and principal
        and outcome in OUTCOMES
        and source
        and len(
            text := f"{event_id}{ts}{key_id}{operation}{principal}{source_ip}{source}"
            f"{user_agent or ''}{region or ''}{key_alias or ''}{request_id or ''}"
        )
        <= MAX_STR  # so is every field
        and is_clean_text(text)
    ):
        return _to_event_checked(obj)
    # The remaining checks in the order _to_event_checked makes them, so errors are the same.
    lat, lon = get("lat"), get("lon")
    if not (type(lat) is float and type(lon) is float and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        lat, lon = _coordinates(obj)
    when = _ts(ts)
    country = get("country")
    if country is not None and not (type(country) is str and country in _COUNTRIES):
        country = _country(country)
    return Event(
        event_id,
        when,
        key_id,
        operation,
        principal,
        source_ip,
        outcome,
        source,
        country,
        lat,
        lon,
        user_agent,
        region,
        key_alias,
        request_id,
    )


def _to_event_checked(obj: dict[str, Any]) -> Event:
    """:func:`to_event` field by field: slower, and names the first field that is not valid."""
    _check_required(obj)
    values: tuple[Any, ...] = tuple(map(obj.get, REQUIRED_FIELDS))
    event_id, ts, key_id, operation, principal, source_ip, outcome, source = values
    if outcome not in OUTCOMES:
        raise ParseError(f"field 'outcome' must be one of {sorted(OUTCOMES)}, got {outcome[:32]!r}")
    lat, lon = _coordinates(obj)
    return Event(
        event_id=event_id,
        ts=_ts(ts),
        key_id=key_id,
        operation=operation,
        principal=principal,
        source_ip=source_ip,
        outcome=outcome,
        source=source,
        country=_country(obj.get("country")),
        lat=lat,
        lon=lon,
        user_agent=_optional(obj, "user_agent"),
        region=_optional(obj, "region"),
        key_alias=_optional(obj, "key_alias"),
        request_id=_optional(obj, "request_id"),
    )


def _optional(obj: dict[str, Any], name: str) -> str | None:
    """Optional string field: absent or null give None."""
    value = obj.get(name)
    if value is None or is_clean(value):
        return value
    return check_str(value, name)


def _check_required(obj: dict[str, Any]) -> None:
    """Raise the precise ParseError for the first required field that is not valid."""
    for name in REQUIRED_FIELDS:
        if name not in obj or obj[name] is None:
            raise ParseError(f"missing field {name!r}")
        value = check_str(obj[name], name)
        if not value and name not in _MAY_BE_EMPTY:
            raise ParseError(f"field {name!r} is empty")


def _ts(text: str) -> float:
    """Parse the ``ts`` field (fast path for what ``fromisoformat`` reads, else ``parse_ts``)."""
    try:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            ts = parse_ts(text)  # nanosecond fractions and other forms it normalises
        else:
            ts = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    except (ValueError, OverflowError, OSError) as exc:
        raise ParseError(f"field 'ts' is not an RFC 3339 timestamp: {text[:64]!r}") from exc
    if not MIN_TS <= ts < MAX_TS:
        raise ParseError(f"field 'ts' is outside 1970..2100: {text[:64]!r}")
    return ts


def _country(value: object) -> str | None:
    """ISO 3166 alpha-2 in upper case, or "" for explicitly unknown."""
    if value is None:
        return None
    if value == "":
        return ""
    if type(value) is not str or len(value) != 2 or not _UPPER.issuperset(value):
        raise ParseError(f"field 'country' must be two upper-case letters, got {str(value)[:16]!r}")
    return value


def _coordinates(obj: dict[str, Any]) -> tuple[float | None, float | None]:
    """``lat``/``lon``: both absent, or both numbers within range."""
    lat, lon = obj.get("lat"), obj.get("lon")
    if lat is None and lon is None:
        return None, None
    if lat is None or lon is None:
        raise ParseError(f"field {'lat' if lat is None else 'lon'!r} is missing while the other is set")
    return _number(lat, "lat", 90.0), _number(lon, "lon", 180.0)


def _number(value: object, name: str, bound: float) -> float:
    """A finite int/float (not bool) with ``abs(value) <= bound``."""
    if type(value) not in (int, float):
        raise ParseError(f"field {name!r} must be a number, got {type(value).__name__}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except OverflowError as exc:
        raise ParseError(f"field {name!r} is out of range") from exc
    if not -bound <= number <= bound:
        raise ParseError(f"field {name!r} must be within ±{bound:g}, got {number!r}")
    return number
