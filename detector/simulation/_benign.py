"""Benign families of the catalogue (confounders), each written from its description in ``families.yaml``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from ._background import resolve
from ._context import (
    Context,
    Injection,
    Suppression,
    as_workload,
    injection,
    over,
    steady,
    stream_key,
    stream_who,
    workload_streams,
)
from ._identities import Person, Workload
from ._places import EXPANSION_REGION, NEW_SERVICES, SDK_AGENTS
from ._routine import CREATE_OPERATIONS, admin_batch
from ._traffic import MINUTE, Batch, digest, spread_times, times_at_rate
from ._world import Key, new_key_id


def service_wide_surge(ctx: Context) -> Injection:
    """Every key of one always-on service and all its callers busier together."""
    names = sorted({as_workload(s).service for s in workload_streams(ctx.world)} - {"secretsmanager"})
    world = ctx.world
    keys_of_service = {
        name: [
            k.index for k in world.keys if k.service == name and k.retired is None and k.purpose != "escrow"
        ]
        for name in names
    }
    name = ctx.choose(names, lambda n: keys_of_service[n], lambda n: f"service:{n}")
    keys = set(keys_of_service[name])
    streams = [
        s
        for s in world.streams
        if s.key in keys
        and not isinstance(s.identity, Person)
        and s.denied < 0.5
        and s.active_to == float("inf")
    ]
    start, end = ctx.window(ctx.params["duration_minutes"])
    batches = [over(ctx, stream, start, end, ctx.params["rate_multiplier"] - 1.0) for stream in streams]
    detail = f"{name}: {len(keys)} keys at x{ctx.params['rate_multiplier']:.1f}"
    return injection(batches, start, end, detail, targets=sorted(keys))


def region_expansion(ctx: Context) -> Injection:
    """A service's roles start calling its keys from a new region's networks."""
    stream = ctx.choose(workload_streams(ctx.world, busy=True), stream_key, stream_who)
    home = as_workload(stream)
    moved = dataclasses.replace(
        home,
        region=EXPANSION_REGION,
        salt=digest(home.salt, "expansion"),
        nat_ips=tuple(
            f"{EXPANSION_REGION.public_blocks[n % 3]}.{digest(home.salt, n) % 256}.{n + 20}" for n in range(2)
        ),
        subnet=f"10.{EXPANSION_REGION.private_octet}.{digest(home.salt) % 200 + 16}",
    )
    streams = [
        s
        for s in workload_streams(ctx.world, schedules=("always", "business", "nightly"))
        if s.identity is home
    ]
    start, end = ctx.window(ctx.params["duration_minutes"])
    batches = [over(ctx, s, start, end, ctx.params["traffic_share"], identity=moved) for s in streams]
    detail = f"{home.role} now also running in {EXPANSION_REGION.name}"
    return injection(batches, start, end, detail, targets=[s.key for s in streams])


def admin_rotation_wave(ctx: Context) -> Injection:
    """The key-admin automation rotates and tags many keys, some it never touched."""
    world = ctx.world
    start, end = ctx.window(ctx.params["duration_minutes"])
    usable = [k.index for k in world.keys if k.purpose != "escrow" and k.retired is None]
    wanted = ctx.count("keys")
    keys = ctx.take_keys([k for k in usable if k not in world.managed], wanted // 2)
    keys += ctx.take_keys([k for k in usable if k in world.managed], wanted - len(keys))
    operations = (
        "DescribeKey",
        "GetKeyRotationStatus",
        "EnableKeyRotation",
        "RotateKeyOnDemand",
        "TagResource",
    )
    slots = spread_times(ctx.rng, start, end - 30.0, len(keys))
    ts = (slots[:, None] + 1.5 * np.arange(len(operations))[None, :]).ravel()
    batch = admin_batch(world, np.repeat(keys, len(operations)), operations * len(keys), ts)
    batch.tag[:] = ctx.tag
    return injection(
        [batch], start, end, f"rotation and tagging of {len(keys)} keys by the key-admin automation"
    )


def create_keys(
    ctx: Context, template: Key, service: str, count: int, start: float
) -> tuple[list[Key], Batch]:
    """New keys like ``template`` made by the key-admin automation at ``start``, added to the world."""
    world = ctx.world
    keys = []
    for number in range(count):
        key_id = new_key_id(ctx.rng, template.region, template.account, multi_region=False, bare=False)
        key = dataclasses.replace(
            template,
            index=len(world.keys),
            key_id=key_id,
            service=service,
            purpose="data",
            alias=f"alias/{service}/data-{ctx.tag}-{number}",
            created=start,
            retired=None,
            inventory=(),
        )
        world.keys.append(key)
        keys.append(key)
    offsets = np.cumsum(ctx.rng.uniform(2, 10, size=(count, len(CREATE_OPERATIONS))), axis=1)
    ts = (start + 40.0 * np.arange(count)[:, None] + offsets).ravel()
    batch = admin_batch(
        world, np.repeat([k.index for k in keys], len(CREATE_OPERATIONS)), list(CREATE_OPERATIONS) * count, ts
    )
    batch.tag[:] = ctx.tag
    return keys, batch


def use_new_keys(
    ctx: Context, workload: Workload, keys: Sequence[Key], start: float, end: float
) -> list[Batch]:
    """A role starting to use new keys a quarter of an hour after they exist."""
    batches = []
    for key in keys:
        ts = times_at_rate(ctx.rng, start + 900.0, end, ctx.params["rate_per_minute"], dispersion=3.0)
        callers = resolve(ctx.world, workload, key, ts, ctx.rng, via=None, console=False)
        operations = ctx.ops(
            {"GenerateDataKey": 0.5, "Encrypt": 0.15, "Decrypt": 0.3, "DescribeKey": 0.05}, ts.size
        )
        batches.append(
            ctx.batch(
                ts,
                key=key.index,
                operation=operations,
                principal=callers.principal,
                address=callers.address,
                agent=callers.agent,
            )
        )
    return batches


def create_key_wave(ctx: Context) -> Injection:
    """The automation creates keys; a service's role starts using them."""
    stream = ctx.choose(workload_streams(ctx.world), stream_key, stream_who)
    workload = as_workload(stream)
    start, end = ctx.window(ctx.params["duration_minutes"])
    keys, created = create_keys(ctx, ctx.world.keys[stream.key], workload.service, ctx.count("keys"), start)
    batches = [created, *use_new_keys(ctx, workload, keys, start, end)]
    return injection(
        batches, start, end, f"{len(keys)} new keys for {workload.service}, used by {workload.role}"
    )


