"""Columns of generated events, string tables, the calendar and the count models of the fleet generator."""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np
from numpy.random import Generator
from numpy.typing import NDArray

from detector.domain.operations import AWS_KMS_OPERATIONS

from ._places import Place

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
CodeArray = NDArray[np.int32]  # columns of a Batch: half the memory of int64 for millions of events
DAY = 86400.0
MINUTE = 60.0
OPERATIONS: tuple[str, ...] = tuple(AWS_KMS_OPERATIONS)
OP = {name: index for index, name in enumerate(OPERATIONS)}
OUTCOMES = ("success", "denied", "error")
SUCCESS, DENIED, ERROR = 0, 1, 2
NO_RESOURCE = -1
Value = TypeVar("Value", bound=Hashable)


def digest(*parts: object) -> int:
    """A stable 64-bit number from ``parts`` (names and addresses that must not depend on call order)."""
    text = "\x1f".join(str(part) for part in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def hex_id(length: int, *parts: object) -> str:
    """``length`` hex digits derived from ``parts``."""
    text = "\x1f".join(str(part) for part in parts).encode()
    return hashlib.blake2b(text, digest_size=(length + 1) // 2).hexdigest()[:length]


@dataclass(slots=True)
class Vocab(Generic[Value]):
    """Interned values: each distinct value gets a small integer code, in order of first use."""

    items: list[Value] = field(default_factory=list)
    index: dict[Value, int] = field(default_factory=dict)

    def code(self, item: Value) -> int:
        """The code of ``item``, adding it when new."""
        found = self.index.get(item)
        if found is None:
            found = self.index[item] = len(self.items)
            self.items.append(item)
        return found


@dataclass(frozen=True, slots=True)
class Address:
    """A source address as logged, with the location the source reports for it."""

    ip: str
    place: Place


@dataclass(slots=True)
class Tables:
    """String tables shared by every event of one simulation."""

    principals: Vocab[str] = field(default_factory=Vocab)
    addresses: Vocab[Address] = field(default_factory=Vocab)
    agents: Vocab[str] = field(default_factory=Vocab)
    resources: Vocab[str] = field(default_factory=Vocab)
    cache: dict[tuple[object, ...], tuple[int, int]] = field(default_factory=dict)

    def principal(self, arn: str) -> int:
        """Code of a principal ARN or service name."""
        return self.principals.code(arn)

    def address(self, ip: str, place: Place) -> int:
        """Code of an address at a place."""
        return self.addresses.code(Address(ip, place))

    def agent(self, user_agent: str) -> int:
        """Code of a user agent."""
        return self.agents.code(user_agent)

    def resource(self, arn: str) -> int:
        """Code of an encryption-context resource ARN."""
        return self.resources.code(arn)


_COLUMNS = (
    "key",
    "operation",
    "principal",
    "address",
    "outcome",
    "agent",
    "resource",
    "named",
    "origin",
    "tag",
)


@dataclass(slots=True)
class Batch:
    """Events as columns: ``ts`` plus integer codes (see :class:`Tables`; -1 = none where allowed).

    ``named`` marks calls that named the key by its alias; ``origin`` is the background stream
    that made an event (-1 for scheduled or injected events); ``tag`` the scenario instance of an
    injected event (-1 for background).
    """

    ts: FloatArray
    key: CodeArray
    operation: CodeArray
    principal: CodeArray
    address: CodeArray
    outcome: CodeArray
    agent: CodeArray
    resource: CodeArray
    named: CodeArray
    origin: CodeArray
    tag: CodeArray

    def __len__(self) -> int:
        return int(self.ts.size)

    def take(self, selection: IntArray | NDArray[np.bool_]) -> Batch:
        """The events at ``selection`` (indices or a mask)."""
        return Batch(self.ts[selection], *(getattr(self, name)[selection] for name in _COLUMNS))


def make_batch(
    ts: FloatArray,
    *,
    key: int | IntArray,
    operation: int | IntArray,
    principal: int | IntArray,
    address: int | IntArray,
    agent: int | IntArray,
    outcome: int | IntArray = SUCCESS,
    resource: int | IntArray = NO_RESOURCE,
    named: int | IntArray = 0,
    origin: int | IntArray = -1,
    tag: int | IntArray = -1,
) -> Batch:
    """A batch from ``ts`` and per-event codes or one code for all."""
    size = ts.size

    def column(value: int | IntArray | CodeArray) -> CodeArray:
        return np.broadcast_to(np.asarray(value, dtype=np.int32), (size,)).copy()

    columns = (key, operation, principal, address, outcome, agent, resource, named, origin, tag)
    return Batch(np.asarray(ts, dtype=np.float64), *(column(value) for value in columns))


def concat(batches: Sequence[Batch]) -> Batch:
    """All events of ``batches`` in one batch (not sorted)."""
    if not batches:
        return make_batch(np.empty(0), key=0, operation=0, principal=0, address=0, agent=0)
    ts = np.concatenate([batch.ts for batch in batches])
    return Batch(ts, *(np.concatenate([getattr(batch, name) for batch in batches]) for name in _COLUMNS))


@dataclass(slots=True)
class Calendar:
    """The minute grid of the whole span and the working week of the organisation.

    Rest days are Saturday, Sunday and ``holidays`` (day numbers since the epoch, local date).
    """

    start: float
    end: float
    test_start: float
    holidays: frozenset[int]
    _profiles: dict[tuple[str, float], FloatArray] = field(default_factory=dict)

    @property
    def minutes(self) -> int:
        """Number of whole or partial minutes in the span."""
        return int(np.ceil((self.end - self.start) / MINUTE))

    def minute_starts(self) -> FloatArray:
        """Start of every minute of the span."""
        return self.start + MINUTE * np.arange(self.minutes, dtype=np.float64)

    def minute_of(self, ts: float) -> int:
        """Index of the minute holding ``ts`` (clipped to the span)."""
        return int(np.clip((ts - self.start) // MINUTE, 0, self.minutes))

    def is_rest_day(self, ts: FloatArray, utc_offset: float) -> NDArray[np.bool_]:
        """Whether each time falls on a local rest day."""
        day = np.floor((ts + utc_offset * 3600.0) / DAY).astype(np.int64)
        weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        holiday = np.isin(day, np.fromiter(self.holidays, dtype=np.int64, count=len(self.holidays)))
        return (weekday >= 5) | holiday

    def profile(self, kind: str, utc_offset: float) -> FloatArray:
        """Relative activity (peak 1) for every minute, for a schedule ``kind`` in one time zone."""
        cached = self._profiles.get((kind, utc_offset))
        if cached is None:
            cached = self._profiles[(kind, utc_offset)] = self._build_profile(kind, utc_offset)
        return cached

    def _build_profile(self, kind: str, utc_offset: float) -> FloatArray:
        starts = self.minute_starts()
        hour = ((starts + utc_offset * 3600.0) % DAY) / 3600.0
        rest = self.is_rest_day(starts, utc_offset)
        return weekly_profile(kind, hour, rest)


def _ramp(hour: FloatArray, up_from: float, up_to: float, down_from: float, down_to: float) -> FloatArray:
    """1 between ``up_to`` and ``down_from``, linear ramps either side, 0 outside."""
    rise = np.clip((hour - up_from) / (up_to - up_from), 0.0, 1.0)
    fall = np.clip((down_to - hour) / (down_to - down_from), 0.0, 1.0)
    return np.minimum(rise, fall)


def weekly_profile(kind: str, hour: FloatArray, rest: NDArray[np.bool_]) -> FloatArray:
    """Hour-of-week activity of each schedule kind (local hour, local rest-day flag)."""
    if kind == "always":
        daily = 0.3 + 0.7 * 0.5 * (1.0 - np.cos(2.0 * np.pi * (hour - 4.0) / 24.0))
        return np.where(rest, 0.75 * daily, daily)
    if kind == "business":
        working = 0.02 + 0.98 * _ramp(hour, 7.5, 9.5, 17.0, 19.5) * np.where(
            (hour >= 12) & (hour < 13), 0.8, 1
        )
        return np.where(rest, 0.03, working)
    if kind == "nightly":
        return 0.02 + 0.98 * _ramp(hour, 0.8, 1.2, 3.6, 4.2)
    if kind in ("person", "ci"):
        working = _ramp(hour, 8.5, 9.5, 17.5, 18.5) * np.where((hour >= 12) & (hour < 13), 0.6, 1.0)
        return np.where(rest, 0.02 * working, working)
    if kind == "flat":
        return np.ones_like(hour)
    raise ValueError(f"unknown schedule kind {kind!r}")


def hourly_noise(rng: Generator, minutes: int, shape: float) -> FloatArray:
    """A multiplicative gamma factor (mean 1) that changes every hour, per minute."""
    hours = (minutes + 59) // 60
    factor = rng.gamma(shape, 1.0 / shape, size=hours)
    return np.repeat(factor, 60)[:minutes]


def overdispersed_counts(rng: Generator, mean: FloatArray, dispersion: float) -> IntArray:
    """Negative-binomial counts with the given means (variance ``mean + mean**2 / dispersion``)."""
    probability = dispersion / (dispersion + np.maximum(mean, 0.0))
    return rng.negative_binomial(dispersion, probability).astype(np.int64)


def times_from_counts(
    rng: Generator, starts: FloatArray, counts: IntArray, width: float = MINUTE
) -> FloatArray:
    """Uniform times inside each slot ``[start, start + width)``, ``counts[i]`` of them in slot i."""
    base = np.repeat(starts, counts)
    return base + rng.random(base.size) * width


def times_at_rate(
    rng: Generator, start: float, end: float, rate_per_minute: float, dispersion: float = 4.0
) -> FloatArray:
    """Times in ``[start, end)`` with overdispersed per-minute counts around ``rate_per_minute``."""
    minutes = max(1, int(np.ceil((end - start) / MINUTE)))
    starts = start + MINUTE * np.arange(minutes, dtype=np.float64)
    counts = overdispersed_counts(rng, np.full(minutes, rate_per_minute), dispersion)
    ts = times_from_counts(rng, starts, counts)
    return np.sort(ts[ts < end])


def spread_times(rng: Generator, start: float, end: float, count: int) -> FloatArray:
    """``count`` sorted uniform times in ``[start, end)``."""
    return np.sort(start + rng.random(count) * max(end - start, 1.0))


def draw_codes(rng: Generator, codes: Sequence[int], weights: Sequence[float], size: int) -> IntArray:
    """``size`` codes drawn with the given weights."""
    probabilities = np.asarray(weights, dtype=np.float64)
    picks = rng.choice(len(codes), size=size, p=probabilities / probabilities.sum())
    return np.asarray(codes, dtype=np.int64)[picks]


def draw_outcomes(rng: Generator, size: int, denied: float, error: float) -> IntArray:
    """Background outcomes: mostly success, ``denied`` and ``error`` shares."""
    draw = rng.random(size)
    return np.where(draw < denied, DENIED, np.where(draw < denied + error, ERROR, SUCCESS)).astype(np.int64)
