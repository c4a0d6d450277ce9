"""Background traffic: daily and weekly rate profiles, Poisson calls per stream, rotations, admins, errors."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._draws import FloatArray, IntArray, choices, outcomes, pick
from ._log import DENIED, UNLABELLED
from ._places import ADMIN_READS, LAMBDA_AGENT, OFFICES, REGIONS
from ._world import MINUTES_PER_DAY, Stream, World, aws_addrs

Who = tuple[int, int, int]  # principal, address, user agent


def profile(
    pattern: str, t: FloatArray, tz: float, jobs: tuple[tuple[float, float, float], ...]
) -> FloatArray:
    """Relative traffic level (peak about 1) at minute starts ``t`` for a caller in UTC offset ``tz``.

    ``business`` follows office hours with a lunch dip and quiet weekends, ``batch`` is low but for its
    ``jobs`` (start hour, hours, level), and ``always`` follows a daily wave a little lower at weekends.
    """
    local = t + tz * 3600.0
    hour = (local % 86400.0) / 3600.0
    weekend = (np.floor(local / 86400.0).astype(np.int64) + 3) % 7 >= 5
    if pattern == "business":
        up = 1.0 / (1.0 + np.exp(-(hour - 8.5) * 1.8))
        down = 1.0 / (1.0 + np.exp((hour - 17.5) * 1.4))
        lunch = 1.0 - 0.25 * np.exp(-(((hour - 12.5) / 0.6) ** 2))
        p = 0.03 + 0.97 * up * down * lunch
        return np.asarray(np.where(weekend, 0.02 + 0.1 * p, p), dtype=np.float64)
    if pattern == "batch":
        p = 0.07 + 0.03 * np.cos(2 * np.pi * (hour - 14.0) / 24.0)
        for start_hour, hours, level in jobs:
            p = p + level * (((hour - start_hour) % 24.0) < hours)
        return np.asarray(p, dtype=np.float64)
    p = 0.6 + 0.4 * np.cos(2 * np.pi * (hour - 14.0) / 24.0)
    return np.asarray(np.where(weekend, 0.85 * p, p), dtype=np.float64)


def emit_background(world: World) -> None:
    """All clean traffic of the whole span; then each key's mean rate and the agents history shows."""
    for stream in world.streams:
        _emit_stream(world, stream)
    for key in world.log.keys:
        key.mean = max(float(key.rate[: world.clock.test_min].mean()), 0.5)
    _emit_rotations(world)
    _emit_admin_sessions(world)
    _emit_misconfigured(world)
    cut = world.clock.at(world.clock.test_min)
    world.history_uas = {int(u) for c in world.log.chunks for u in np.unique(c[5][c[0] < cut])}


def operations(world: World, mix: dict[str, float], count: int) -> IntArray:
    """``count`` operation indices drawn from ``mix``."""
    return choices(world.rng, [world.log.intern("op", o) for o in mix], list(mix.values()), count)


