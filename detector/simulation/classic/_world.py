"""The simulated organisation: keys, services, people, their traffic streams, and their addresses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numpy.random import Generator

from ._draws import FloatArray, IntArray, pick
from ._log import Address, EventLog
from ._places import OFFICES, REGIONS

MINUTES_PER_DAY = 1440


@dataclass(slots=True)
class Key:
    """A KMS key: of the organisation when it has an ``env``, an outside key otherwise."""

    key_id: str
    alias: str | None
    region: str
    service: str = ""
    env: str = ""
    pattern: str = ""
    tz: float = 0.0  # UTC offset of its region, hours
    classification: str = ""
    rate: FloatArray = field(default_factory=lambda: np.zeros(0))  # expected calls per minute
    mean: float = 0.0  # mean rate over the history span


@dataclass(slots=True)
class Stream:
    """One caller's traffic on one key."""

    key: int
    kind: str  # "app", "human" or "aws"
    owner: str  # service or person
    pools: IntArray  # principal indices per day: shape (days, pool size)
    addrs: list[int]
    addr_w: FloatArray
    uas: list[int]
    ops: dict[str, float]
    rate: FloatArray
    p_denied: float
    p_error: float
    seen: list[int] = field(default_factory=list)  # principals used in history, most used first


@dataclass(slots=True)
class Service:
    """An application of the organisation, with its roles, agents, operation mix and keys."""

    name: str
    pattern: str
    region: str
    regions: dict[str, float]
    jobs: tuple[tuple[float, float, float], ...]  # batch jobs: start hour, hours, level
    roles: list[tuple[str, str, float]]  # suffix, session style, share
    uas: list[int]
    ops: dict[str, float]
    keys: list[int] = field(default_factory=list)
    addrs: dict[str, list[int]] = field(default_factory=dict)  # per account
    addr_w: dict[str, FloatArray] = field(default_factory=dict)  # per account, by region share
    pools: dict[tuple[str, str], IntArray] = field(default_factory=dict)


@dataclass(slots=True)
class Human:
    """A person with an IAM user, an office, a home connection and two agents."""

    name: str
    principal: int
    office: str
    addrs: list[int]  # office egress first, home connection last
    uas: list[int]
    admin: bool


@dataclass(slots=True, frozen=True)
class Clock:
    """The simulated span: first minute, length and start of the test span in minutes, minute starts."""

    start: float
    minutes: int
    test_min: int
    t: FloatArray

    @property
    def days(self) -> int:
        """Calendar days touched, counted from the start."""
        return -(-self.minutes // MINUTES_PER_DAY)

    def at(self, minute: float) -> float:
        """Epoch seconds of a minute offset."""
        return self.start + 60.0 * minute


class Injected(NamedTuple):
    """What a scenario did: the keys (log indices) it touched, the principal, a description."""

    keys: list[int]
    principal: str | None
    description: str


@dataclass(slots=True, frozen=True)
class Instance:
    """One labelled scenario instance."""

    scenario: str
    kind: str  # "attack" or "benign"
    injected: Injected


@dataclass(slots=True)
class World:
    """Everything the generator knows and draws from while it writes the log."""

    rng: Generator
    clock: Clock
    log: EventLog
    accounts: dict[str, str]  # environment -> AWS account
    services: list[Service] = field(default_factory=list)
    humans: list[Human] = field(default_factory=list)
    streams: list[Stream] = field(default_factory=list)
    office_addrs: dict[str, list[int]] = field(default_factory=dict)
    busy: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # key -> scenario minute spans
    used_keys: set[int] = field(default_factory=set)
    used_people: set[str] = field(default_factory=set)
    history_uas: set[int] = field(default_factory=set)
    strength: float = 1.0

    def principal_name(self, principal: int) -> str:
        """The ARN of an interned principal."""
        return self.log.names("principal")[principal]


def accounts(rng: Generator) -> dict[str, str]:
    """A production account and one shared by staging and development."""
    prod, nonprod = (str(a) for a in rng.integers(10**11, 10**12, size=2))
    return {"production": prod, "staging": nonprod, "development": nonprod}


def new_addrs(
    world: World, blocks: Sequence[str], geo: tuple[str, float | None, float | None], count: int
) -> list[int]:
    """Allocate ``count`` hosts in a /24 that no one has used yet."""
    while True:
        prefix = f"{pick(world.rng, blocks)}.{int(world.rng.integers(0, 256))}"
        if prefix not in world.log.prefixes:
            world.log.prefixes.add(prefix)
            break
    hosts = np.sort(world.rng.choice(np.arange(4, 251), size=count, replace=False))
    return [world.log.add_addr(Address(f"{prefix}.{h}", *geo)) for h in hosts]


def aws_addrs(world: World, region: str, count: int) -> list[int]:
    """New AWS public addresses in ``region``."""
    place = REGIONS[region]
    return new_addrs(world, place.blocks, (place.country, place.lat, place.lon), count)


def isp_addrs(world: World, office: str, count: int) -> list[int]:
    """New ISP addresses near ``office``."""
    place = OFFICES[office]
    return new_addrs(world, place.blocks, (place.country, place.lat, place.lon), count)
