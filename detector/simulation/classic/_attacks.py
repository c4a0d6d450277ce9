"""The nine attacks. Each docstring says what ``strength`` scales; draws are the same at every strength."""

from __future__ import annotations

import numpy as np

from detector.features.geo import haversine_km

from ._draws import pick, uuid4s
from ._log import DENIED, UNLABELLED
from ._places import FOREIGN, HUMAN_OPERATIONS, OFFICE_OF_COUNTRY, OFFICES, REGIONS
from ._scenarios import (
    agents,
    burst,
    human_agents,
    key_with_stream,
    known_principal,
    main_addr,
    names,
    new_role,
    newcomer,
    person_stream,
    phase,
    scaled,
    scenario,
    start_minute,
    toward_normal,
)
from ._traffic import operations, sequence
from ._world import Injected, Key, World, aws_addrs, isp_addrs, new_addrs

# Distances in label texts are on a 6371 km sphere: a seed's labels never depend on the geo module's radius.
_RADIUS_KM = 6371.0
_FAR_KM = 3000.0


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    return haversine_km(lat1, lon1, lat2, lon2, radius_km=_RADIUS_KM)


def _is_production(key: Key) -> bool:
    return key.env == "production"


@scenario("exfiltration_spike", "attack")
def exfiltration_spike(world: World, number: int, tag: int) -> Injected:
    """Strength scales the rate multiplier."""
    index, key, stream = key_with_stream(world, _is_production)
    length, full = int(world.rng.integers(5, 21)), float(world.rng.uniform(20, 60))
    multiplier = toward_normal(full, world.strength)
    minute = start_minute(world, length, key.tz, phase(number), [index])
    addrs = aws_addrs(world, key.region, 1) if number % 2 else [main_addr(stream)]
    principal = known_principal(stream)
    actor = (principal, addrs, agents(world, stream.uas)[:1])
    mix = {"Decrypt": 0.93, "GenerateDataKey": 0.07}
    rate = np.full(length, full * key.mean)
    burst(world, tag, index, minute, rate, actor, mix, share=multiplier / full)
    where = "a new address in its home region" if number % 2 else "one of its usual addresses"
    name = world.principal_name(principal)
    text = (
        f"Credentials of {name} decrypted with {key.alias} at about {multiplier:.0f} times the "
        f"key's normal rate for {length} minutes from {where}."
    )
    return Injected([index], name, text)


@scenario("foreign_geography", "attack")
def foreign_geography(world: World, number: int, tag: int) -> Injected:
    """Strength scales the number of calls from the foreign place."""
    index, key, stream = key_with_stream(world, _is_production)
    place = pick(world.rng, list(FOREIGN))
    foreign = FOREIGN[place]
    count = int(world.rng.integers(1, 3))
    addrs = new_addrs(world, foreign.blocks, (foreign.country, foreign.lat, foreign.lon), count)
    length = int(world.rng.integers(10, 41))
    minute = start_minute(world, length, key.tz, phase(number), [index])
    rate = np.full(length, float(world.rng.uniform(0.2, 1.0)) * key.mean)
    principal = known_principal(stream)
    actor = (principal, addrs, agents(world, stream.uas)[:1])
    burst(world, tag, index, minute, rate, actor, stream.ops, share=world.strength)
    name = world.principal_name(principal)
    text = (
        f"Credentials of {name} used {key.alias} for {length} minutes from {place} "
        f"({foreign.country}), a country the organisation never operates from."
    )
    return Injected([index], name, text)


@scenario("impossible_travel", "attack")
def impossible_travel(world: World, number: int, tag: int) -> Injected:
    """Strength scales the number of far-away calls; the call at home before them stays."""
    stream = person_stream(world, lambda s: True)
    human = next(h for h in world.humans if h.name == stream.owner)
    home = OFFICES[human.office]
    far_foreign = [p for p, v in FOREIGN.items() if _km(home.lat, home.lon, v.lat, v.lon) > _FAR_KM]
    far_org = [o for o, v in OFFICES.items() if _km(home.lat, home.lon, v.lat, v.lon) > _FAR_KM]
    if (number % 2 == 0 and far_foreign) or not far_org:
        place = pick(world.rng, far_foreign)
        foreign = FOREIGN[place]
        far = new_addrs(world, foreign.blocks, (foreign.country, foreign.lat, foreign.lon), 1)
        lat, lon = foreign.lat, foreign.lon
    else:
        place = pick(world.rng, far_org)
        far = isp_addrs(world, place, 1)
        lat, lon = OFFICES[place].lat, OFFICES[place].lon
    gap, length = int(world.rng.integers(4, 15)), int(world.rng.integers(3, 9))
    minute = start_minute(world, 3 + gap + length, home.utc_offset, "day", [stream.key])
    # The real user at home is background: the misuse, and its label, start far away.
    at_home = (human.principal, human.addrs[:1], agents(world, human.uas)[:1])
    burst(world, UNLABELLED, stream.key, minute, np.full(3, 1.5), at_home, HUMAN_OPERATIONS)
    rate = np.full(length, float(world.rng.uniform(1.0, 3.0)))
    actor = (human.principal, far, agents(world, human.uas)[:1])
    burst(world, tag, stream.key, minute + 3 + gap, rate, actor, HUMAN_OPERATIONS, share=world.strength)
    name = world.principal_name(human.principal)
    text = (
        f"{name} used {world.log.keys[stream.key].alias} from {human.office} and about {gap} "
        f"minutes later from {place}, {_km(home.lat, home.lon, lat, lon):.0f} km away."
    )
    return Injected([stream.key], name, text)


