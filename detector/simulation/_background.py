"""Background traffic of the fleet world: every stream sampled over the whole span, vectorised."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.random import Generator

from ._identities import Fixed, Identity, Person, Workload, person_addresses, workload_agents, workload_codes
from ._traffic import (
    NO_RESOURCE,
    Batch,
    FloatArray,
    IntArray,
    concat,
    draw_codes,
    draw_outcomes,
    hourly_noise,
    make_batch,
    overdispersed_counts,
    times_from_counts,
)
from ._world import Key, Stream, World

HOURLY_NOISE_SHAPE = 12.0  # gamma shape of the hour-to-hour factor: about +-29 %


@dataclass(frozen=True, slots=True)
class Callers:
    """Principal, address and agent codes of a set of calls."""

    principal: IntArray
    address: IntArray
    agent: IntArray


def resolve(
    world: World,
    identity: Identity,
    key: Key,
    ts: FloatArray,
    rng: Generator,
    *,
    via: str | None,
    console: bool,
) -> Callers:
    """Who made each call at ``ts``, from where and with which agent."""
    tables = world.tables
    if isinstance(identity, Workload):
        replicas = rng.integers(0, identity.replicas, size=ts.size)
        principal, address = workload_codes(identity, ts, replicas, tables)
        agent = workload_agents(identity, ts, tables)
    elif isinstance(identity, Person):
        principal = np.full(ts.size, tables.principal(identity.principal), dtype=np.int64)
        address = person_addresses(identity, ts, rng, tables)
        chosen = identity.console_agent if console else identity.cli_agent
        agent = np.full(ts.size, tables.agent(chosen), dtype=np.int64)
    else:
        principal, address, agent = fixed_codes(world, identity, ts.size)
    if via is not None:
        address = np.full(ts.size, tables.address(via, key.place_region.place), dtype=np.int64)
        agent = np.full(ts.size, tables.agent(via), dtype=np.int64)
    return Callers(principal, address, agent)


def fixed_codes(world: World, identity: Fixed, size: int) -> tuple[IntArray, IntArray, IntArray]:
    """Constant codes of a fixed identity."""
    tables = world.tables
    return (
        np.full(size, tables.principal(identity.principal), dtype=np.int64),
        np.full(size, tables.address(identity.ip, identity.place), dtype=np.int64),
        np.full(size, tables.agent(identity.agent), dtype=np.int64),
    )


def stream_means(stream: Stream, world: World, rng: Generator, first: int, last: int) -> FloatArray:
    """Expected calls per minute of a stream over minutes ``[first, last)``, with hourly noise."""
    profile = world.calendar.profile(stream.schedule, stream.utc_offset)[first:last]
    return stream.peak_rate * profile * hourly_noise(rng, profile.size, HOURLY_NOISE_SHAPE)


def typical_rate(stream: Stream, world: World, ts: float) -> float:
    """Expected calls per minute of a stream at a time (no noise)."""
    calendar = world.calendar
    minute = min(calendar.minute_of(ts), calendar.minutes - 1)
    return float(stream.peak_rate * calendar.profile(stream.schedule, stream.utc_offset)[minute])


def sample_stream(
    stream: Stream,
    world: World,
    rng: Generator,
    means: FloatArray,
    first: int,
    *,
    mix: tuple[tuple[int, ...], tuple[float, ...]] | None = None,
    identity: Identity | None = None,
    tag: int = -1,
) -> Batch:
    """Calls of a stream from per-minute means starting at minute ``first``.

    Background calls carry the stream as ``origin``; injected ones (``tag`` set) carry none.
    """
    calendar = world.calendar
    starts = calendar.minute_starts()[first : first + means.size]
    counts = overdispersed_counts(rng, means[: starts.size], stream.dispersion)
    ts = times_from_counts(rng, starts, counts)
    ts = ts[(ts >= stream.active_from) & (ts < stream.active_to) & (ts < calendar.end)]
    operations, weights = mix or (stream.operations, stream.weights)
    key = world.keys[stream.key]
    callers = resolve(
        world, identity or stream.identity, key, ts, rng, via=stream.via, console=stream.console
    )
    resources = np.asarray(stream.resources or (NO_RESOURCE,), dtype=np.int64)
    return make_batch(
        ts,
        key=stream.key,
        operation=draw_codes(rng, operations, weights, ts.size),
        principal=callers.principal,
        address=callers.address,
        agent=callers.agent,
        outcome=draw_outcomes(rng, ts.size, stream.denied, stream.error),
        resource=resources[rng.integers(0, resources.size, size=ts.size)],
        named=int(stream.named),
        origin=stream.origin if tag < 0 else -1,
        tag=tag,
    )


def background_streams(world: World) -> Batch:
    """Every stream over the whole span, each from its own random generator."""
    minutes = world.calendar.minutes
    batches = []
    for stream in world.streams:
        rng = np.random.default_rng([world.seed, 1, stream.origin])
        batches.append(sample_stream(stream, world, rng, stream_means(stream, world, rng, 0, minutes), 0))
    return concat(batches)
