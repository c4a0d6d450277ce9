"""The scenario registry and what attacks and benign surprises share: choosing keys, times, people, bursts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ._draws import FloatArray, IntArray, choices, pick
from ._places import HUMANS, NEWCOMERS, ROLE_SUFFIXES
from ._traffic import operations
from ._world import Injected, Key, Stream, World

Inject = Callable[[World, int, int], Injected]  # world, instance number, tag of its events
Actor = tuple[int, list[int], list[int]]  # principal, addresses, user agents


@dataclass(slots=True, frozen=True)
class Scenario:
    """A registered scenario: its name in the labels, ``attack`` or ``benign``, and how to inject it."""

    name: str
    kind: str
    inject: Inject


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, kind: str) -> Callable[[Inject], Inject]:
    """Register the decorated function as scenario ``name``; names are unique.

    Scenarios of a kind are generated in the order they are registered, so reordering them changes
    the output of every seed.
    """

    def register(inject: Inject) -> Inject:
        if name in SCENARIOS:
            raise ValueError(f"scenario {name!r} is registered twice")
        SCENARIOS[name] = Scenario(name, kind, inject)
        return inject

    return register


def names(kind: str) -> tuple[str, ...]:
    """Registered scenarios of ``kind``, in registration order."""
    return tuple(s.name for s in SCENARIOS.values() if s.kind == kind)


def scaled(count: int, strength: float, least: int = 1) -> int:
    """``count`` scaled by ``strength``: ``max(least, round(count * strength))``, at most ``count``."""
    return min(count, max(least, round(count * strength)))


def toward_normal(multiplier: float, strength: float) -> float:
    """A rate ``multiplier`` (times the normal rate) moved toward 1 by ``strength``."""
    return 1.0 + (multiplier - 1.0) * strength


def phase(number: int) -> str:
    """Instances alternate between local day and night."""
    return "day" if number % 2 == 0 else "night"


def choose_key(world: World, wanted: Callable[[Key], bool]) -> int:
    """A key of the organisation matching ``wanted``, preferring keys no scenario has used yet."""
    org = [index for index, key in enumerate(world.log.keys) if key.env]
    candidates = [index for index in org if wanted(world.log.keys[index])] or org
    fresh = [index for index in candidates if index not in world.used_keys]
    if not fresh:
        load = {index: sum(b - a for a, b in world.busy.get(index, [])) for index in candidates}
        fresh = [index for index in candidates if load[index] == min(load.values())]
    chosen = int(pick(world.rng, fresh))
    world.used_keys.add(chosen)
    return chosen


def key_with_stream(world: World, wanted: Callable[[Key], bool]) -> tuple[int, Key, Stream]:
    """A key chosen by :func:`choose_key`, and its busiest application stream."""
    index = choose_key(world, wanted)
    return index, world.log.keys[index], main_stream(world, index)


def main_stream(world: World, key: int) -> Stream:
    """The busiest application stream of a key."""
    apps = (s for s in world.streams if s.key == key and s.kind == "app")
    return max(apps, key=lambda s: float(s.rate.sum()))


def known_principal(stream: Stream) -> int:
    """The principal the stream used most in history."""
    return stream.seen[0] if stream.seen else int(stream.pools[0, 0])


def main_addr(stream: Stream) -> int:
    """The stream's most used address."""
    return stream.addrs[int(np.argmax(stream.addr_w))]


def person_stream(world: World, wanted: Callable[[Stream], bool]) -> Stream:
    """A person's stream matching ``wanted``, preferring people no scenario has used yet."""
    people = [s for s in world.streams if s.kind == "human"]
    candidates = [s for s in people if wanted(s)] or people
    stream: Stream = pick(
        world.rng, [s for s in candidates if s.owner not in world.used_people] or candidates
    )
    world.used_people.add(stream.owner)
    return stream


def new_role(world: World, key: Key) -> int:
    """A role of the key's service that history never shows."""
    service = next(s for s in world.services if s.name == key.service)
    taken = {role[0] for role in service.roles}
    suffix = pick(world.rng, [s for s in ROLE_SUFFIXES if s not in taken] or [f"app{len(taken)}"])
    service.roles.append((suffix, "plain", 0.0))
    return world.log.intern(
        "principal", f"arn:aws:iam::{world.accounts[key.env]}:role/{service.name}-{suffix}"
    )