def new_service_onboarding(ctx: Context) -> Injection:
    """A new service, a new role and new keys, from a new VPC-endpoint network."""
    number = ctx.usage.identities["onboarding"]
    ctx.usage.identities["onboarding"] += 1
    name = NEW_SERVICES[number % len(NEW_SERVICES)] + ("" if number < len(NEW_SERVICES) else f"-{number}")
    stream = ctx.choose(workload_streams(ctx.world), stream_key, stream_who)
    template = ctx.world.keys[stream.key]
    region = as_workload(stream).region
    workload = Workload(
        role=f"{name}-api",
        account=template.account,
        service=name,
        compute="ecs",
        region=region,
        replicas=2,
        session_seconds=21600.0,
        host_seconds=43200.0,
        nat_ips=(),
        subnet=f"10.{region.private_octet}.{230 + number % 20}",
        agents=SDK_AGENTS["node"],
        upgrade_at=float("inf"),
        salt=digest(name, ctx.world.seed),
    )
    start, end = ctx.window(ctx.params["duration_minutes"])
    keys, created = create_keys(ctx, template, name, ctx.count("keys"), start)
    batches = [created, *use_new_keys(ctx, workload, keys, start, end)]
    return injection(batches, start, end, f"new service {name} in {region.name} with {len(keys)} keys")


def release_signing_burst(ctx: Context) -> Injection:
    """Release day: the CI role signs several times more than usual."""
    ci = [
        s for s in ctx.world.streams if isinstance(s.identity, Workload) and s.identity.compute == "actions"
    ]
    stream = ctx.choose(ci or [s for s in ctx.world.streams if s.mix == "signer"], stream_key, stream_who)
    start, end = ctx.window(
        ctx.params["duration_minutes"], utc_offset=stream.utc_offset, hours=(10, 15), rest=False
    )
    rate = (ctx.params["rate_multiplier"] - 1.0) * stream.peak_rate
    batch = steady(ctx, stream, start, end, rate, dispersion=1.0)
    detail = f"release signing at x{ctx.params['rate_multiplier']:.1f}"
    return injection([batch], start, end, detail, targets=[stream.key])


def nightly_batch(ctx: Context) -> Injection:
    """A new nightly job of an existing role on its key, from the role's network."""
    stream = ctx.choose(workload_streams(ctx.world, schedules=("always", "business")), stream_key, stream_who)
    workload = as_workload(stream)
    job = dataclasses.replace(
        workload,
        compute="ecs",
        replicas=1,
        session_seconds=21600.0,
        host_seconds=7200.0,
        salt=digest(workload.salt, "nightly", ctx.tag),
    )
    start, end = ctx.window(ctx.params["duration_minutes"], utc_offset=stream.utc_offset, hours=(0.75, 1.5))
    ts = times_at_rate(ctx.rng, start, end, ctx.params["rate_per_minute"], dispersion=3.0)
    callers = resolve(ctx.world, job, ctx.world.keys[stream.key], ts, ctx.rng, via=None, console=False)
    operations = ctx.ops({"GenerateDataKey": 0.4, "Encrypt": 0.3, "Decrypt": 0.3}, ts.size)
    batch = ctx.batch(
        ts,
        key=stream.key,
        operation=operations,
        principal=callers.principal,
        address=callers.address,
        agent=callers.agent,
    )
    return injection([batch], start, end, f"new nightly job of {workload.role}")


def key_retirement(ctx: Context) -> Injection:
    """A key's callers stop; the automation disables it and later schedules its deletion."""
    stream = ctx.choose(workload_streams(ctx.world, schedules=("always", "business")), stream_key, stream_who)
    key = ctx.world.keys[stream.key]
    disable, schedule = ctx.params["disable_after_minutes"], ctx.params["schedule_after_minutes"]
    start, end = ctx.window(schedule + 5.0)
    squeeze = (end - start) / ((schedule + 5.0) * MINUTE)
    disabled, scheduled = start + disable * MINUTE * squeeze, start + schedule * MINUTE * squeeze
    ts = np.array([disabled - 5.0, disabled, scheduled])
    batch = admin_batch(ctx.world, key.index, ("DescribeKey", "DisableKey", "ScheduleKeyDeletion"), ts)
    batch.tag[:] = ctx.tag
    ctx.usage.keys[key.index] += 100  # no later instance should pick a retired key
    stop = Suppression(start, ctx.test_end, key=key.index)
    return injection([batch], start, scheduled, f"{key.alias or key.key_id} retired", suppress=[stop])


BENIGN: dict[str, Callable[[Context], Injection]] = {
    "service_wide_surge": service_wide_surge,
    "region_expansion": region_expansion,
    "admin_rotation_wave": admin_rotation_wave,
    "create_key_wave": create_key_wave,
    "new_service_onboarding": new_service_onboarding,
    "release_signing_burst": release_signing_burst,
    "nightly_batch": nightly_batch,
    "key_retirement": key_retirement,
}
