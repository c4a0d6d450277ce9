"""Replay throughput on one core, against merely reading and JSON-parsing the same file.

Builds (once, cached in ``--workdir``) a canonical JSONL test file of ``--events`` simulated events
and a model trained on the simulated history before it, exactly as ``keywatch train`` would. Then
times, each separately and on one pinned core:

(a) reading the lines and ``json.loads`` (stdlib) on each, discarding the result;
(b) the same with ``orjson.loads``, the parser KeyWatch uses;
(c) reading the lines and ``detector.sources.decode_and_parse`` into a list of Events;
(c2) ``read_events`` (the file reader, parser and dead-letter bookkeeping ``keywatch replay`` uses);
(d) the full ``keywatch replay`` path: ``read_events`` -> ``Pipeline`` with the model, the key catalog
    and the GeoIP enricher -> ``finish``.

It prints events/s and the ratios of (d) to (a) and (b) against the targets of the issue
(>= 50k events/s, >= 0.3 of the parse-only rate); nothing is asserted. ``--profile`` reruns (d)
under cProfile and prints the 30 functions with the most own time.

    .venv/bin/python bench/replay_throughput.py                 # 1M events
    .venv/bin/python bench/replay_throughput.py --events 200000 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import json
import math
import os
import pstats
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _machine
import orjson
import yaml

import detector
from detector.adapters.inputs import read_events
from detector.adapters.model_store import load_model, save_model
from detector.cli.detection import replay_events
from detector.cli.wiring import catalog_for, enricher_for, write_jsonl
from detector.config import Settings, load_settings
from detector.domain.errors import ModelError
from detector.domain.events import Event
from detector.pipeline import Pipeline
from detector.simulation.classic import DEFAULT_START, GENERATOR, simulate
from detector.sources import decode_and_parse
from detector.training import train

TARGET_RATE = 50_000.0
TARGET_RATIO = 0.3
# simulate() gives about 7,000 events per key on a weekday; a first guess, corrected if short.
EVENTS_PER_KEY_DAY = 6_000
# Start on Monday 2024-04-29, so the history holds two weekdays and the test day is a Wednesday.
START = DEFAULT_START + 2 * 86400
TEST_DAYS = 1.0
META = "meta.json"
TRAINED_BY = "trained-by.txt"  # digest of the detector code and settings the cached model came from
PACKAGE = Path(detector.__file__).resolve().parent
SIMULATOR = PACKAGE / "simulation" / "classic"


@dataclass(frozen=True, slots=True)
class Dataset:
    """Files of one cached benchmark dataset."""

    root: Path
    history: Path
    test: Path
    catalog: Path
    model: Path
    meta: dict[str, Any]


@dataclass(slots=True)
class Timing:
    """One timed step."""

    label: str
    events: int
    seconds: float
    cpu_seconds: float
    other_load: float | None  # share of the pinned core used by other processes meanwhile
    load: str
    note: str = ""

    @property
    def rate(self) -> float:
        """Events per second of wall time."""
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def cpu_rate(self) -> float:
        """Events per second of this process's CPU time (less sensitive to other load on the core)."""
        return self.events / self.cpu_seconds if self.cpu_seconds else 0.0


# ---------------------------------------------------------------- the dataset


def dataset_for(args: argparse.Namespace, settings: Settings) -> Dataset:
    """The cached dataset for these arguments, simulated and trained on first use."""
    keys = "auto" if args.keys is None else str(args.keys)
    geo = "-nogeo" if args.strip_geo else ""
    root = args.workdir / f"replay-{args.events}-k{keys}-h{args.history_days:g}-s{args.seed}{geo}"
    wanted = {
        "generator": GENERATOR,
        "simulator_code": code_digest([SIMULATOR]),
        "events": args.events,
        "keys": args.keys,
        "seed": args.seed,
        "history_days": args.history_days,
        "strip_geo": args.strip_geo,
    }
    ds = _files(root, _read_meta(root))
    if args.rebuild or any(ds.meta.get(k) != v for k, v in wanted.items()):
        ds = _files(root, _simulate(root, args, wanted))
    trained_by = code_digest([PACKAGE], settings.detection.model_dump_json())
    if args.rebuild or _read_text(ds.root / TRAINED_BY) != trained_by or not _model_loads(ds.model):
        _train(ds, settings)
        (ds.root / TRAINED_BY).write_text(trained_by, encoding="utf-8")
    return ds