def _emit_stream(world: World, stream: Stream) -> None:
    rng, clock = world.rng, world.clock
    counts = rng.poisson(stream.rate)
    minute = np.repeat(np.arange(clock.minutes), counts)
    n = len(minute)
    ts = clock.start + (minute + rng.random(n)) * 60.0
    principal = stream.pools[minute // MINUTES_PER_DAY, rng.integers(0, stream.pools.shape[1], n)]
    n_uas = len(stream.uas)
    ua_w = np.asarray([0.8] + [0.2 / (n_uas - 1)] * (n_uas - 1)) if n_uas > 1 else [1.0]
    addr = choices(rng, stream.addrs, stream.addr_w, n)
    ua = choices(rng, stream.uas, ua_w, n)
    outcome = outcomes(rng, n, stream.p_denied, stream.p_error)
    world.log.add(ts, stream.key, operations(world, stream.ops, n), principal, addr, ua, outcome=outcome)
    seen, freq = np.unique(principal[minute < clock.test_min], return_counts=True)
    stream.seen = [int(p) for p in seen[np.argsort(-freq, kind="stable")]]


def sequence(
    world: World,
    t0: float,
    key: int,
    ops: Sequence[str],
    who: Who,
    *,
    gap: tuple[float, float] = (2.0, 30.0),
    outcome: int = 0,
    tag: int = UNLABELLED,
    keep: int | None = None,
) -> float:
    """Emit ``ops`` one after another from ``t0``, a few seconds apart; return the last time.

    With ``keep``, only the last ``keep`` operations are issued, from ``t0`` on, after the same draws.
    """
    gaps = world.rng.uniform(gap[0], gap[1], size=len(ops))
    gaps[0] = 0.0
    ts = t0 + np.cumsum(gaps)
    if keep is not None:
        ts, ops = ts[:keep], ops[len(ops) - keep :]
    op = np.asarray([world.log.intern("op", o) for o in ops], dtype=np.int64)
    world.log.add(ts, key, op, who[0], who[1], who[2], outcome=outcome, tag=tag)
    return float(ts[-1])


def _emit_rotations(world: World) -> None:
    """A rotation Lambda visits every production key daily at 03:00 UTC."""
    log, clock, rng = world.log, world.clock, world.rng
    role = "kms-key-rotation"
    who = log.intern("principal", f"arn:aws:sts::{world.accounts['production']}:assumed-role/{role}/{role}")
    addrs = aws_addrs(world, "us-east-1", 4)
    ua = log.intern("ua", LAMBDA_AGENT)
    end = clock.at(clock.minutes)
    targets = [index for index, key in enumerate(log.keys) if key.env == "production"]
    for day in range(clock.days):
        t = clock.start + day * 86400.0 + 3 * 3600.0 + float(rng.uniform(0, 20))
        addr = pick(rng, addrs)
        for index in targets:
            restricted = log.keys[index].classification == "restricted"
            verb = "RotateKeyOnDemand" if restricted else "EnableKeyRotation"
            if t < end:
                ops = ("DescribeKey", "GetKeyRotationStatus", verb)
                t = sequence(world, t, index, ops, (who, addr, ua), gap=(0.2, 1.5))
            t += float(rng.uniform(0.5, 3.0))


def _emit_admin_sessions(world: World) -> None:
    """Admins read and occasionally tag or re-policy keys of services in their country, on workdays."""
    clock, rng = world.clock, world.rng
    for human in (h for h in world.humans if h.admin):
        office = OFFICES[human.office]
        keys = [
            index for index, key in enumerate(world.log.keys) if REGIONS[key.region].country == office.country
        ]
        if human.name == "alice":
            keys = keys or list(range(len(world.log.keys)))
        first_day = int(clock.start // 86400.0)
        for day in range(first_day, first_day + clock.days + 1):
            midnight = day * 86400.0 - office.utc_offset * 3600.0
            if not keys or (day + 3) % 7 >= 5:  # the Unix epoch fell on a Thursday
                continue
            for _ in range(int(rng.poisson(2.0))):
                t = midnight + float(rng.uniform(9.5, 17.5)) * 3600.0
                if not clock.start <= t < clock.at(clock.minutes - 10):
                    continue
                ops = [str(o) for o in rng.choice(ADMIN_READS, size=int(rng.integers(2, 6)))]
                ops += ["TagResource"] * (rng.random() < 0.5) + ["PutKeyPolicy"] * (rng.random() < 0.2)
                who = (human.principal, pick(rng, human.addrs), pick(rng, human.uas))
                sequence(world, t, pick(rng, keys), ops, who, gap=(3.0, 60.0))


def _emit_misconfigured(world: World) -> None:
    """Now and then a known app calls a key of another environment and gets a short run of denials."""
    rng, clock, log = world.rng, world.clock, world.log
    apps = [s for s in world.streams if s.kind == "app"]
    for _ in range(int(rng.poisson(1.2 * clock.minutes / MINUTES_PER_DAY))):
        stream = pick(rng, apps)
        service = next(v for v in world.services if v.name == stream.owner)
        others = [k for k in service.keys if k != stream.key] or [
            k for k in range(len(log.keys)) if k != stream.key
        ]
        t = clock.start + float(rng.uniform(0, clock.minutes - 5)) * 60.0
        calls = int(rng.integers(3, 9))
        who = (int(stream.pools[int((t - clock.start) // 86400), 0]), stream.addrs[0], stream.uas[0])
        sequence(world, t, pick(rng, others), ["Decrypt"] * calls, who, gap=(2.0, 15.0), outcome=DENIED)