def newcomer(world: World) -> int:
    """An IAM user history never shows."""
    taken = world.used_people | {h.name for h in world.humans}
    free = [name for name in (*NEWCOMERS, *HUMANS) if name not in taken]
    name = free[0] if free else f"{pick(world.rng, NEWCOMERS)}.{len(taken)}"
    world.used_people.add(name)
    return world.log.intern("principal", f"arn:aws:iam::{world.accounts['production']}:user/{name}")


def human_agents(world: World) -> list[int]:
    """User agents of people."""
    return sorted({u for h in world.humans for u in h.uas})


def agents(world: World, preferred: Sequence[int]) -> list[int]:
    """User agents from ``preferred`` that history already shows, so injected events blend in."""
    seen = [u for u in preferred if u in world.history_uas]
    if seen:
        return seen
    human = set(human_agents(world))
    same_kind = sorted(u for u in world.history_uas if (u in human) == (preferred[0] in human))
    return (same_kind or sorted(world.history_uas))[:1]


def start_minute(world: World, length: int, tz: float, local_phase: str, keys: Sequence[int]) -> int:
    """A start minute in the test span at local ``local_phase`` time, clear of other scenarios on ``keys``."""
    clock = world.clock
    low = clock.test_min + 5
    candidates = np.arange(low, max(low + 1, clock.minutes - length - 10))
    hour = ((clock.start + 60.0 * candidates + tz * 3600.0) % 86400.0) / 3600.0
    mask = (hour >= 9) & (hour < 17) if local_phase == "day" else (hour < 5) | (hour >= 22)
    candidates = candidates[mask] if mask.any() else candidates
    for _ in range(50):
        minute = int(pick(world.rng, candidates.tolist()))
        if all(minute + length <= a or minute >= b for k in keys for a, b in world.busy.get(k, [])):
            break
    for k in keys:
        world.busy.setdefault(k, []).append((minute, minute + length))
    return minute


def burst(world: World, tag: int, key: int, first_minute: int, rate: FloatArray, actor: Actor,
          mix: dict[str, float], outcome: int = 0, *, share: float = 1.0, must: str | None = None,
          ) -> None:  # fmt: skip
    """Poisson traffic at ``rate`` per minute from ``first_minute`` by ``actor``, operations from ``mix``.

    A ``share`` below 1 keeps that part of the events (see :func:`thin`), after the same random draws;
    ``must`` names an operation the kept events still include if the burst had one.
    """
    rng, clock = world.rng, world.clock
    rate = rate[: max(1, clock.minutes - first_minute)]
    counts = rng.poisson(rate)
    if counts.sum() == 0:
        counts[int(np.argmax(rate))] = 1
    minute = first_minute + np.repeat(np.arange(len(rate)), counts)
    n = len(minute)
    # Attacks do not start on a minute boundary: shift the whole burst by a random part of a minute.
    ts = clock.start + (minute + rng.random(n) + rng.random()) * 60.0
    inside = ts < clock.at(clock.minutes)
    ts, n = ts[inside], int(inside.sum())
    principal, addrs, uas = actor
    addr = choices(rng, addrs, np.ones(len(addrs)), n)
    ua = choices(rng, uas, np.ones(len(uas)), n)
    op = operations(world, mix, n)
    if share < 1.0:
        rows = thin(ts, share, op, None if must is None else world.log.intern("op", must))
        ts, op, addr, ua = ts[rows], op[rows], addr[rows], ua[rows]
    world.log.add(ts, key, op, principal, addr, ua, outcome=outcome, tag=tag)


def thin(ts: FloatArray, share: float, op: IntArray, must: int | None) -> IntArray:
    """Rows of an evenly spaced ``share`` of the events (at least one, the first always), in row order.

    If ``must`` (an op index) occurs among the events but not among those kept, its first event is added.
    """
    n = len(ts)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(ts, kind="stable")
    count = scaled(n, share)
    picks = order[np.floor(np.linspace(0, n - 1, count) + 0.5).astype(np.int64)]
    if must is not None and not (op[picks] == must).any():
        hits = np.flatnonzero(op[order] == must)
        if len(hits):
            picks = np.append(picks, order[hits[0]])
    return np.sort(picks)
