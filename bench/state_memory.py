"""Memory per active key: learned profiles, open window state, and what idle eviction gives back.

Three measurements, all with ``tracemalloc`` (Python-heap bytes, not RSS) and nothing asserted:

1. **Profiles.** History of N keys (``simulate`` for the smaller counts, a simple generator for the
   larger ones) is streamed through a training ``Pipeline`` the way the consumer would see it: every
   event is encoded to JSON and parsed back with ``decode_and_parse``, so no string is shared with
   the generator. The bytes held by ``Profiles`` are what ``Profiles.evict_idle`` frees when it
   evicts everything; the split between key and principal profiles comes from a JSON round trip of
   each half (the form ``load_model`` rebuilds).
2. **Open windows.** During the same streams, every 30 minutes of event time, the open windows are
   rebuilt from their events' JSON under tracemalloc: bytes per active key (a key with an open window)
   and per open event.
3. **Idle eviction.** Keys that live a few hours each stream through a ``Pipeline`` twice, with the
   default ``idle_evict_seconds`` and a short one: traced memory and profile counts over event time.

    .venv/bin/python bench/state_memory.py
    .venv/bin/python bench/state_memory.py --sim-keys 50 --gen-keys 200,1000 --hours 26
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import sys
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _machine
import orjson

from detector.cli.wiring import enricher_for
from detector.config import DetectionSettings, Settings, load_settings
from detector.domain.events import Event, format_ts
from detector.features import identity
from detector.features.geo import Enricher
from detector.features.profiles import Profiles
from detector.features.window import KeyWindow
from detector.pipeline import Pipeline
from detector.simulation.classic import DEFAULT_START, simulate
from detector.sources import decode_and_parse

START = DEFAULT_START + 2 * 86400  # Monday 2024-04-29 00:00 UTC
CHUNK = 2000
WINDOW_SAMPLE_SECONDS = 1800.0
ACCOUNT = "111122223333"
_OPS = (("Decrypt", 0.55), ("GenerateDataKey", 0.25), ("Encrypt", 0.15), ("DescribeKey", 0.05))
_OUTCOMES = (("success", 0.99), ("denied", 0.008), ("error", 0.002))
_PLACES = (
    ("US", 39.04, -77.49, "us-east-1"),
    ("DE", 50.11, 8.68, "eu-central-1"),
    ("IE", 53.35, -6.26, "eu-west-1"),
    ("SG", 1.35, 103.82, "ap-southeast-1"),
)
_UAS = tuple(
    f"aws-sdk-{lang}/{major}.{minor} os/linux lang/{lang}"
    for lang in ("java", "go", "js", "python")
    for major, minor in ((1, 2), (2, 21), (3, 474))
)
_PEOPLE = tuple(f"person{i:02d}" for i in range(40))


# ---------------------------------------------------------------- a simple generator for many keys


@dataclass(slots=True)
class _GenKey:
    key_id: str
    alias: str
    place: tuple[str, float, float, str]
    roles: list[str]
    prefixes: list[str]
    agents: list[str]
    people: list[str]
    born_h: int
    dies_h: int


@dataclass(slots=True)
class Generator:
    """Canonical records for many keys: 3 keys per service, each service with 3 roles and 4 /24s.

    Each role calls through a pool of 20 session names; 1 % of calls come from one of the two
    people (out of 40) who look after the service.
    A key makes about ``rate`` calls an hour while alive (``born_h`` <= hour < ``dies_h``).
    """

    keys: int
    hours: int
    rate: int = 30
    lifetime_h: int | None = None  # None: every key lives the whole span
    seed: int = 7
    rng: random.Random = field(init=False)
    universe: list[_GenKey] = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.universe = [self._key(i) for i in range(self.keys)]

    def _key(self, i: int) -> _GenKey:
        rng, service = self.rng, f"svc{i // 3:04d}"
        place = _PLACES[(i // 3) % len(_PLACES)]
        roles = [f"arn:aws:sts::{ACCOUNT}:assumed-role/{service}-{s}" for s in ("app", "worker", "api")]
        prefixes = [f"{rng.randint(3, 99)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}" for _ in range(4)]
        agents = rng.sample(_UAS, 3)
        people = [f"arn:aws:iam::{ACCOUNT}:user/{_PEOPLE[(i // 3 + j) % len(_PEOPLE)]}" for j in (0, 7)]
        born, dies = 0, self.hours
        if self.lifetime_h is not None:
            born = math.floor(i * (self.hours - self.lifetime_h) / max(1, self.keys - 1))
            dies = born + self.lifetime_h
        key_id = f"arn:aws:kms:{place[3]}:{ACCOUNT}:key/{rng.getrandbits(128):032x}"
        return _GenKey(key_id, f"alias/{service}-{i % 3}", place, roles, prefixes, agents, people, born, dies)

    def records(self) -> Iterator[bytes]:
        """JSON lines in event-time order, hour by hour (only an hour's timestamps are buffered)."""
        for hour in range(self.hours):
            alive = [k for k in self.universe if k.born_h <= hour < k.dies_h]
            rng = self.rng
            plan = sorted(
                (START + hour * 3600 + rng.random() * 3600, k)
                for k in range(len(alive))
                for _ in range(rng.randint(self.rate // 2, self.rate * 3 // 2))
            )
            for ts, k in plan:
                yield orjson.dumps(self._row(alive[k], ts))

    def _row(self, k: _GenKey, ts: float) -> dict[str, Any]:
        rng = self.rng
        if rng.random() < 0.01:
            principal = rng.choice(k.people)
        else:
            principal = f"{rng.choice(k.roles)}/session-{rng.randrange(20)}"
        country, lat, lon, region = k.place
        return {
            "event_id": f"{rng.getrandbits(128):032x}",
            "ts": format_ts(ts),
            "key_id": k.key_id,
            "operation": _pick(rng, _OPS),
            "principal": principal,
            "source_ip": f"{rng.choice(k.prefixes)}.{rng.randint(1, 254)}",
            "outcome": _pick(rng, _OUTCOMES),
            "source": "aws-kms",
            "country": country,
            "lat": lat,
            "lon": lon,
            "user_agent": rng.choice(k.agents),
            "region": region,
            "key_alias": k.alias,
        }


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    x = rng.random()
    for value, weight in weighted:
        x -= weight
        if x < 0:
            return value
    return weighted[-1][0]


def simulated_records(keys: int, hours: int, seed: int) -> tuple[Iterator[bytes], int]:
    """JSON lines of ``simulate`` history (``hours`` of it) and their count."""
    sim = simulate(keys=keys, days=hours / 24 + 0.25, test_days=0.25, seed=seed, start=START)
    history = sim.history
    return (orjson.dumps(e.to_dict()) for e in history), len(history)


# ---------------------------------------------------------------- measuring


def traced() -> int:
    """Bytes tracemalloc currently counts as allocated."""
    return tracemalloc.get_traced_memory()[0]


def clear_caches() -> None:
    """Empty the module-level identity caches so strings only profiles hold can be freed."""
    identity.principal_identity.cache_clear()
    identity.ip_prefix.cache_clear()
    identity.is_human.cache_clear()


@dataclass(slots=True)
class WindowSample:
    """Open window state at one moment of event time."""

    active_keys: int
    open_events: int
    bytes: int


def window_state(pipe: Pipeline) -> WindowSample:
    """Bytes of the open windows, measured by rebuilding them from their events' JSON."""
    windows = [w for bucket in pipe.open.values() for w in bucket.values()]
    raws = [[orjson.dumps(e.to_dict()) for e in w.events] for w in windows]
    gc.collect()
    before = traced()
    copy = [_rebuild(w, r) for w, r in zip(windows, raws, strict=True)]
    used = traced() - before
    keys = len({w.key_id for w in windows})
    sample = WindowSample(keys, sum(len(w.events) for w in copy), used)
    del copy
    return sample


def _rebuild(win: KeyWindow, raws: list[bytes]) -> KeyWindow:
    events = [ev for raw in raws for ev in decode_and_parse(raw).events]
    return KeyWindow(events[0].key_id, win.start, win.end, events, win.travel)


def stream(pipe: Pipeline, records: Iterator[bytes], sample_every: float | None) -> list[WindowSample]:
    """Parse and process every record in chunks; sample open windows every ``sample_every`` s."""
    samples: list[WindowSample] = []
    next_sample = -math.inf
    chunk: list[Event] = []
    for raw in records:
        chunk.extend(decode_and_parse(raw).events)
        if len(chunk) < CHUNK:
            continue
        pipe.process(chunk)
        chunk = []
        if sample_every is not None and pipe.max_ts >= next_sample:
            if next_sample > -math.inf:
                samples.append(window_state(pipe))
            next_sample = pipe.max_ts + sample_every
    pipe.process(chunk)
    pipe.finish()
    return samples


def json_copy_bytes(profiles: Profiles, part: str) -> int:
    """Traced bytes of ``part`` of the profiles rebuilt from JSON, as ``load_model`` does."""
    data = profiles.to_dict()
    kept = {"keys": {}, "principals": {}, "org": data["org"]}
    kept[part] = data[part]
    text = json.dumps(kept)
    gc.collect()
    before = traced()
    copy = Profiles.from_dict(json.loads(text))
    used = traced() - before
    del copy
    return used


@dataclass(slots=True)
class ProfileRow:
    """One line of the profiles table."""

    source: str
    keys: int
    principals: int
    events: int
    seconds: float
    held: int
    freed_keys: int
    freed_principals: int
    key_copy: int
    principal_copy: int
    dims: str
    rss_before: float
    rss_after: float
    windows: list[WindowSample]


def measure_profiles(source: str, keys: int, args: argparse.Namespace, settings: Settings) -> ProfileRow:
    """Stream one history, then measure what its profiles hold and what eviction frees."""
    if source == "simulate":
        records, _ = simulated_records(keys, args.hours, args.seed)
    else:
        records = Generator(keys, args.hours, args.rate, seed=args.seed).records()
    enricher = enricher_for(settings)
    clear_caches()
    gc.collect()
    tracemalloc.start()
    base, started = traced(), time.perf_counter()
    pipe = Pipeline(settings.detection, trust_input=True, enricher=enricher)
    samples = stream(pipe, records, WINDOW_SAMPLE_SECONDS if 2 in _counts(args.sections) else None)
    seconds, events, profiles = time.perf_counter() - started, pipe.stats.events, pipe.profiles
    print(
        f"  {source} {keys} keys: {events:,} events in {seconds:.1f} s (tracemalloc on), "
        f"load {_machine.loadavg()}"
    )
    del pipe, records
    clear_caches()
    gc.collect()
    held, dims = traced() - base, _dimensions(profiles)
    n_keys, n_principals = len(profiles.keys), len(profiles.principals)
    key_copy, principal_copy = json_copy_bytes(profiles, "keys"), json_copy_bytes(profiles, "principals")
    rss_before = _machine.rss_mb()
    key_part, principal_part = Profiles(keys=profiles.keys), Profiles(principals=profiles.principals)
    del profiles
    freed_keys, evicted = _evict_all(key_part)
    freed_principals, evicted_p = _evict_all(principal_part)
    tracemalloc.stop()
    assert evicted == n_keys and evicted_p == n_principals  # a broken bench, not a failed goal
    return ProfileRow(
        source,
        n_keys,
        n_principals,
        events,
        seconds,
        held,
        freed_keys,
        freed_principals,
        key_copy,
        principal_copy,
        dims,
        rss_before,
        _machine.rss_mb(),
        samples,
    )


def _evict_all(profiles: Profiles) -> tuple[int, int]:
    """Traced bytes ``Profiles.evict_idle`` gives back when everything is idle, and how many it evicted."""
    gc.collect()
    before = traced()
    evicted = profiles.evict_idle(math.inf, 1.0)
    gc.collect()
    return before - traced(), evicted


def _dimensions(profiles: Profiles) -> str:
    """Average number of values per key profile dimension."""
    n = max(1, len(profiles.keys))
    avg = {
        d: sum(len(getattr(p, d)) for p in profiles.keys.values()) / n
        for d in ("principals", "prefixes", "user_agents", "operations", "countries", "people_hours")
    }
    return ", ".join(f"{d} {v:.1f}" for d, v in avg.items())


def churn_run(settings: DetectionSettings, args: argparse.Namespace, idle: float) -> list[tuple[float, ...]]:
    """Stream keys that live ``--lifetime`` hours each; sample memory every 4 hours of event time."""
    window = settings.window.model_copy(update={"idle_evict_seconds": idle})
    detection = settings.model_copy(update={"window": window})
    gen = Generator(
        args.churn_keys, args.churn_hours, args.churn_rate, lifetime_h=args.lifetime, seed=args.seed
    )
    clear_caches()
    gc.collect()
    tracemalloc.start()
    base = traced()
    pipe = Pipeline(detection, trust_input=True, enricher=Enricher(None))
    rows: list[tuple[float, ...]] = []
    next_hour = 4
    chunk: list[Event] = []
    for raw in gen.records():
        chunk.extend(decode_and_parse(raw).events)
        if len(chunk) >= CHUNK:
            pipe.process(chunk)
            chunk = []
            hour = (pipe.max_ts - START) / 3600
            if hour >= next_hour:
                rows.append(_churn_row(pipe, hour, base))
                next_hour += 4
    pipe.process(chunk)
    pipe.finish()
    del chunk  # the last partial batch would otherwise still hold its events
    rows.append(_churn_row(pipe, args.churn_hours, base))
    tracemalloc.stop()
    return rows


def _churn_row(pipe: Pipeline, hour: float, base: int) -> tuple[float, ...]:
    """One sample; the identity caches are emptied first so their bounded bulk does not hide the trend."""
    caches = identity.ip_prefix.cache_info().currsize + identity.principal_identity.cache_info().currsize
    clear_caches()
    gc.collect()
    p = pipe.profiles
    return (
        hour,
        (traced() - base) / 2**20,
        len(p.keys),
        len(p.principals),
        len(pipe.travel.last),
        len(pipe.ctx.drift),
        len(pipe.ctx.hourly),
        len(pipe.book.open),
        len(pipe.book.catalog._cache),
        caches,
        pipe.stats.evicted,
        pipe.stats.events,
    )


# ---------------------------------------------------------------- output


def print_profiles(rows: list[ProfileRow]) -> None:
    """Profiles table: bytes per key, per principal, and freed by eviction."""
    print("\n1. Profiles after streaming history (tracemalloc bytes that Profiles.evict_idle gives back)")
    print(
        f"{'source':<9} {'keys':>5} {'princ.':>6} {'events':>10} {'s':>6} {'held KiB':>9} {'freed KiB':>9} "
        f"{'B/key':>7} {'B/princ.':>8} {'B/key all':>9} | {'loaded B/key':>12} {'B/princ.':>8} | "
        f"{'RSS MiB':>7}"
    )
    for r in rows:
        freed = r.freed_keys + r.freed_principals
        print(
            f"{r.source:<9} {r.keys:>5} {r.principals:>6} {r.events:>10,} {r.seconds:>6.1f} "
            f"{r.held / 1024:>9,.0f} {freed / 1024:>9,.0f} {r.freed_keys / r.keys:>7,.0f} "
            f"{r.freed_principals / max(1, r.principals):>8,.0f} {freed / r.keys:>9,.0f} | "
            f"{r.key_copy / r.keys:>12,.0f} {r.principal_copy / max(1, r.principals):>8,.0f} | "
            f"{r.rss_before:,.0f}->{r.rss_after:,.0f}"
        )
    print(
        "  held      = traced heap left after the stream once the Pipeline is dropped "
        "(profiles + bounded caches)"
    )
    print("  freed     = given back by evict_idle on the key profiles, then on the principal profiles")
    print(
        "  B/key all = (key + principal profiles freed) / keys: the profile memory one more active key costs"
    )
    print("  loaded    = the same profiles rebuilt from JSON as load_model does (every float its own object)")
    print("  RSS       = before -> after eviction (CPython keeps freed arenas, so RSS barely moves)")
    print("  average values per key profile:")
    for r in rows:
        print(f"    {r.source} {r.keys}: {r.dims}")


def print_windows(rows: list[ProfileRow]) -> None:
    """Open window state per active key, from the samples taken while streaming."""
    print(
        f"\n2. Open window state while streaming (sampled every {WINDOW_SAMPLE_SECONDS / 60:.0f} min "
        "of event time; "
        "window 60 s + 30 s lateness)"
    )
    print(
        f"{'source':<9} {'keys':>5} {'samples':>7} {'active keys':>11} {'open events':>11} {'KiB':>8} "
        f"{'B/active key':>12} {'max B/key':>9} {'B/open event':>12}"
    )
    for r in rows:
        s = [w for w in r.windows if w.active_keys]
        if not s:
            continue
        keys, evs, byts = (
            sum(getattr(w, a) for w in s) / len(s) for a in ("active_keys", "open_events", "bytes")
        )
        worst = max(w.bytes / w.active_keys for w in s)
        print(
            f"{r.source:<9} {r.keys:>5} {len(s):>7} {keys:>11.0f} {evs:>11,.0f} {byts / 1024:>8,.0f} "
            f"{byts / keys:>12,.0f} {worst:>9,.0f} {byts / max(evs, 1):>12,.0f}"
        )


def print_churn(runs: dict[str, list[tuple[float, ...]]], args: argparse.Namespace) -> None:
    """Traced memory and state sizes over event time, with and without a short idle time."""
    alive = args.churn_keys * args.lifetime / (args.churn_hours - args.lifetime)
    print(
        f"\n3. Idle eviction: {args.churn_keys} keys over {args.churn_hours} h, each alive {args.lifetime} h "
        f"(about {alive:.0f} at a time), ~{args.churn_rate} events/key/h"
    )
    for name, rows in runs.items():
        print(f"  idle_evict_seconds = {name}")
        print(
            f"    {'hour':>5} {'traced MiB':>10} {'key prof.':>9} {'princ.':>6} {'travel':>6} {'drift':>5} "
            f"{'hourly':>6} "
            f"{'alerts':>6} {'catalog cache':>13} {'lru caches':>10} {'evicted':>7} {'events':>9}"
        )
        for hour, mib, k, p, t, d, h, a, c, lru, ev, n in rows:
            print(
                f"    {hour:>5.0f} {mib:>10.2f} {k:>9} {p:>6} {t:>6} {d:>5} {h:>6} {a:>6} {c:>13} "
                f"{lru:>10} {ev:>7} "
                f"{n:>9,}"
            )
    print("  travel = TravelTracker entries, drift = rate-drift scores, hourly = off-hours running counts")
    print("  (RuleContext.hourly), alerts = open AlertBook episodes,")
    print("  catalog cache = KeyCatalog lookups cached, lru caches = ip_prefix + principal_identity entries")
    print(
        "  (65,536 max each; emptied before each 'traced MiB' reading, so that column is the detector state)"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--sim-keys", default="50,200", help="key counts streamed from simulate() (default 50,200)"
    )
    p.add_argument(
        "--gen-keys", default="200,1000", help="key counts from the simple generator (default 200,1000)"
    )
    p.add_argument("--hours", type=int, default=26, help="hours of history per run (default 26)")
    p.add_argument("--rate", type=int, default=30, help="generator events per key per hour (default 30)")
    p.add_argument("--churn-keys", type=int, default=600)
    p.add_argument("--churn-hours", type=int, default=48)
    p.add_argument("--churn-rate", type=int, default=60)
    p.add_argument("--lifetime", type=int, default=6, help="hours each churning key is alive (default 6)")
    p.add_argument("--short-idle", type=float, default=7200.0, help="short idle_evict_seconds (default 7200)")
    p.add_argument("--sections", default="1,2,3", help="which measurements to run (default 1,2,3)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--cpu", type=int, default=0, help="core to pin to (default 0)")
    p.add_argument("--config", type=Path, default=None, help="KeyWatch config file (default: built-in)")
    return p.parse_args(argv)


def _streams(args: argparse.Namespace) -> list[tuple[str, int]]:
    """(source, keys) of every history stream to measure."""
    sims = [("simulate", k) for k in _counts(args.sim_keys)]
    return sims + [("generator", k) for k in _counts(args.gen_keys)]


def _counts(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    """Run the three measurements and print them."""
    args = parse_args(argv)
    print(
        f"python {sys.version.split()[0]}, load average {_machine.loadavg()}; "
        f"{_machine.pin_to_core(args.cpu)}"
    )
    settings = load_settings(args.config)
    sections = set(_counts(args.sections))
    if sections & {1, 2}:
        rows = [measure_profiles(source, keys, args, settings) for source, keys in _streams(args)]
        if 1 in sections:
            print_profiles(rows)
        if 2 in sections:
            print_windows(rows)
    if 3 in sections:
        default_idle = settings.window.idle_evict_seconds
        churn = {
            f"{default_idle:g} (default)": churn_run(settings.detection, args, default_idle),
            f"{args.short_idle:g}": churn_run(settings.detection, args, args.short_idle),
        }
        print_churn(churn, args)
    print(f"\nload average at the end {_machine.loadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
