"""The two benign surprises: traffic that looks unusual but is the organisation's own business."""

from __future__ import annotations

import numpy as np

from ._draws import pick
from ._places import REGIONS
from ._scenarios import agents, burst, key_with_stream, known_principal, names, scenario, start_minute
from ._world import Injected, World, aws_addrs


@scenario("batch_surge", "benign")
def batch_surge(world: World, number: int, tag: int) -> Injected:
    """A month-end batch runs a key at several times its rate, from its usual role and addresses."""
    patterns = ("batch", "business")
    index, key, stream = key_with_stream(world, lambda k: k.env == "production" and k.pattern in patterns)
    length, multiplier = int(world.rng.integers(30, 91)), float(world.rng.uniform(3, 6))
    minute = start_minute(world, length, key.tz, "night" if number % 2 == 0 else "day", [index])
    principal = known_principal(stream)
    actor = (principal, stream.addrs, agents(world, stream.uas))
    burst(world, tag, index, minute, np.full(length, (multiplier - 1) * key.mean), actor, stream.ops)
    name = world.principal_name(principal)
    text = (
        f"Month-end batch: {name} used {key.alias} at about {multiplier:.1f} times its normal rate "
        f"for {length} minutes from its usual addresses."
    )
    return Injected([index], name, text)


@scenario("region_expansion", "benign")
def region_expansion(world: World, number: int, tag: int) -> Injected:
    """A service starts calling its key from a new region, with its usual role, until the end."""
    index, key, stream = key_with_stream(world, lambda k: k.env == "production")
    service = next(s for s in world.services if s.name == key.service)
    region = pick(world.rng, [r for r in REGIONS if r not in service.regions])
    clock = world.clock
    span = clock.minutes - clock.test_min
    minute = clock.test_min + int(world.rng.integers(span // 20 + 1, span // 2 + 2))
    world.busy.setdefault(index, []).append((minute, clock.minutes))
    rate = float(world.rng.uniform(0.2, 0.5)) * stream.rate[minute:]
    addrs = aws_addrs(world, region, int(world.rng.integers(2, 4)))
    principal = known_principal(stream)
    burst(world, tag, index, minute, rate, (principal, addrs, agents(world, stream.uas)), stream.ops)
    text = (
        f"Service {service.name} started calling {key.alias} from {region} ({REGIONS[region].country}) "
        "through new addresses, with its usual role."
    )
    return Injected([index], world.principal_name(principal), text)


BENIGN = names("benign")