@scenario("destructive_operations", "attack")
def destructive_operations(world: World, number: int, tag: int) -> Injected:
    """Strength scales the number of operations issued; the last, destructive one always stays."""
    index, key, stream = key_with_stream(world, _is_production)
    variants = (
        ("DescribeKey", "DisableKey"),
        ("DescribeKey", "GetKeyPolicy", "PutKeyPolicy", "ScheduleKeyDeletion"),
        ("GetKeyPolicy", "PutKeyPolicy", "DisableKey"),
    )
    full = variants[number % 3]
    ops = full[len(full) - scaled(len(full), world.strength) :]
    if number % 2 and any(s.kind == "human" for s in world.streams):
        owner = person_stream(world, lambda s: True).owner
        human = next(h for h in world.humans if h.name == owner)
        who = (human.principal, human.addrs[0], agents(world, human.uas)[0])
    else:
        who = (known_principal(stream), main_addr(stream), agents(world, stream.uas)[0])
    minute = start_minute(world, 5, key.tz, phase(number), [index])
    t0 = world.clock.at(minute) + float(world.rng.uniform(0, 60))
    sequence(world, t0, index, full, who, gap=(5.0, 60.0), tag=tag, keep=len(ops))
    name = world.principal_name(who[0])
    text = f"{name}, which never administers keys, ran {', '.join(ops)} on {key.alias}."
    return Injected([index], name, text)


@scenario("denied_probing", "attack")
def denied_probing(world: World, number: int, tag: int) -> Injected:
    """Strength scales the number of keys probed (at least two; the first probed stay), not their calls."""
    rng, log = world.rng, world.log
    if number % 2 == 0:
        office = pick(rng, list(world.office_addrs))
        principal = newcomer(world)
        addr = isp_addrs(world, office, 1)[0]
        who = (principal, addr, agents(world, rng.permutation(human_agents(world)).tolist())[0])
        own: set[int] = set()
    else:
        _, _, stream = key_with_stream(world, _is_production)
        who = (known_principal(stream), main_addr(stream), agents(world, stream.uas)[0])
        own = {s.key for s in world.streams if who[0] in s.pools}
    targets = [index for index, key in enumerate(log.keys) if key.env and index not in own]
    keys = rng.choice(targets, size=min(len(targets), int(rng.integers(8, 21))), replace=False)
    calls = np.repeat(keys, rng.integers(1, 4, size=len(keys)))
    length = int(rng.integers(2, 6))
    minute = start_minute(world, length, log.keys[int(keys[0])].tz, phase(number), [])
    ts = world.clock.at(minute) + np.sort(rng.uniform(0, 60.0 * length, size=len(calls)))
    mix = {"Decrypt": 0.5, "DescribeKey": 0.25, "GenerateDataKey": 0.15, "GetKeyPolicy": 0.1}
    ops = operations(world, mix, len(calls))
    calls = rng.permutation(calls)
    _, first = np.unique(calls, return_index=True)
    keys = calls[np.sort(first)[: scaled(len(keys), world.strength, least=2)]]
    probed = np.isin(calls, keys)
    log.add(ts[probed], calls[probed], ops[probed], who[0], who[1], who[2], outcome=DENIED, tag=tag)
    name = world.principal_name(who[0])
    text = f"{name} was refused on {len(keys)} different keys within {length} minutes."
    return Injected(sorted(int(k) for k in keys), name, text)


@scenario("low_and_slow", "attack")
def low_and_slow(world: World, number: int, tag: int) -> Injected:
    """Strength scales the peak level: the key's multiplier ``1 + level`` becomes ``1 + level * strength``."""
    index, key, stream = key_with_stream(world, lambda k: _is_production(k) and k.pattern == "always")
    length, full = int(world.rng.integers(60, 181)), float(world.rng.uniform(0.8, 1.6))
    level = full * world.strength  # toward_normal(1 + full, strength) - 1
    minute = start_minute(world, length, key.tz, phase(number), [index])
    base = key.rate[minute : minute + length]
    rate = full * base * np.arange(1, len(base) + 1) / len(base)
    if number % 2 == 0:
        actor = (new_role(world, key), [main_addr(stream)], agents(world, stream.uas)[:1])
        how = "a role never seen before"
    else:
        actor = (known_principal(stream), aws_addrs(world, key.region, 1), agents(world, stream.uas)[:1])
        how = "a new address prefix"
    burst(world, tag, index, minute, rate, actor, {"Decrypt": 1.0}, share=world.strength)
    name = world.principal_name(actor[0])
    text = (
        f"Decrypt calls on {key.alias} by {name} ({how}) rose slowly over {length} minutes "
        f"to about {level:.1f} times the key's usual rate on top of normal traffic."
    )
    return Injected([index], name, text)


