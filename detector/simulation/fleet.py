"""Generator B: synthetic AWS KMS usage of a multi-region organisation, written from a threat model.

The world: services deployed in several regions and accounts (assumed-role sessions that change
with credential refreshes, NAT and VPC-endpoint addresses), keys shared between services, created
and retired during the span, engineers working from offices and homes in their time zones,
key-admin and backup automation, AWS services calling on behalf of roles (Secrets Manager, SSM and
S3, with the protected object in ``resource``). Calls per minute are negative-binomial around an
hour-of-week profile with rest days (weekends and a public holiday in the history).

The history span is that organisation's ordinary life. The test span continues it and adds one or
more instances of every family of ``families.yaml`` (attacks and benign changes), each labelled.
Every random draw comes from ``numpy.random.default_rng`` seeded with the seed (and a fixed
per-part tag), so a seed always gives the same output and the background does not depend on the
families injected.

>>> sim = generate(keys=12, history_days=1, test_days=0.5, seed=1, families=["sustained_rise"])
>>> [s["scenario"] for s in sim.labels["scenarios"]]
['sustained_rise']
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import repeat
from typing import Any

import numpy as np
from numpy.random import Generator

from detector.domain.events import Event, format_ts, parse_ts

from ._attacks import ATTACKS
from ._background import background_streams
from ._benign import BENIGN
from ._context import Context, Injection, Suppression, Usage
from ._routine import routine
from ._traffic import DAY, OPERATIONS, OUTCOMES, Batch, Calendar, concat, digest
from ._world import World, build_world
from .families import Family, load_families
from .result import Simulation

GENERATOR = "keywatch-fleet/1"
SOURCE = "aws-kms"
# A Sunday: the default test span starts on a rest day and (with two days) runs into a Monday.
DEFAULT_TEST_START = parse_ts("2024-10-06T00:00:00Z")
MIN_KEYS = 10
INJECTORS = {**ATTACKS, **BENIGN}
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_ID_CHUNK = 262144
_EVENT_CHUNK = 262144
_UUID_POSITIONS = [*range(0, 8), *range(9, 13), *range(14, 18), *range(19, 23), *range(24, 36)]


def generate(
    *,
    keys: int = 120,
    history_days: float = 7,
    test_days: float = 2,
    seed: int = 0,
    strength: float = 1.0,
    families: Sequence[str] | None = None,
    start: float | None = None,
) -> Simulation:
    """Simulate a fleet of ``keys`` keys: a clean history, then a test span with labelled instances.

    Parameters
    ----------
    keys
        Keys of the organisation at the start (at least 10); families that create keys add more.
    history_days, test_days
        Lengths of the two spans, in days.
    seed
        Seed of every random draw.
    strength
        Attack strength (1 = the catalogue's values); see ``families.yaml`` for how it scales each
        family. Benign families keep full strength.
    families
        Names of the families to inject (default: all). Each is injected ``max(1, round(test_days))``
        times, on different targets where the fleet allows.
    start
        Epoch seconds of the history start; by default the test span starts on Sunday 2024-10-06.
    """
    catalogue = load_families()
    chosen = _chosen(catalogue, families)
    _check(keys, history_days, test_days, strength)
    calendar = make_calendar(start, history_days, test_days)
    world = build_world(seed, keys, calendar)
    background = concat([background_streams(world), routine(world)])
    instances = inject(world, chosen, strength, max(1, round(test_days)))
    return assemble(world, background, instances, strength, keys)


def _chosen(catalogue: dict[str, Family], names: Sequence[str] | None) -> list[Family]:
    """Families to inject, in catalogue order."""
    if names is None:
        return list(catalogue.values())
    unknown = sorted(set(names) - set(catalogue))
    if unknown:
        raise ValueError(f"unknown families {unknown}; the catalogue has {sorted(catalogue)}")
    missing = sorted(set(catalogue) - set(INJECTORS))
    if missing:
        raise ValueError(f"families without an injector: {missing}")
    return [family for name, family in catalogue.items() if name in set(names)]


def _check(keys: int, history_days: float, test_days: float, strength: float) -> None:
    """Reject sizes the world cannot be built for."""
    if keys < MIN_KEYS:
        raise ValueError(f"keys must be at least {MIN_KEYS}, got {keys}")
    if not history_days >= 1:
        raise ValueError(f"history_days must be at least 1, got {history_days}")
    if not test_days >= 0.25:
        raise ValueError(f"test_days must be at least 0.25, got {test_days}")
    if not (math.isfinite(strength) and strength > 0):
        raise ValueError(f"strength must be a positive number, got {strength}")


def make_calendar(start: float | None, history_days: float, test_days: float) -> Calendar:
    """Span boundaries and rest days: one public holiday in the history (a weekday near its last
    third) when the history has at least three weekdays, and one in the test span if it would
    otherwise hold no rest day."""
    begin = DEFAULT_TEST_START - history_days * DAY if start is None else float(start)
    test_start = begin + history_days * DAY
    end = test_start + test_days * DAY
    holidays: set[int] = set()
    weekdays = [day for day in _days(begin, test_start) if (day + 3) % 7 < 5]
    if len(weekdays) >= 3:
        target = begin + 0.6 * (test_start - begin)
        holidays.add(min(weekdays, key=lambda day: abs(day * DAY + DAY / 2 - target)))
    test_days_list = _days(test_start, end)
    if all((day + 3) % 7 < 5 for day in test_days_list):
        holidays.add(test_days_list[-1])
    return Calendar(begin, end, test_start, frozenset(holidays))


def _days(begin: float, end: float) -> list[int]:
    """UTC day numbers whose middle lies inside ``[begin, end)`` (at least the first)."""
    first, last = math.floor(begin / DAY), math.ceil(end / DAY)
    inside = [day for day in range(first, last) if begin <= day * DAY + DAY / 2 < end]
    return inside or [first]


def inject(
    world: World, families: Sequence[Family], strength: float, per_family: int
) -> list[tuple[str, Family, Injection]]:
    """Every instance of every family, spread over the test span in a seeded order."""
    plan = [(family, number) for number in range(per_family) for family in families]
    order = np.random.default_rng([world.seed, 2]).permutation(len(plan))
    calendar = world.calendar
    span = calendar.end - calendar.test_start
    usage = Usage()
    instances = []
    for position, index in enumerate(order.tolist()):
        family, number = plan[index]
        rng = np.random.default_rng([world.seed, 3, digest(family.name) & 0xFFFFFFFF, number])
        hint = calendar.test_start + span * (position + 0.5) / len(plan)
        context = Context(world, family, family.scaled(strength), rng, position, hint, usage)
        instances.append((f"{family.name}-{number}", family, INJECTORS[family.name](context)))
    return instances


def suppressed(batch: Batch, rules: Sequence[Suppression]) -> Batch:
    """Background calls left after the suppressions of the injected instances."""
    keep = np.ones(len(batch), dtype=bool)
    for rule in rules:
        hit = (batch.ts >= rule.start) & (batch.ts < rule.end)
        if rule.key >= 0:
            hit &= batch.key == rule.key
        if rule.origin >= 0:
            hit &= batch.origin == rule.origin
        keep &= ~hit
    return batch.take(keep)


def assemble(
    world: World,
    background: Batch,
    instances: Sequence[tuple[str, Family, Injection]],
    strength: float,
    keys: int,
) -> Simulation:
    """Sorted, split and labelled events, with the key catalog."""
    calendar = world.calendar
    rules = [rule for _, _, instance in instances for rule in instance.suppress]
    merged = concat([suppressed(background, rules), *(instance.batch for _, _, instance in instances)])
    merged.ts = np.round(merged.ts, 3)
    merged = merged.take((merged.ts >= calendar.start) & (merged.ts < calendar.end))
    merged = merged.take(np.argsort(merged.ts, kind="stable"))
    ids = event_ids(np.random.default_rng([world.seed, 5]), len(merged))
    events = materialise(world, merged, ids)
    split = int(np.searchsorted(merged.ts, calendar.test_start, side="left"))
    scenarios = [
        label(world, name, family, instance, merged, tag)
        for tag, (name, family, instance) in enumerate(instances)
    ]
    meta = {
        **label_meta(world, strength, keys, instances),
        "events_history": split,
        "events_test": len(events) - split,
    }
    members = label_members(merged, ids, [name for name, _, _ in instances])
    return Simulation(
        events[:split], events[split:], {"meta": meta, "scenarios": scenarios}, catalog(world), members
    )


def label_meta(
    world: World, strength: float, keys: int, instances: Sequence[tuple[str, Family, Injection]]
) -> dict[str, Any]:
    """What the labels say about the run: generator, seed, strength, fleet size and spans."""
    calendar = world.calendar
    return {
        "generator": GENERATOR,
        "seed": world.seed,
        "strength": strength,
        "keys": keys,
        "key_count": len(world.keys),
        "history_start": format_ts(calendar.start),
        "test_start": format_ts(calendar.test_start),
        "test_end": format_ts(calendar.end),
        "holidays": [format_ts(day * DAY)[:10] for day in sorted(calendar.holidays)],
        "families": sorted({family.name for _, family, _ in instances}),
    }


def label_members(merged: Batch, ids: Sequence[str], names: Sequence[str]) -> dict[str, list[str]]:
    """Event ids of each instance's labelled calls, in time order."""
    tagged = np.flatnonzero(merged.tag >= 0)
    members: dict[str, list[str]] = {name: [] for name in names}
    for index, tag in zip(tagged.tolist(), merged.tag[tagged].tolist(), strict=True):
        members[names[tag]].append(ids[index])
    return members


def label(
    world: World, name: str, family: Family, instance: Injection, merged: Batch, tag: int
) -> dict[str, Any]:
    """The label of one instance: its keys, its principal when it has exactly one, its time range."""
    mine = merged.tag == tag
    times = merged.ts[mine]
    principals = np.unique(merged.principal[mine])
    principal = world.tables.principals.items[int(principals[0])] if principals.size == 1 else None
    start = min(instance.start, float(times.min())) if times.size else instance.start
    end = max(instance.end, float(times.max())) if times.size else instance.end
    first_sentence = family.description.split(". ")[0].rstrip(".")
    return {
        "id": name,
        "scenario": family.name,
        "kind": family.kind,
        "key_ids": [world.keys[index].key_id for index in instance.keys],
        "principal": principal,
        "start": format_ts(start),
        "end": format_ts(end),
        "description": f"{instance.detail}; {first_sentence}.",
        "event_count": int(times.size),
    }


def event_ids(rng: Generator, count: int) -> list[str]:
    """``count`` random UUID4 strings, built in bulk."""
    nibbles = rng.integers(0, 16, size=(count, 32), dtype=np.uint8)
    nibbles[:, 12] = 4
    nibbles[:, 16] = 8 + (nibbles[:, 16] & 3)
    ids: list[str] = []
    for first in range(0, count, _ID_CHUNK):
        chunk = nibbles[first : first + _ID_CHUNK]
        text = np.full((chunk.shape[0], 36), ord("-"), dtype=np.uint8)
        text[:, _UUID_POSITIONS] = _HEX[chunk]
        joined = text.tobytes().decode("ascii")
        ids += [joined[offset : offset + 36] for offset in range(0, len(joined), 36)]
    return ids


def materialise(world: World, batch: Batch, ids: Sequence[str]) -> list[Event]:
    """Events from columns: string tables indexed in bulk, one constructor call per event, in chunks."""
    tables = world.tables
    keys = world.keys
    places = [address.place for address in tables.addresses.items]
    lookups = {
        "key": _objects([k.key_id for k in keys]),
        "operation": _objects(OPERATIONS),
        "principal": _objects(tables.principals.items),
        "ip": _objects([address.ip for address in tables.addresses.items]),
        "outcome": _objects(OUTCOMES),
        "country": _objects([place.country for place in places]),
        "lat": _objects([place.lat for place in places]),
        "lon": _objects([place.lon for place in places]),
        "agent": _objects(tables.agents.items),
        "region": _objects([k.region for k in keys]),
        "alias": _objects([*(k.alias for k in keys), None]),  # the extra last entry is "no alias"
        "resource": _objects([*tables.resources.items, None]),  # index -1 is "no resource"
    }
    events: list[Event] = []
    for first in range(0, len(batch), _EVENT_CHUNK):
        chunk = batch.take(np.arange(first, min(first + _EVENT_CHUNK, len(batch))))
        events += _chunk_events(chunk, ids[first : first + len(chunk)], lookups, len(keys))
    return events


def _chunk_events(
    batch: Batch,
    ids: Sequence[str],
    lookups: dict[str, np.ndarray[Any, np.dtype[np.object_]]],
    key_count: int,
) -> list[Event]:
    """Events of one chunk of columns."""
    named_key = np.where(batch.named == 1, batch.key, key_count)
    columns = (
        lookups["key"][batch.key],
        lookups["operation"][batch.operation],
        lookups["principal"][batch.principal],
        lookups["ip"][batch.address],
        lookups["outcome"][batch.outcome],
        repeat(SOURCE),
        lookups["country"][batch.address],
        lookups["lat"][batch.address],
        lookups["lon"][batch.address],
        lookups["agent"][batch.agent],
        lookups["region"][batch.key],
        lookups["alias"][named_key],
        repeat(None),
        lookups["resource"][batch.resource],
    )
    lists = [column.tolist() if isinstance(column, np.ndarray) else column for column in columns]
    return list(map(Event, ids, batch.ts.tolist(), *lists))


def _objects(values: Sequence[object]) -> np.ndarray[Any, np.dtype[np.object_]]:
    """A 1-d object array (never split into dimensions)."""
    array = np.empty(len(values), dtype=object)
    array[:] = list(values)
    return array


def catalog(world: World) -> dict[str, Any]:
    """Every key of the world with its environment, classification, owning team and service."""
    entries = [
        {
            "match": key.key_id,
            "environment": key.environment,
            "classification": key.classification,
            "owner": "platform-team" if key.purpose == "managed-secrets" else f"{key.service}-team",
            "service": key.service,
        }
        for key in world.keys
    ]
    defaults = {"environment": "production", "classification": "confidential", "owner": "", "service": ""}
    return {"keys": entries, "defaults": defaults}