def code_digest(paths: list[Path], extra: str = "") -> str:
    """Digest of the Python sources under ``paths`` (and ``extra``): a cache is stale when it changes."""
    digest = hashlib.sha256(extra.encode())
    files = sorted(f for p in paths for f in ([p] if p.is_file() else p.rglob("*.py")))
    for f in files:
        digest.update(str(f.relative_to(PACKAGE.parent)).encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()[:16]


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def _files(root: Path, meta: dict[str, Any]) -> Dataset:
    return Dataset(
        root, root / "history.jsonl", root / "test.jsonl", root / "catalog.yaml", root / "model", meta
    )


def _read_meta(root: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((root / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data


def _simulate(root: Path, args: argparse.Namespace, wanted: dict[str, Any]) -> dict[str, Any]:
    """Simulate until the test span holds ``args.events`` events; write the files and the meta."""
    keys = args.keys or max(3, math.ceil(args.events / EVENTS_PER_KEY_DAY / TEST_DAYS * 1.1))
    test_days = TEST_DAYS
    while True:
        started = time.perf_counter()
        sim = simulate(
            keys=keys, days=args.history_days + test_days, test_days=test_days, seed=args.seed, start=START
        )
        print(
            f"  simulated {keys} keys, {args.history_days:g}+{test_days:g} days: "
            f"{len(sim.history):,} history "
            f"+ {len(sim.test):,} test events in {time.perf_counter() - started:.1f} s"
        )
        if len(sim.test) >= args.events:
            break
        grow = args.events / len(sim.test) * 1.05
        if args.keys is None:
            keys = math.ceil(keys * grow)
        else:  # a fixed key count: lengthen the test span instead
            test_days = round(test_days * grow, 3)
    root.mkdir(parents=True, exist_ok=True)
    test = sim.test[: args.events]  # a prefix in time order: a shorter test span, not a thinned one
    write_jsonl(root / "history.jsonl", (_row(e, args.strip_geo) for e in sim.history))
    write_jsonl(root / "test.jsonl", (_row(e, args.strip_geo) for e in test))
    (root / "catalog.yaml").write_text(yaml.safe_dump(sim.catalog, sort_keys=False), encoding="utf-8")
    meta = {
        **wanted,
        "sim_keys": keys,
        "test_days": test_days,
        "history_events": len(sim.history),
        "test_events": len(test),
        "test_start": test[0].to_dict()["ts"],
        "test_end": test[-1].to_dict()["ts"],
    }
    (root / META).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return meta


def _row(event: Event, strip_geo: bool) -> dict[str, Any]:
    """Canonical JSON object; without the simulator's geography when the enricher should look it up."""
    row = event.to_dict()
    if strip_geo:
        for name in ("country", "lat", "lon"):
            row.pop(name, None)
    return row


def _model_loads(path: Path) -> bool:
    try:
        load_model(path)
    except ModelError:
        return False
    return True


def _train(ds: Dataset, settings: Settings) -> None:
    """What ``keywatch train`` does on the history file."""
    started = time.perf_counter()
    batch = read_events([ds.history])
    model = train(batch.events, settings.detection, enricher_for(settings))
    save_model(model, ds.model, [ds.history])
    print(f"  trained on {batch.summary()} in {time.perf_counter() - started:.1f} s -> {ds.model}")


# ---------------------------------------------------------------- the measured steps


def _parse_only(path: Path, loads: Callable[[bytes], object]) -> Callable[[], tuple[int, str]]:
    def run() -> tuple[int, str]:
        n = 0
        with path.open("rb") as fh:
            for line in fh:
                loads(line)
                n += 1
        return n, ""

    return run


def parse_stdlib(path: Path) -> Callable[[], tuple[int, str]]:
    """(a) Read lines and decode each with the stdlib ``json``."""
    return _parse_only(path, json.loads)


def parse_orjson(path: Path) -> Callable[[], tuple[int, str]]:
    """(b) Read lines and decode each with ``orjson``."""
    return _parse_only(path, orjson.loads)


def parse_events(path: Path) -> Callable[[], tuple[int, str]]:
    """(c) Read lines and turn each into Events with ``decode_and_parse``, kept in a list."""

    def run() -> tuple[int, str]:
        events: list[Event] = []
        with path.open("rb") as fh:
            for line in fh:
                events.extend(decode_and_parse(line).events)
        return len(events), ""

    return run


def read_only(path: Path) -> Callable[[], tuple[int, str]]:
    """(c2) ``read_events``: the reader and parser exactly as ``keywatch replay`` calls them."""

    def run() -> tuple[int, str]:
        batch = read_events([path], "auto", None)
        return batch.records, f"{len(batch.events):,} events, {batch.dead} dead"

    return run


def full_replay(ds: Dataset, settings: Settings) -> Callable[[], tuple[int, str]]:
    """(d) ``keywatch replay``: model, catalog and enricher built first, then the timed part."""
    model = load_model(ds.model)
    pipe = Pipeline(
        settings.detection,
        profiles=model.profiles,
        forest=model.forest,
        catalog=catalog_for(ds.catalog, settings),
        enricher=enricher_for(settings),
    )

    def run() -> tuple[int, str]:
        started = time.perf_counter()
        batch = read_events([ds.test], "auto", None)
        read = time.perf_counter() - started
        alerts = replay_events(pipe, batch.events)
        rest = time.perf_counter() - started - read
        stats = pipe.stats
        return batch.records, (
            f"read_events {read:.2f} s + pipeline {rest:.2f} s; {stats.windows:,} windows, "
            f"{stats.mature_windows:,} mature, {stats.late} late, {len(alerts)} alerts"
        )

    return run


def without_gc(
    prepare: Callable[[], Callable[[], tuple[int, str]]],
) -> Callable[[], Callable[[], tuple[int, str]]]:
    """The same step with the cyclic garbage collector disabled while it runs (``--gc-probe``)."""

    def prepare_off() -> Callable[[], tuple[int, str]]:
        run = prepare()

        def run_off() -> tuple[int, str]:
            gc.disable()
            try:
                return run()
            finally:
                gc.enable()

        return run_off

    return prepare_off


def timed(label: str, prepare: Callable[[], Callable[[], tuple[int, str]]], cpu: int) -> Timing:
    """Prepare a step untimed, then time one run of it on the pinned core."""
    run = prepare()
    gc.collect()
    load, core = _machine.loadavg(), f"cpu{cpu}"
    ticks0, cpu0, wall0 = _machine.core_ticks(), time.process_time(), time.perf_counter()
    events, note = run()
    wall, used = time.perf_counter() - wall0, time.process_time() - cpu0
    ticks1 = _machine.core_ticks()
    other = None
    if core in ticks0 and core in ticks1:
        busy = _machine.ticks_to_seconds(ticks1[core][0] - ticks0[core][0])
        other = max(0.0, busy - used) / wall
    del run
    gc.collect()
    return Timing(label, events, wall, used, other, load, note)


# ---------------------------------------------------------------- output


def print_table(rows: list[Timing]) -> None:
    """The timings, one line each."""
    print(
        f"\n{'step':<52} {'events':>10} {'wall s':>8} {'events/s':>11} {'cpu s':>7} {'ev/cpu-s':>9} "
        f"{'other':>6}  load 1/5/15"
    )
    for t in rows:
        other = "n/a" if t.other_load is None else f"{t.other_load:.0%}"
        print(
            f"{t.label:<52} {t.events:>10,} {t.seconds:>8.2f} {t.rate:>11,.0f} {t.cpu_seconds:>7.2f} "
            f"{t.cpu_rate:>9,.0f} {other:>6}  {t.load}"
        )
        if t.note:
            print(f"{'':<6}{t.note}")
    print("  events/s = wall time (the measure of the targets); ev/cpu-s = this process's CPU time;")
    print("  other = share of the pinned core that other processes used during the step (/proc/stat).")


def print_verdict(rows: dict[str, Timing]) -> None:
    """Rate and ratios against the targets (printed, not asserted)."""
    d = rows["d"]

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    print("\nagainst the targets of the issue (printed, not asserted):")
    print(
        f"  replay rate (d)                  {d.rate:>11,.0f} events/s   target >= {TARGET_RATE:,.0f}"
        f"   {verdict(d.rate >= TARGET_RATE)}"
    )
    print(f"  (d) by CPU time                  {d.cpu_rate:>11,.0f} events/cpu-s (for reference)")
    for key, what in (("a", "read + json.loads (stdlib)"), ("b", "read + orjson.loads")):
        ratio = d.rate / rows[key].rate if rows[key].rate else 0.0
        cpu_ratio = d.cpu_rate / rows[key].cpu_rate if rows[key].cpu_rate else 0.0
        print(
            f"  (d) / ({key}) {what:<27} {ratio:>11.3f}            target >= {TARGET_RATIO}"
            f"     {verdict(ratio >= TARGET_RATIO)}   (by CPU time {cpu_ratio:.3f})"
        )
    if "c" in rows:
        c = rows["c"]
        print(
            f"  for reference: (c) / (b) = {c.rate / rows['b'].rate:.3f} "
            "(parsing into Events vs bare orjson), "
            f"(d) / (c) = {d.rate / c.rate:.3f}"
        )


def profile_replay(ds: Dataset, settings: Settings, top: int) -> None:
    """Run (d) once more under cProfile; print the ``top`` functions by own time."""
    run = full_replay(ds, settings)
    gc.collect()
    profiler = cProfile.Profile()
    profiler.enable()
    events, note = run()
    profiler.disable()
    print(f"\ncProfile of (d), {events:,} events ({note}); cProfile inflates call-heavy code:")
    pstats.Stats(profiler, stream=sys.stdout).strip_dirs().sort_stats("tottime").print_stats(top)


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--events", type=int, default=1_000_000, help="events in the test file (default 1,000,000)"
    )
    p.add_argument(
        "--keys", type=int, default=None, help="simulated keys (default: enough for --events in one test day)"
    )
    p.add_argument(
        "--history-days", type=float, default=2.0, help="simulated history to train on (default 2)"
    )
    p.add_argument(
        "--workdir", type=Path, default=Path("/tmp/keywatch-bench"), help="cache of data and model"
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--cpu", type=int, default=0, help="core to pin to (default 0)")
    p.add_argument("--config", type=Path, default=None, help="KeyWatch config file (default: built-in)")
    p.add_argument(
        "--strip-geo",
        action="store_true",
        help="drop the simulator's country/lat/lon so the GeoIP enricher looks every address up",
    )
    p.add_argument("--rebuild", action="store_true", help="simulate and train again even if cached")
    p.add_argument("--profile", action="store_true", help="also run (d) under cProfile; print the top 30")
    p.add_argument("--top", type=int, default=30, help="functions shown by --profile (default 30)")
    p.add_argument("--skip", default="", help="comma-separated steps not to time: c, c2")
    p.add_argument(
        "--gc-probe",
        action="store_true",
        help="also time (c2) and (d) with gc.disable(), to show what the cyclic GC costs",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Build or reuse the dataset, time every step, print the table and the verdict."""
    args = parse_args(argv)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, busy now: {_machine.core_busy_now()}")
    print(f"load average {_machine.loadavg()}; {_machine.pin_to_core(args.cpu)}")
    settings = load_settings(args.config)
    ds = dataset_for(args, settings)
    print(f"detector code digest {code_digest([PACKAGE])} ({PACKAGE})")
    print(
        f"data: {ds.test} ({ds.test.stat().st_size / 2**20:,.0f} MiB, {ds.meta['test_events']:,} events, "
        f"{ds.meta['sim_keys']} keys, {ds.meta['test_start']} .. {ds.meta['test_end']}); model: {ds.model}"
    )
    ds.test.read_bytes()  # warm the page cache so no step pays for the disk
    steps: dict[str, tuple[str, Callable[[], Callable[[], tuple[int, str]]]]] = {
        "a": ("(a) read lines + json.loads (stdlib)", lambda: parse_stdlib(ds.test)),
        "b": ("(b) read lines + orjson.loads", lambda: parse_orjson(ds.test)),
        "c": ("(c) read lines + decode_and_parse -> Events", lambda: parse_events(ds.test)),
        "c2": ("(c2) read_events (reader + parser, as replay)", lambda: read_only(ds.test)),
        "d": ("(d) full replay: read_events -> Pipeline -> finish", lambda: full_replay(ds, settings)),
    }
    if args.gc_probe:
        steps["c2-gc"] = ("(c2) without the cyclic GC (probe)", without_gc(steps["c2"][1]))
        steps["d-gc"] = ("(d) without the cyclic GC (probe)", without_gc(steps["d"][1]))
    skip = {s.strip() for s in args.skip.split(",") if s.strip()} - {"a", "b", "d"}
    rows = {k: timed(label, prep, args.cpu) for k, (label, prep) in steps.items() if k not in skip}
    print_table(list(rows.values()))
    print_verdict(rows)
    if args.profile:
        profile_replay(ds, settings, args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
