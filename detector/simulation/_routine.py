"""Scheduled life of the fleet: key administration, backups, key lifecycle, on-call nights."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.random import Generator

from ._background import fixed_codes, resolve
from ._identities import Person, Workload, assumed_role, person_home_code
from ._traffic import (
    DAY,
    ERROR,
    OP,
    SUCCESS,
    Batch,
    FloatArray,
    IntArray,
    concat,
    digest,
    make_batch,
    times_at_rate,
)
from ._world import BACKUP_ROLE, Key, World, mix_codes

AUDIT_OPERATIONS = ("DescribeKey", "GetKeyRotationStatus", "ListResourceTags")
CREATE_OPERATIONS = (
    "CreateKey",
    "CreateAlias",
    "TagResource",
    "EnableKeyRotation",
    "PutKeyPolicy",
    "DescribeKey",
)
ADMIN_CHANGES = ("PutKeyPolicy", "EnableKeyRotation", "UpdateKeyDescription", "CreateGrant", "TagResource")


def alive(key: Key, ts: float) -> bool:
    """Whether a key exists and is not yet disabled at ``ts``."""
    created = key.created is None or key.created <= ts
    retired = key.retired is None or ts < key.retired + DAY
    return created and retired and key.purpose != "escrow"


def admin_batch(
    world: World, key: int | Sequence[int] | IntArray, operations: Sequence[str], ts: FloatArray
) -> Batch:
    """Calls of the key-admin automation from its fixed network."""
    principal, address, agent = fixed_codes(world, world.admin, ts.size)
    codes = np.array([OP[name] for name in operations], dtype=np.int64)
    return make_batch(
        ts,
        key=np.asarray(key, dtype=np.int64),
        operation=codes,
        principal=principal,
        address=address,
        agent=agent,
    )


def span_days(world: World) -> range:
    """Day numbers (UTC) touching the span."""
    calendar = world.calendar
    return range(math.floor(calendar.start / DAY), math.ceil(calendar.end / DAY))


def admin_audits(world: World, rng: Generator) -> Batch:
    """Every morning the automation reads the keys it manages; on Mondays it re-tags them all and
    rotates the quarter of them whose turn it is."""
    batches = []
    for day in span_days(world):
        begin = day * DAY + 6 * 3600.0 + rng.uniform(0, 1200)
        keys = [index for index in sorted(world.managed) if alive(world.keys[index], begin)]
        per_key = [_audit_operations(world.keys[index], day) for index in keys]
        key_codes = np.repeat(keys, [len(operations) for operations in per_key])
        ts = begin + np.arange(key_codes.size) * 1.5 + rng.random(key_codes.size)
        batches.append(admin_batch(world, key_codes, [op for operations in per_key for op in operations], ts))
    return concat(batches)


def _audit_operations(key: Key, day: int) -> list[str]:
    """The automation's calls on one managed key on one day."""
    operations = list(AUDIT_OPERATIONS)
    if (day + 3) % 7 == 0:  # Monday
        operations.append("TagResource")
        if digest(key.key_id, "rotation", day // 7) % 4 == 0:
            operations += ["RotateKeyOnDemand", "GetKeyRotationStatus"]
    return operations


def key_lifecycle(world: World, rng: Generator) -> Batch:
    """The key created during the history and the one retired (disabled, then scheduled for deletion)."""
    batches = []
    history = world.calendar.test_start - world.calendar.start
    if "created" in world.lifecycle:
        key = world.keys[world.lifecycle["created"]]
        ts = (key.created or 0.0) + np.cumsum(rng.uniform(2, 12, size=len(CREATE_OPERATIONS)))
        batches.append(admin_batch(world, key.index, CREATE_OPERATIONS, ts))
    if "retired" in world.lifecycle:
        key = world.keys[world.lifecycle["retired"]]
        when = world.calendar.start + history * np.array([0.7, 0.7, 0.85])
        operations = ("DescribeKey", "DisableKey", "ScheduleKeyDeletion")
        batches.append(admin_batch(world, key.index, operations, when + np.array([0.0, 4.0, 0.0])))
        batches.append(straggler(world, rng, key, float(when[1])))
    return concat(batches)


def straggler(world: World, rng: Generator, key: Key, disabled: float) -> Batch:
    """A forgotten hourly job keeps calling the retired key; it fails once the key is disabled."""
    owner = next((s for s in world.streams if s.key == key.index and isinstance(s.identity, Workload)), None)
    if owner is None or key.retired is None:
        return concat([])
    hours = np.arange(math.ceil(key.retired / 3600.0), math.ceil(world.calendar.end / 3600.0))
    ts = hours * 3600.0 + 20.0 + rng.random(hours.size) * 5.0
    callers = resolve(world, owner.identity, key, ts, rng, via=None, console=False)
    return make_batch(
        ts,
        key=key.index,
        operation=OP["Decrypt"],
        principal=callers.principal,
        address=callers.address,
        agent=callers.agent,
        outcome=np.where(ts >= disabled, ERROR, SUCCESS),
    )


def backups(world: World, rng: Generator) -> Batch:
    """AWS Backup reads the keys of backed-up resources every night."""
    tables = world.tables
    batches = []
    for day in span_days(world):
        begin = day * DAY + 2 * 3600.0
        for index in sorted(world.backed_up):
            key = world.keys[index]
            if not alive(key, begin):
                continue
            operations = (
                ["DescribeKey"]
                + ["Decrypt"] * (1 + int(rng.poisson(3)))
                + ["GenerateDataKey"] * int(rng.poisson(1))
            )
            ts = begin + rng.uniform(0, 5400) + np.sort(rng.uniform(0, 240, size=len(operations)))
            principal = tables.principal(
                assumed_role(key.account, BACKUP_ROLE, "AWSBackup-AWSBackupDefaultServiceRole")
            )
            batches.append(
                make_batch(
                    ts,
                    key=index,
                    operation=np.array([OP[o] for o in operations]),
                    principal=principal,
                    address=tables.address("backup.amazonaws.com", key.place_region.place),
                    agent=tables.agent("backup.amazonaws.com"),
                )
            )
    return concat(batches)


def admin_people(world: World, rng: Generator) -> Batch:
    """Key administrators change a key now and then during working hours, from their usual networks."""
    batches = []
    days = [day for day in span_days(world) if (day + 3) % 7 < 5]
    for person in (p for p in world.people if p.admin):
        for day in days[int(rng.integers(0, 2)) :: 2]:
            begin = day * DAY + (10.0 - person.office.utc_offset) * 3600.0 + rng.uniform(0, 6 * 3600)
            key = world.keys[int(rng.choice([k.index for k in world.keys if alive(k, begin)]))]
            change = ADMIN_CHANGES[int(rng.integers(0, len(ADMIN_CHANGES)))]
            ts = begin + np.array([0.0, 40.0, 95.0]) + rng.uniform(0, 10, size=3)
            callers = resolve(world, person, key, ts, rng, via=None, console=True)
            operations = np.array([OP["GetKeyPolicy"], OP[change], OP["DescribeKey"]])
            batches.append(
                make_batch(
                    ts,
                    key=key.index,
                    operation=operations,
                    principal=callers.principal,
                    address=callers.address,
                    agent=callers.agent,
                )
            )
    return concat(batches)


def on_call_nights(world: World, rng: Generator) -> Batch:
    """People on call are paged a few nights and work briefly from home on their keys."""
    batches = []
    days = list(span_days(world))
    for person in (p for p in world.people if p.on_call):
        keys = sorted({s.key for s in world.streams if s.identity is person and s.via is None})
        if not keys:
            continue
        for day in rng.choice(days, size=max(1, len(days) // 3), replace=False):
            begin = float(day) * DAY + (rng.uniform(0.5, 4.0) - person.office.utc_offset) * 3600.0
            batches.append(_page(world, rng, person, keys, begin))
    return concat(batches)


def _page(world: World, rng: Generator, person: Person, keys: Sequence[int], begin: float) -> Batch:
    """One night page: a quarter of an hour of CLI work from home."""
    ts = times_at_rate(rng, begin, begin + rng.uniform(600, 1500), 0.8, dispersion=1.0)
    operations, weights = mix_codes("person-cli")
    day = math.floor((begin + person.office.utc_offset * 3600.0) / DAY)
    home = person_home_code(person, day, world.tables)
    picks = np.asarray(keys)[rng.integers(0, len(keys), size=ts.size)]
    codes = rng.choice(operations, size=ts.size, p=np.asarray(weights) / sum(weights))
    return make_batch(
        ts,
        key=picks,
        operation=codes,
        principal=world.tables.principal(person.principal),
        address=home,
        agent=world.tables.agent(person.cli_agent),
    )


def routine(world: World) -> Batch:
    """All scheduled traffic of the span."""
    parts = (admin_audits, key_lifecycle, backups, admin_people, on_call_nights)
    return concat(
        [part(world, np.random.default_rng([world.seed, 4, number])) for number, part in enumerate(parts)]
    )
