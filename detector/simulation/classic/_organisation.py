"""Building the organisation: services and their keys, people, AWS integrations and their traffic streams."""

from __future__ import annotations

import math

import numpy as np
from numpy.random import Generator

from ._draws import FloatArray, IntArray, pick, uuid4s, weighted
from ._log import Address
from ._places import (
    ADMINS,
    APP_OPERATIONS,
    AWS_SERVICES,
    ENVIRONMENT_TOKEN,
    HUMAN_AGENTS,
    HUMAN_OPERATIONS,
    HUMANS,
    OFFICE_OF_COUNTRY,
    OFFICES,
    REGION_WEIGHTS,
    REGIONS,
    RESTRICTED_SERVICES,
    ROLE_SUFFIXES,
    SDK_AGENTS,
    SECONDARY_REGION,
    SERVICES,
)
from ._traffic import profile
from ._world import MINUTES_PER_DAY, Human, Key, Service, Stream, World, aws_addrs, isp_addrs


def build_organisation(world: World, key_count: int) -> None:
    """Services with keys in up to three environments until there are ``key_count`` keys; people; AWS."""
    names = _service_order(world.rng)
    count, i = 0, 0
    while count < key_count:
        base = names[i % len(names)]
        name = base if i < len(names) else f"{base}-{i // len(names) + 1}"
        service = _new_service(world, name, SERVICES[base])
        envs = ["production"] + [
            env for env, p in (("staging", 0.6), ("development", 0.35)) if world.rng.random() < p
        ]
        for env in envs[: key_count - count]:
            _new_key(world, service, env)
        count += min(len(envs), key_count - count)
        i += 1
    _add_people(world)
    _add_aws_integrations(world)


def _service_order(rng: Generator) -> list[str]:
    """Services in random order, with one of each pattern first so even three keys see all three."""
    names = [str(n) for n in rng.permutation(list(SERVICES))]
    for want, position in (("business", 0), ("always", 1), ("batch", 2)):
        first = next(n for n in names if SERVICES[n] == want)
        names.remove(first)
        names.insert(position, first)
    return names


def _new_service(world: World, name: str, pattern: str) -> Service:
    rng = world.rng
    region = weighted(rng, REGION_WEIGHTS)
    regions = {region: 1.0}
    if region in SECONDARY_REGION and rng.random() < 0.2:
        share = float(rng.uniform(0.15, 0.3))
        regions = {region: 1.0 - share, SECONDARY_REGION[region]: share}
    jobs = tuple(
        (round(float(rng.uniform(0, 5)) * 4) / 4, float(rng.uniform(0.3, 1.0)), float(rng.uniform(0.6, 1.0)))
        for _ in range(int(rng.integers(1, 3)) if pattern == "batch" else 0)
    )
    n_roles = int(rng.choice([1, 2, 3], p=[0.45, 0.4, 0.15]))
    suffixes = rng.choice(ROLE_SUFFIXES[:5], size=n_roles, replace=False)
    shares = rng.dirichlet(np.full(n_roles, 2.0))
    styles = rng.choice(["plain", "ec2", "ecs"], size=n_roles, p=[0.5, 0.3, 0.2])
    roles = [(str(s), str(st), float(sh)) for s, st, sh in zip(suffixes, styles, shares, strict=True)]
    first = int(rng.integers(len(SDK_AGENTS)))
    uas = [world.log.intern("ua", SDK_AGENTS[first])]
    if rng.random() < 0.35:
        uas.append(world.log.intern("ua", SDK_AGENTS[(first + 1) % len(SDK_AGENTS)]))
    ops = dict(APP_OPERATIONS[pattern])
    for extra in ("ReEncrypt", "GenerateDataKeyWithoutPlaintext"):
        if rng.random() < 0.3:
            ops[extra] = float(rng.uniform(0.005, 0.03))
    service = Service(name, pattern, region, regions, jobs, roles, uas, ops)
    world.services.append(service)
    return service


def _service_addrs(world: World, service: Service, account: str) -> tuple[list[int], FloatArray]:
    """NAT addresses of a service in one account, in each of its regions, weighted by region share."""
    if account not in service.addrs:
        addrs: list[int] = []
        weights: list[float] = []
        for region, share in service.regions.items():
            hosts = aws_addrs(world, region, int(world.rng.integers(2, 6)))
            addrs += hosts
            weights += [share / len(hosts)] * len(hosts)
        service.addrs[account] = addrs
        service.addr_w[account] = np.asarray(weights, dtype=np.float64) / sum(weights)
    return service.addrs[account], service.addr_w[account]


def _role_pool(world: World, service: Service, account: str, suffix: str, style: str) -> IntArray:
    """Principal indices per day; session-style roles rotate some session names every day."""
    if (account, suffix) in service.pools:
        return service.pools[(account, suffix)]
    role = f"{service.name}-{suffix}"
    days = world.clock.days
    if style == "plain":
        index = world.log.intern("principal", f"arn:aws:iam::{account}:role/{role}")
        pool = np.full((days, 1), index, dtype=np.int64)
    else:
        size = int(world.rng.integers(2, 6))
        pool = np.zeros((days, size), dtype=np.int64)
        for day in range(days):
            for slot in range(size):
                if day == 0 or world.rng.random() < 0.3:
                    raw = world.rng.bytes(16).hex()
                    session = f"i-0{raw[:16]}" if style == "ec2" else raw
                    arn = f"arn:aws:sts::{account}:assumed-role/{role}/{session}"
                    pool[day, slot] = world.log.intern("principal", arn)
                else:
                    pool[day, slot] = pool[day - 1, slot]
    service.pools[(account, suffix)] = pool
    return pool