@scenario("new_principal", "attack")
def new_principal(world: World, number: int, tag: int) -> Injected:
    """Strength scales the number of calls by the new principal."""
    index, key, stream = key_with_stream(world, _is_production)
    length = int(world.rng.integers(10, 41))
    minute = start_minute(world, length, key.tz, phase(number), [index])
    if number % 2 == 0:
        rate = np.full(length, float(world.rng.uniform(0.2, 0.8)) * key.mean)
        actor = (new_role(world, key), [main_addr(stream)], agents(world, stream.uas)[:1])
        mix = stream.ops
    else:
        office = OFFICE_OF_COUNTRY[REGIONS[key.region].country]
        addrs = world.office_addrs.get(office) or isp_addrs(world, office, 2)
        rate = np.full(length, float(world.rng.uniform(0.3, 1.5)))
        actor = (newcomer(world), addrs, agents(world, human_agents(world))[:1])
        mix = HUMAN_OPERATIONS
    burst(world, tag, index, minute, rate, actor, mix, share=world.strength)
    name = world.principal_name(actor[0])
    text = f"{name}, never seen before, used {key.alias} for data operations for {length} minutes."
    return Injected([index], name, text)


@scenario("off_hours", "attack")
def off_hours(world: World, number: int, tag: int) -> Injected:
    """Strength scales the number of night-time calls."""
    stream = person_stream(world, lambda s: world.log.keys[s.key].pattern == "business")
    human = next(h for h in world.humans if h.name == stream.owner)
    length = int(world.rng.integers(10, 41))
    minute = start_minute(world, length, OFFICES[human.office].utc_offset, "night", [stream.key])
    addrs = human.addrs[-1:] if number % 2 == 0 else isp_addrs(world, human.office, 1)
    rate = np.full(length, float(world.rng.uniform(0.3, 1.5)))
    actor = (human.principal, addrs, agents(world, human.uas)[:1])
    burst(world, tag, stream.key, minute, rate, actor, HUMAN_OPERATIONS, share=world.strength)
    where = "a home connection they use" if number % 2 == 0 else "a new home connection"
    name = world.principal_name(human.principal)
    text = (
        f"{name} used business-hours key {world.log.keys[stream.key].alias} at night local "
        f"time for {length} minutes from {where}."
    )
    return Injected([stream.key], name, text)


@scenario("ransom_reencryption", "attack")
def ransom_reencryption(world: World, number: int, tag: int) -> Injected:
    """Strength scales the re-encryption calls on both keys and the final ones (the destructive one stays)."""
    rng = world.rng
    index, key, stream = key_with_stream(world, _is_production)
    account = str(rng.integers(10**11, 10**12))
    outside = Key(f"arn:aws:kms:{key.region}:{account}:key/{uuid4s(rng, 1)[0]}", None, key.region)
    outside_index = len(world.log.keys)
    world.log.keys.append(outside)
    length, total = int(rng.integers(3, 11)), float(rng.uniform(40, 200))
    minute = start_minute(world, length + 6, key.tz, phase(number), [index])
    addrs = aws_addrs(world, key.region, 1) if number % 2 else [main_addr(stream)]
    actor = (known_principal(stream), addrs, agents(world, stream.uas)[:1])
    share = world.strength
    reencrypt = {"ReEncrypt": 0.75, "Decrypt": 0.25}
    burst(
        world,
        tag,
        index,
        minute,
        np.full(length, 0.6 * total),
        actor,
        reencrypt,
        share=share,
        must="ReEncrypt",
    )
    encrypt = {"Encrypt": 0.5, "GenerateDataKeyWithoutPlaintext": 0.5}
    burst(world, tag, outside_index, minute, np.full(length, 0.4 * total), actor, encrypt, share=share)
    final = ("DescribeKey", "ScheduleKeyDeletion") if number % 2 == 0 else ("GetKeyPolicy", "PutKeyPolicy")
    t = world.clock.at(minute + length) + float(rng.uniform(60, 300))
    last = (actor[0], addrs[0], agents(world, stream.uas)[0])
    sequence(world, t, index, final, last, gap=(5.0, 40.0), tag=tag, keep=scaled(len(final), share))
    name = world.principal_name(actor[0])
    text = (
        f"{name} re-encrypted data from {key.alias} under outside key {outside.key_id} for {length} "
        f"minutes, then ran {final[-1]} on {key.alias}."
    )
    return Injected([index, outside_index], name, text)


ATTACKS = names("attack")
