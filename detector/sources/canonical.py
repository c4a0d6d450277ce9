"""Canonical event schema v1: strict, fast validation (the replay and streaming hot path).

A clean raw record (ASCII, no escape, no DEL, short) is decoded and type-checked against the
schema by msgspec in one C pass; everything else takes plain dict access after orjson, and
whatever neither fast path accepts is decided field by field, naming the bad field. Fields
outside the schema are ignored so that additive schema changes do not break older readers.
No operation table is registered: a canonical record names its own ``source`` and is
classified by that source's table.
"""

from __future__ import annotations

import operator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from orjson import JSONDecodeError
from orjson import loads as _loads

from detector.domain.errors import ParseError
from detector.domain.events import OUTCOMES, REQUIRED_FIELDS, Event, parse_ts
from detector.sources._common import MAX_STR, MAX_TS, MIN_TS, ParseResult, check_str, is_clean, is_clean_text

_MAY_BE_EMPTY = frozenset({"source_ip"})
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_OPTIONAL_STR = ("user_agent", "region", "key_alias", "request_id", "resource")
# The fast path reads the 8 required fields in one call (KeyError when one is absent).
_REQUIRED = operator.itemgetter(*REQUIRED_FIELDS)
_BACKSLASH, _DEL = ord("\\"), 0x7F  # ints: ``int in bytes`` is a memchr
# Every value ``_country`` accepts as it is: "" and two upper-case letters (each to its one copy).
_COUNTRIES = frozenset({""} | {a + b for a in _UPPER for b in _UPPER})
_COUNTRY_OF = {c: c for c in _COUNTRIES}
_OUTCOME_OF = {o: o for o in OUTCOMES}
_fromisoformat = datetime.fromisoformat
_SHARED: dict[str, str] = {}  # one copy of each repeated value (key, caller, address...), bounded
_SHARED_MAX = 1 << 16

_Text = Annotated[str, msgspec.Meta(min_length=1)]


class _Record(msgspec.Struct, gc=False):
    """Schema v1 as msgspec checks it while decoding a clean record.

    It accepts a subset of what :func:`_to_event_checked` accepts (strings need no character
    check in a clean record, whose length bounds every field's); a record it refuses is left
    to the checked path. Pairing of ``lat``/``lon``, the timestamp and the country are
    checked after decoding, as on the dict path.
    """

    event_id: _Text
    ts: _Text
    key_id: _Text
    operation: _Text
    principal: _Text
    source_ip: str
    outcome: Literal["success", "denied", "error"]
    source: _Text
    country: str | None = None
    lat: Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)] | None = None
    lon: Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)] | None = None
    user_agent: str | None = None
    region: str | None = None
    key_alias: str | None = None
    request_id: str | None = None
    resource: str | None = None


_decode_clean = msgspec.json.Decoder(_Record).decode


def parse(obj: dict[str, Any]) -> ParseResult:
    """Validate one canonical record and return it as a single event."""
    return ParseResult([to_event(obj)])


def to_event(obj: dict[str, Any]) -> Event:
    """Build an Event from a canonical record, raising ParseError naming the bad field.

    The common, valid record passes a few combined checks; anything they do not accept
    (including every invalid record) goes through :func:`_to_event_checked`, which checks
    field by field and names the first bad one, so both paths accept exactly the same records.
    """
    event = _fast_event(obj)
    return event if event is not None else _to_event_checked(obj)


# What the fast path may raise on input it cannot decide; the checked path then decides it.
FAST_PATH_ERRORS = (ParseError, TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError,
                    RecursionError)  # fmt: skip


def event_from_json(raw: bytes) -> Event | None:
    """The event of one raw canonical JSON record on the common path, else None.

    None means "not decided here": another format, or a record the combined checks do not
    accept. :func:`detector.sources.decode_and_parse` then gives the same event or the error.
    A record that is ASCII without a backslash or DEL holds no character :func:`check_str`
    rejects, since JSON (and orjson) allows no raw control character in a string and every
    other one would need an escape; its fields need no character check then.

    >>> event_from_json(b'{"event_id":"e1","ts":"2024-05-01T12:00:00Z","key_id":"k1","operation":"Decrypt",'
    ...     b'"principal":"alice","source_ip":"","outcome":"success","source":"aws-kms"}').key_id
    'k1'
    >>> event_from_json(b'{"Records": []}') is None
    True
    """
    if len(raw) <= MAX_STR and raw.isascii() and _BACKSLASH not in raw and _DEL not in raw:
        try:
            record = _decode_clean(raw)
        except msgspec.MsgspecError:
            return None
        return _clean_event(record)
    try:
        obj = _loads(raw)
    except JSONDecodeError:
        return None
    if type(obj) is not dict:
        return None
    return _fast_event(obj)


