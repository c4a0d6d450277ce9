"""The frame every family injector works in: targets, time windows, labelled batches."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
from numpy.random import Generator
from numpy.typing import NDArray

from ._background import sample_stream, stream_means
from ._identities import Person, Workload, workload_codes
from ._places import SDK_AGENTS, Network
from ._traffic import DAY, MINUTE, OP, SUCCESS, Batch, FloatArray, IntArray, concat, draw_codes, make_batch
from ._world import Stream, World
from .families import Family

BoolArray = NDArray[np.bool_]
Item = TypeVar("Item")
BUSY_RATE = 1.0  # calls per minute at peak: rate families pick streams at least this busy
ATTACKER_AGENT = SDK_AGENTS["python"][0]  # boto3 scripts: an agent the organisation's own services use


@dataclass(frozen=True, slots=True)
class Suppression:
    """Background calls removed by an instance (``-1`` matches any key or stream)."""

    start: float
    end: float
    key: int = -1
    origin: int = -1


@dataclass(slots=True)
class Injection:
    """What one family instance adds to (and removes from) the test span, and how it is labelled."""

    batch: Batch
    keys: list[int]
    start: float
    end: float
    detail: str
    suppress: list[Suppression] = field(default_factory=list)


@dataclass(slots=True)
class Usage:
    """Keys and identities already given an instance, so instances land on different targets."""

    keys: Counter[int] = field(default_factory=Counter)
    identities: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class Context:
    """One instance being injected: its family, scaled parameters, random generator and time hint."""

    world: World
    family: Family
    params: dict[str, float]
    rng: Generator
    tag: int
    hint: float
    usage: Usage

    @property
    def test_start(self) -> float:
        """Start of the test span."""
        return self.world.calendar.test_start

    @property
    def test_end(self) -> float:
        """End of the test span."""
        return self.world.calendar.end

    def count(self, name: str) -> int:
        """A count parameter as an integer (at least 1)."""
        return max(1, round(self.params[name]))

    def window(
        self,
        minutes: float,
        *,
        utc_offset: float = 0.0,
        hours: tuple[float, float] | None = None,
        rest: bool | None = None,
        lead_minutes: float = 1.0,
    ) -> tuple[float, float]:
        """A time range of ``minutes`` inside the test span, nearest the hint, meeting the constraints.

        ``hours`` bounds the local start hour and ``rest`` asks for a rest day (or a working day)
        in ``utc_offset``; constraints that cannot be met are dropped, the rest day first.
        """
        earliest = self.test_start + lead_minutes * MINUTE
        length = min(minutes * MINUTE, self.test_end - earliest - 2 * MINUTE)
        starts = np.arange(earliest, max(self.test_end - length - MINUTE, earliest + 1.0), 300.0)
        in_hours = _in_hours(starts, utc_offset, hours)
        on_rest = self._on_rest(starts, length, utc_offset, rest)
        for allowed in (in_hours & on_rest, on_rest, in_hours):
            if allowed.any():
                starts = starts[allowed]
                break
        start = float(starts[np.argmin(np.abs(starts - self.hint))])
        return start, start + length

    def _on_rest(self, starts: FloatArray, length: float, utc_offset: float, rest: bool | None) -> BoolArray:
        """Starts whose range lies on a rest day (``rest``), or that start on a working day (not ``rest``)."""
        if rest is None:
            return np.ones(starts.size, dtype=bool)
        starting = self.world.calendar.is_rest_day(starts, utc_offset)
        if rest:
            return starting & self.world.calendar.is_rest_day(starts + length, utc_offset)
        return ~starting

    def choose(
        self,
        candidates: Sequence[Item],
        keys_of: Callable[[Item], Iterable[int]],
        who_of: Callable[[Item], str],
    ) -> Item:
        """The least used candidate (random among equals), then marked as used."""
        if not candidates:
            raise ValueError(f"family {self.family.name!r}: the simulated fleet has no target for it")
        order = self.rng.permutation(len(candidates))
        usage = self.usage

        def load(position: int) -> int:
            item = candidates[int(order[position])]
            return sum(usage.keys[k] for k in keys_of(item)) + 2 * usage.identities[who_of(item)]

        best = candidates[int(order[min(range(len(candidates)), key=load)])]
        usage.keys.update(keys_of(best))
        usage.identities[who_of(best)] += 1
        return best

    def full_count(self, name: str) -> int:
        """A count parameter at full strength (at least 1)."""
        return max(1, round(self.family.params[name]))

    def take_keys(self, keys: Iterable[int], count: int, *, reserve: int = 0) -> list[int]:
        """Up to ``count`` of ``keys``, least used first (random among equals).

        The first ``max(count, reserve)`` of them are marked as used: reserving the full-strength
        count keeps the targets of later instances the same at every strength.
        """
        pool = sorted(set(keys))
        order = self.rng.permutation(len(pool))
        ranked = sorted(range(len(pool)), key=lambda position: self.usage.keys[pool[int(order[position])]])
        chosen = [pool[int(order[position])] for position in ranked[: max(count, reserve)]]
        self.usage.keys.update(chosen)
        return chosen[:count]

    def take_counted(self, keys: Iterable[int], name: str) -> list[int]:
        """:meth:`take_keys` for the count parameter ``name``, reserving its full-strength count."""
        return self.take_keys(keys, self.count(name), reserve=self.full_count(name))

    def ops(self, mix: Mapping[str, float], size: int) -> IntArray:
        """Operation codes drawn from a mix."""
        return draw_codes(self.rng, [OP[name] for name in mix], list(mix.values()), size)

    def address_in(self, network: Network) -> int:
        """Code of a random address of an outside network."""
        block = network.blocks[int(self.rng.integers(0, len(network.blocks)))]
        ip = f"{block}.{int(self.rng.integers(0, 256))}.{int(self.rng.integers(1, 255))}"
        return self.world.tables.address(ip, network.place)

    def stolen(self, workload: Workload, ts: float) -> tuple[int, int]:
        """Principal and usual address codes of the session one replica held at ``ts``."""
        principal, address = workload_codes(
            workload, np.array([ts]), np.zeros(1, dtype=np.int64), self.world.tables
        )
        return int(principal[0]), int(address[0])

    def batch(
        self,
        ts: FloatArray,
        *,
        key: int | IntArray,
        operation: int | IntArray,
        principal: int | IntArray,
        address: int | IntArray,
        agent: int | IntArray,
        outcome: int | IntArray = SUCCESS,
        resource: int | IntArray = -1,
    ) -> Batch:
        """Injected calls of this instance."""
        return make_batch(
            ts,
            key=key,
            operation=operation,
            principal=principal,
            address=address,
            agent=agent,
            outcome=outcome,
            resource=resource,
            tag=self.tag,
        )

    def name_of(self, address: int) -> str:
        """The IP of an address code, for descriptions."""
        found = self.world.tables.addresses.items[address]
        return f"{found.ip} ({found.place.country})"


def _in_hours(starts: FloatArray, utc_offset: float, hours: tuple[float, float] | None) -> BoolArray:
    """Starts whose local hour lies in ``hours`` (all when none are asked for)."""
    if hours is None:
        return np.ones(starts.size, dtype=bool)
    local_hour = ((starts + utc_offset * 3600.0) % DAY) / 3600.0
    return (local_hour >= hours[0]) & (local_hour < hours[1])


def injection(
    batches: Sequence[Batch],
    start: float,
    end: float,
    detail: str,
    *,
    suppress: Sequence[Suppression] = (),
    targets: Sequence[int] = (),
) -> Injection:
    """Bundle an instance's calls; its keys are those of its labelled calls, else its ``targets``."""
    batch = concat(batches)
    tagged = batch.key[batch.tag >= 0]
    keys = sorted(set(tagged.tolist())) or sorted(set(targets))
    return Injection(batch, keys, start, end, detail, list(suppress))


