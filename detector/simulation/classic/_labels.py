"""The labels (run arguments, span, one entry per scenario instance) and the key catalog."""

from __future__ import annotations

from typing import Any

import numpy as np

from detector.domain.events import format_ts

from ._attacks import ATTACKS
from ._benign import BENIGN
from ._draws import FloatArray, IntArray
from ._world import Instance, World

GENERATOR = "keywatch-simulate/1"


def labels(
    world: World,
    instances: list[Instance],
    args: dict[str, Any],
    ts: FloatArray,
    tag: IntArray,
    ids: list[str],
    counts: tuple[int, int],
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """JSON-ready labels, and the event ids of each scenario instance, attacks first.

    ``ts``, ``tag`` and ``ids`` are the columns of the whole sorted log; ``counts`` the number of
    history and test events.
    """
    clock = world.clock
    meta = {
        **args,
        "history_start": format_ts(clock.start),
        "test_start": format_ts(clock.at(clock.test_min)),
        "test_end": format_ts(clock.at(clock.minutes)),
        "key_count": sum(1 for key in world.log.keys if key.env),
        "events_history": counts[0],
        "events_test": counts[1],
        "generator": GENERATOR,
    }
    scenarios, members = [], {}
    seen: dict[str, int] = {}
    rank = {name: position for position, name in enumerate((*ATTACKS, *BENIGN))}
    for number in sorted(range(len(instances)), key=lambda n: rank[instances[n].scenario]):
        instance, injected = instances[number], instances[number].injected
        rows = np.flatnonzero(tag == number)
        seen[instance.scenario] = seen.get(instance.scenario, 0) + 1
        scenario_id = f"{instance.scenario}-{seen[instance.scenario]}"
        members[scenario_id] = [ids[int(r)] for r in rows]
        scenarios.append(
            {
                "id": scenario_id,
                "scenario": instance.scenario,
                "kind": instance.kind,
                "key_ids": [world.log.keys[k].key_id for k in injected.keys],
                "principal": injected.principal,
                "start": format_ts(float(ts[rows[0]])),
                "end": format_ts(float(ts[rows[-1]])),
                "event_count": len(rows),
                "description": injected.description,
            }
        )
    return {"meta": meta, "scenarios": scenarios}, members


def catalog(world: World) -> dict[str, Any]:
    """The key catalog of the organisation's keys (outside keys are not in it)."""
    entries = [
        {
            "match": key.key_id,
            "environment": key.env,
            "classification": key.classification,
            "owner": f"{key.service}-team",
            "service": key.service,
        }
        for key in world.log.keys
        if key.env
    ]
    defaults = {"environment": "production", "classification": "confidential", "owner": "", "service": ""}
    return {"keys": entries, "defaults": defaults}
