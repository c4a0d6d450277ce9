"""``keywatch evaluate-suite``: detection over both generators, tuning or validation seeds, with ablation."""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from detector.config import load_settings
from detector.rules import DETECTORS
from detector.simulation.suite import (
    GENERATORS,
    STRENGTHS,
    TUNING_SEEDS,
    VALIDATION_SEEDS,
    RunResult,
    World,
    ablation,
    format_summary,
    run_world,
    summarise,
)


def add_parsers(sub: Any) -> None:
    """Register ``evaluate-suite``."""
    p = sub.add_parser("evaluate-suite", help="detection on simulated worlds of both generators, per family")
    p.add_argument(
        "--split",
        choices=("tuning", "validation"),
        default="validation",
        help="seeds to run: tuning (choose thresholds) or validation (report); default validation",
    )
    p.add_argument("--seeds", type=int, nargs="+", help="explicit seeds instead of a split")
    p.add_argument("--generators", nargs="+", choices=sorted(GENERATORS), default=sorted(GENERATORS))
    p.add_argument("--strengths", type=float, nargs="+", default=list(STRENGTHS), help="attack strengths")
    size = World()
    p.add_argument("--keys", type=int, default=size.keys)
    p.add_argument("--history-days", type=float, default=size.history_days)
    p.add_argument("--test-days", type=float, default=size.test_days)
    p.add_argument("--ablation", action="store_true", help="also score each detector's absence")
    p.add_argument("--jobs", type=int, default=1, help="worlds run in parallel processes")
    p.add_argument("--json", type=Path, metavar="FILE", help="write every figure as JSON")
    p.add_argument("--config", type=Path, help="YAML settings (default: built-in, see detector/defaults)")
    p.set_defaults(handler=cmd_evaluate_suite)


def _run(job: tuple[str, int, float, Path | None, World]) -> RunResult:
    generator, seed, strength, config, world = job
    return run_world(generator, seed, strength, load_settings(config).detection, world)


def cmd_evaluate_suite(args: argparse.Namespace) -> int:
    """Run every (generator, seed, strength) world, print per-family tables, optionally the ablation."""
    seeds = args.seeds or (TUNING_SEEDS if args.split == "tuning" else VALIDATION_SEEDS)
    world = World(args.keys, args.history_days, args.test_days)
    jobs = [
        (g, seed, s, args.config, world) for g in args.generators for s in args.strengths for seed in seeds
    ]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            runs = list(pool.map(_run, jobs))
    else:
        runs = [_run(job) for job in jobs]
    size = {"keys": world.keys, "history_days": world.history_days, "test_days": world.test_days}
    out: dict[str, Any] = {"seeds": list(seeds), "world": size, "summaries": []}
    for generator in args.generators:
        for strength in args.strengths:
            group = [r for r in runs if r.generator == generator and r.strength == strength]
            summary = summarise(group)
            print(format_summary(summary), end="\n\n")
            entry: dict[str, Any] = summary.to_dict()
            if args.ablation:
                entry["ablation"] = _ablation(group)
            out["summaries"].append(entry)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2), encoding="utf-8")
    return 0


def _ablation(group: list[RunResult]) -> dict[str, Any]:
    """Recall and false alerts with each detector left out; printed as one table."""
    rows = {name: s.to_dict() for name, s in ablation(group, DETECTORS).items()}
    head = f"{'without':<22} {'recall':>6} {'false/1000 key-h':>16} {'benign':>6}"
    print(head)
    for name, row in rows.items():
        false_rate = row["false_per_1000_key_hours"]
        print(f"{name:<22} {row['recall']:>6.2f} {false_rate:>16.2f} {row['benign_alerts']:>6}")
    print()
    return {name: {k: row[k] for k in ("recall", "detected", "false_alerts", "false_per_1000_key_hours",
                                         "benign_alerts")} for name, row in rows.items()}  # fmt: skip