def workload_streams(
    world: World,
    *,
    schedules: Sequence[str] = ("always",),
    mixes: Sequence[str] | None = None,
    purposes: Sequence[str] = ("data",),
    busy: bool = False,
) -> list[Stream]:
    """Background streams of service roles calling production keys directly, alive through the test.

    ``busy`` keeps the streams of at least one call a minute at their peak, when there are any.
    """
    found = _workload_streams(world, schedules, mixes, purposes)
    if busy:
        return [s for s in found if s.peak_rate >= BUSY_RATE] or found
    return found


def _workload_streams(
    world: World, schedules: Sequence[str], mixes: Sequence[str] | None, purposes: Sequence[str]
) -> list[Stream]:
    found = []
    for stream in world.streams:
        key = world.keys[stream.key]
        if (
            isinstance(stream.identity, Workload)
            and stream.identity.compute != "actions"
            and stream.via is None
            and stream.denied < 0.5
            and stream.active_to == float("inf")
            and key.purpose in purposes
            and key.environment == "production"
            and stream.schedule in schedules
            and (mixes is None or stream.mix in mixes)
        ):
            found.append(stream)
    return found


def as_workload(stream: Stream) -> Workload:
    """The workload of a workload stream."""
    if not isinstance(stream.identity, Workload):
        raise TypeError(f"stream {stream.origin} is not a workload's")
    return stream.identity