def _new_key(world: World, service: Service, env: str) -> None:
    rng, clock = world.rng, world.clock
    account = world.accounts[env]
    alias = f"alias/{service.name}-{ENVIRONMENT_TOKEN[env]}"
    if env == "production":
        restricted = service.name.split("-")[0] in RESTRICTED_SERVICES
        classification, low, high = ("restricted" if restricted else "confidential"), 5.0, 40.0
    else:
        classification = "internal" if env == "staging" or rng.random() < 0.7 else "public"
        low, high = (0.3, 3.0) if env == "staging" else (0.05, 0.8)
    pattern = service.pattern if env == "production" else "business"
    tz = REGIONS[service.region].utc_offset
    key_id = f"arn:aws:kms:{service.region}:{account}:key/{uuid4s(rng, 1)[0]}"
    key = Key(key_id, alias, service.region, service.name, env, pattern, tz, classification)
    peak = math.exp(rng.uniform(math.log(low), math.log(high)))
    minute = np.arange(clock.minutes)
    day_noise = rng.lognormal(0.0, 0.08, clock.days + 1)[minute // MINUTES_PER_DAY]
    hour_noise = rng.lognormal(0.0, 0.15, clock.minutes // 60 + 1)[minute // 60]
    base = peak * profile(pattern, clock.t, tz, service.jobs) * day_noise * hour_noise
    index = len(world.log.keys)
    world.log.keys.append(key)
    service.keys.append(index)
    addrs, addr_w = _service_addrs(world, service, account)
    key.rate = np.zeros(clock.minutes)
    for suffix, style, share in service.roles:
        pool = _role_pool(world, service, account, suffix, style)
        rate = base * share * rng.gamma(10.0, 0.1, clock.minutes)
        p_denied, p_error = float(rng.uniform(0.001, 0.004)), float(rng.uniform(0.0003, 0.001))
        ops = service.ops
        _add_stream(world, Stream(index, "app", service.name, pool, addrs, addr_w, service.uas, ops, rate,
                                  p_denied, p_error))  # fmt: skip


def _add_stream(world: World, stream: Stream) -> None:
    world.streams.append(stream)
    key = world.log.keys[stream.key]
    key.rate = key.rate + stream.rate


def _new_human(world: World, name: str, office: str, admin: bool) -> Human:
    if office not in world.office_addrs:
        world.office_addrs[office] = isp_addrs(world, office, int(world.rng.integers(2, 5)))
    home = isp_addrs(world, office, 1)
    principal = world.log.intern("principal", f"arn:aws:iam::{world.accounts['production']}:user/{name}")
    picks = world.rng.choice(len(HUMAN_AGENTS), size=2, replace=False)
    uas = [world.log.intern("ua", HUMAN_AGENTS[int(i)]) for i in picks]
    human = Human(name, principal, office, [*world.office_addrs[office], *home], uas, admin)
    world.humans.append(human)
    return human


def _add_people(world: World) -> None:
    """An admin per office in a country the services run in, and people on business keys."""
    countries = {REGIONS[s.region].country for s in world.services} | {"US"}
    for office, name in ADMINS.items():
        if OFFICES[office].country in countries:
            _new_human(world, name, office, admin=True)
    free = list(HUMANS)
    for index, key in enumerate(world.log.keys):
        # People use every business-hours production key, and a few others now and then.
        if key.env != "production" or (key.pattern != "business" and world.rng.random() >= 0.2):
            continue
        office = OFFICE_OF_COUNTRY[REGIONS[key.region].country]
        for _ in range(int(world.rng.integers(1, 3))):
            local = [h for h in world.humans if h.office == office and not h.admin]
            if local and (not free or world.rng.random() < 0.5):
                human = pick(world.rng, local)
            elif free:
                human = _new_human(world, free.pop(0), office, admin=False)
            else:
                human = pick(world.rng, [h for h in world.humans if not h.admin])
            _add_human_stream(world, human, index)


def _add_human_stream(world: World, human: Human, key: int) -> None:
    rng, clock = world.rng, world.clock
    tz = OFFICES[human.office].utc_offset
    peak = float(rng.uniform(0.1, 0.6))
    rate = peak * profile("business", clock.t, tz, ()) * rng.gamma(4.0, 0.25, clock.minutes)
    n_office = len(human.addrs) - 1
    addr_w = np.asarray([0.85 / n_office] * n_office + [0.15], dtype=np.float64)
    pool = np.full((clock.days, 1), human.principal, dtype=np.int64)
    stream = Stream(key, "human", human.name, pool, human.addrs, addr_w, human.uas, HUMAN_OPERATIONS, rate,
                    0.01, 0.001)  # fmt: skip
    _add_stream(world, stream)


def _add_aws_integrations(world: World) -> None:
    """About a third of production keys are also used by an AWS service on the organisation's behalf."""
    rng, clock = world.rng, world.clock
    for index, key in enumerate(list(world.log.keys)):
        if key.env != "production" or rng.random() >= 0.3:
            continue
        host = pick(rng, list(AWS_SERVICES))
        addr = world.log.add_addr(Address(host, "", None, None))
        pool = np.full((clock.days, 1), world.log.intern("principal", host), dtype=np.int64)
        peak = float(rng.uniform(0.2, 1.5))
        rate = peak * profile("always", clock.t, key.tz, ()) * rng.gamma(10.0, 0.1, clock.minutes)
        agents = [world.log.intern("ua", host)]
        ones = np.ones(1, dtype=np.float64)
        _add_stream(world, Stream(index, "aws", host, pool, [addr], ones, agents, AWS_SERVICES[host], rate,
                                  0.0005, 0.0))  # fmt: skip
