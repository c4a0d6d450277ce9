"""``simulate``: build the organisation, write its clean traffic, inject the scenarios, assemble the logs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.random import PCG64, Generator

from detector.domain.events import Event, parse_ts

from ..result import Simulation
from ._attacks import ATTACKS
from ._benign import BENIGN
from ._draws import uuid4s
from ._labels import catalog, labels
from ._log import OUTCOMES, EventLog
from ._organisation import build_organisation
from ._scenarios import SCENARIOS
from ._traffic import emit_background
from ._world import Clock, Instance, World, accounts

SOURCE = "aws-kms"
# A Saturday: with the defaults the history holds a weekend and the test day is a month-end.
DEFAULT_START = parse_ts("2024-04-27T00:00:00Z")


def simulate(
    *,
    keys: int = 30,
    days: float = 4,
    seed: int = 7,
    test_days: float = 1,
    start: float | None = None,
    strength: float = 1.0,
) -> Simulation:
    """Generate ``days`` of KMS usage for ``keys`` keys; the last ``test_days`` carry labelled scenarios.

    Parameters
    ----------
    keys
        Number of organisation keys (at least 3); outside keys used by attacks come on top.
    days, test_days
        Total span and the trailing test span, in days (``0 < test_days < days``).
    seed
        Seed of the single PCG64 generator; the same arguments give identical output.
    start
        Epoch seconds of the first minute (rounded down to the minute); defaults to
        :data:`DEFAULT_START`, so the output never depends on the clock.
    strength
        How strong the attacks are, ``0 < strength <= 1``: 0.3 gives a third of the extra rate or of the
        events of each attack (see :mod:`detector.simulation.classic`). At 1.0 the output is that of earlier
        versions; at any strength a seed gives the same instances, keys, principals and start times.

    Returns
    -------
    Simulation
        ``history`` (clean traffic) and ``test`` (traffic plus scenarios), each sorted by time; JSON-ready
        ``labels`` and ``catalog``; ``label_event_ids`` maps each scenario id to its injected events.
        Each scenario in :data:`ATTACKS` and :data:`BENIGN` has ``max(2, round(2 * test_days))`` instances.

    Examples
    --------
    >>> sim = simulate(keys=4, days=1, test_days=0.5, seed=1)
    >>> sorted({s["scenario"] for s in sim.labels["scenarios"]}) == sorted(ATTACKS + BENIGN)
    True
    >>> sim.history[-1].ts < sim.test[0].ts and sim.labels["meta"]["test_start"]
    '2024-04-27T12:00:00.000Z'
    """
    if keys < 3:
        raise ValueError("simulate needs at least 3 keys")
    if not 0 < test_days < days:
        raise ValueError("test_days must be positive and shorter than days")
    if not 0 < strength <= 1:
        raise ValueError("strength must be in (0, 1]")
    first = math.floor((DEFAULT_START if start is None else start) / 60.0) * 60.0
    minutes = round(days * 1440)
    test_min = minutes - round(test_days * 1440)
    clock = Clock(first, minutes, test_min, first + 60.0 * np.arange(minutes, dtype=np.float64))
    rng = Generator(PCG64(seed))
    world = World(rng, clock, EventLog(), accounts(rng), strength=float(strength))
    build_organisation(world, keys)
    emit_background(world)
    instances = _inject(world, max(2, round(2 * test_days)))
    args = {"seed": seed, "keys": keys, "days": days, "test_days": test_days, "strength": float(strength)}
    return _assemble(world, instances, args)


def _inject(world: World, per_scenario: int) -> list[Instance]:
    """Every scenario ``per_scenario`` times; an instance's events are tagged with its position."""
    instances: list[Instance] = []
    # Benign surprises first, so attacks prefer other keys and their label windows stay apart.
    for name in (*BENIGN, *ATTACKS):
        scenario = SCENARIOS[name]
        for number in range(per_scenario):
            injected = scenario.inject(world, number, len(instances))
            instances.append(Instance(name, scenario.kind, injected))
    return instances


def _assemble(world: World, instances: list[Instance], args: dict[str, Any]) -> Simulation:
    """Sort the log, give every event its ids, split it at the test start, and label it."""
    columns = [np.concatenate([chunk[j] for chunk in world.log.chunks]) for j in range(8)]
    order = np.argsort(columns[0], kind="stable")
    ts, key, op, principal, addr, ua, outcome, tag = (c[order] for c in columns)
    n = len(ts)
    ids, requests = uuid4s(world.rng, n), uuid4s(world.rng, n)
    if len(set(ids) | set(requests)) != 2 * n:
        raise RuntimeError("event id collision; choose another seed")
    ops, principals, uas = world.log.names("op"), world.log.names("principal"), world.log.names("ua")
    keys, addrs = world.log.keys, world.log.addrs
    events = []
    for i, t, k, o, p, a, u, oc in zip(
        range(n), ts.tolist(), key.tolist(), op.tolist(), principal.tolist(), addr.tolist(), ua.tolist(),
        outcome.tolist(), strict=True,
    ):  # fmt: skip
        kk, ad = keys[k], addrs[a]
        events.append(
            Event(ids[i], t, kk.key_id, ops[o], principals[p], ad.ip, OUTCOMES[oc], SOURCE, ad.country,
                  ad.lat, ad.lon, uas[u], kk.region, kk.alias, requests[i])
        )  # fmt: skip
    split = int(np.searchsorted(ts, world.clock.at(world.clock.test_min), side="left"))
    labelled, members = labels(world, instances, args, ts, tag, ids, (split, n - split))
    return Simulation(events[:split], events[split:], labelled, catalog(world), members)