def stream_key(stream: Stream) -> list[int]:
    """The key of a stream, as a list (for :meth:`Context.choose`)."""
    return [stream.key]


def stream_who(stream: Stream) -> str:
    """The identity name of a stream."""
    return stream.identity.name


def person_keys(world: World, person: Person) -> list[int]:
    """Keys a person calls directly in the background."""
    return sorted({s.key for s in world.streams if s.identity is person and s.via is None})


def people_pool(world: World, *, on_call: bool | None = None) -> list[Person]:
    """People who are not key administrators and call at least one key directly."""
    return [
        person
        for person in world.people
        if not person.admin and person_keys(world, person) and (on_call is None or person.on_call == on_call)
    ]


def choose_person(ctx: Context, *, on_call: bool | None = None) -> Person:
    """A person for an instance, least used first."""
    return ctx.choose(
        people_pool(ctx.world, on_call=on_call), lambda p: person_keys(ctx.world, p), lambda p: p.name
    )


def workload_keys(world: World, workload: Workload) -> list[int]:
    """Data keys a workload calls directly."""
    return sorted(
        {
            s.key
            for s in workload_streams(world, schedules=("always", "business", "nightly"))
            if s.identity is workload
        }
    )


def with_most_keys(world: World, streams: Sequence[Stream], wanted: int) -> list[Stream]:
    """Streams whose role calls at least ``wanted`` data keys, or as many as any role does."""
    counts = {id(s): len(workload_keys(world, as_workload(s))) for s in streams}
    enough = min(wanted, max(counts.values(), default=0))
    return [s for s in streams if counts[id(s)] >= enough]


def over(
    ctx: Context,
    stream: Stream,
    start: float,
    end: float,
    factor: float,
    *,
    identity: Workload | None = None,
    dispersion: float | None = None,
    mix: tuple[tuple[int, ...], tuple[float, ...]] | None = None,
) -> Batch:
    """A stream's own kind of calls over ``[start, end)`` at ``factor`` times its usual means."""
    calendar = ctx.world.calendar
    first, last = calendar.minute_of(start), calendar.minute_of(end) + 1
    means = factor * stream_means(stream, ctx.world, ctx.rng, first, last)
    return _sample_range(ctx, stream, start, end, means, identity=identity, dispersion=dispersion, mix=mix)


def steady(
    ctx: Context,
    stream: Stream,
    start: float,
    end: float,
    rate: float,
    *,
    identity: Workload | None = None,
    dispersion: float | None = None,
) -> Batch:
    """A stream's own kind of calls over ``[start, end)`` at a constant mean rate."""
    calendar = ctx.world.calendar
    means = np.full(calendar.minute_of(end) + 1 - calendar.minute_of(start), rate)
    return _sample_range(ctx, stream, start, end, means, identity=identity, dispersion=dispersion)


def _sample_range(
    ctx: Context,
    stream: Stream,
    start: float,
    end: float,
    means: FloatArray,
    *,
    identity: Workload | None,
    dispersion: float | None,
    mix: tuple[tuple[int, ...], tuple[float, ...]] | None = None,
) -> Batch:
    """Labelled calls of a stream from per-minute means starting at the minute of ``start``."""
    if dispersion is not None:
        stream = dataclasses.replace(stream, dispersion=dispersion)
    first = ctx.world.calendar.minute_of(start)
    batch = sample_stream(stream, ctx.world, ctx.rng, means, first, mix=mix, identity=identity, tag=ctx.tag)
    return batch.take((batch.ts >= start) & (batch.ts < end))