def _clean_event(r: _Record) -> Event | None:
    """The event of a record msgspec decoded and checked; None for what the checked path must decide."""
    lat, lon = r.lat, r.lon
    if (lat is None) is not (lon is None):
        return None
    when = _epoch(r.ts)
    country = r.country
    if country is not None:
        country = _COUNTRY_OF.get(country)
        if country is None:
            return None
    return _event(
        r.event_id, when, r.key_id, r.operation, r.principal, r.source_ip, r.outcome, r.source,
        country, lat, lon, r.user_agent, r.region, r.key_alias, r.request_id, r.resource,
    )  # fmt: skip


def _fast_event(obj: dict[str, Any]) -> Event | None:
    """:func:`to_event` for a record that passes the combined checks, else None.

    Raises ParseError (as the field-by-field path would) only for the checks made after them.
    """
    try:
        event_id, ts, key_id, operation, principal, source_ip, outcome, source = _REQUIRED(obj)
    except KeyError:
        return None
    get = obj.get
    user_agent, region, key_alias, request_id, resource = (
        get("user_agent"),
        get("region"),
        get("key_alias"),
        get("request_id"),
        get("resource"),
    )
    # Exact types, as check_str wants them; the three OUTCOMES need no character check.
    if not (
        type(event_id) is type(ts) is type(key_id) is type(operation) is type(principal) is str
        and type(source_ip) is type(outcome) is type(source) is str
        and (user_agent is None or type(user_agent) is str)
        and (region is None or type(region) is str)
        and (key_alias is None or type(key_alias) is str)
        and (request_id is None or type(request_id) is str)
        and (resource is None or type(resource) is str)
        and event_id
        and ts
        and key_id
        and operation
        and principal
        and outcome in OUTCOMES
        and source
        and len(
            text := f"{event_id}{ts}{key_id}{operation}{principal}{source_ip}{source}"
            f"{user_agent or ''}{region or ''}{key_alias or ''}{request_id or ''}{resource or ''}"
        )
        <= MAX_STR  # so is every field
        and is_clean_text(text)
    ):
        return None
    # The remaining checks in the order _to_event_checked makes them, so errors are the same.
    lat, lon = get("lat"), get("lon")
    if not (type(lat) is float and type(lon) is float and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        lat, lon = _coordinates(obj)
    when = _epoch(ts)
    country = get("country")
    if country is not None:
        known = _COUNTRY_OF.get(country) if type(country) is str else None
        country = known if known is not None else _country(country)
    return _event(
        event_id, when, key_id, operation, principal, source_ip, outcome, source, country, lat, lon,
        user_agent, region, key_alias, request_id, resource,
    )  # fmt: skip


def _epoch(ts: str) -> float:
    """:func:`_ts` with the common aware timestamp read inline (raises its ParseError)."""
    try:
        parsed = _fromisoformat(ts)
        when = parsed.timestamp() if parsed.tzinfo is not None else -1.0
    except (ValueError, OverflowError, OSError):
        when = -1.0
    return when if MIN_TS <= when < MAX_TS else _ts(ts)


def _event(
    event_id: str, when: float, key_id: str, operation: str, principal: str, source_ip: str, outcome: str,
    source: str, country: str | None, lat: float | None, lon: float | None, user_agent: str | None,
    region: str | None, key_alias: str | None, request_id: str | None, resource: str | None,
) -> Event:  # fmt: skip
    """The Event of checked fields, sharing one copy of each value that repeats across records.

    Events of one key, caller or address hold one string, which saves memory and keeps the
    strings the detector compares and hashes hot in the CPU cache. Ids are unique and stay
    as parsed; so does ``resource``, which can name a different object in every record (an
    S3 object, a parameter) and would only churn the bounded table of shared values.
    """
    if len(_SHARED) >= _SHARED_MAX:
        _SHARED.clear()  # bounded, unlike sys.intern on some Pythons; events keep their strings
    share = _SHARED.setdefault
    return Event(
        event_id,
        when,
        share(key_id, key_id),
        share(operation, operation),
        share(principal, principal),
        share(source_ip, source_ip),
        _OUTCOME_OF[outcome],
        share(source, source),
        country,
        lat,
        lon,
        user_agent if user_agent is None else share(user_agent, user_agent),
        region if region is None else share(region, region),
        key_alias if key_alias is None else share(key_alias, key_alias),
        request_id,
        resource,
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
        resource=_optional(obj, "resource"),
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
