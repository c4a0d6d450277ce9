"""``keywatch simulate|train|replay|normalize|evaluate``: detection over files.

Each command is a thin parser over a function (``simulate_to``, ``train_to``, ``replay_to``) that
the demo and the tests call directly.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import yaml

from detector.adapters.inputs import read_events
from detector.adapters.model_store import load_model, save_model, update_profiles
from detector.cli import display
from detector.cli.wiring import (
    catalog_for,
    collector_paused,
    enricher_for,
    verdict_labels,
    verdict_spans,
    write_jsonl,
)
from detector.config import load_settings
from detector.domain.alerts import Alert
from detector.domain.errors import ConfigError
from detector.domain.events import Event
from detector.domain.suppressions import Verdict, exclude_spans
from detector.evaluation import evaluate
from detector.pipeline import Pipeline
from detector.sources import FORMATS
from detector.training import train

PROGRESS_EVERY = 20_000


def inputs_options(p: argparse.ArgumentParser) -> None:
    """Input files and their format."""
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="log files (JSONL, JSON, .gz)")
    p.add_argument(
        "--format", default="auto", choices=FORMATS, help="input format (default: auto, per record)"
    )


def config_options(p: argparse.ArgumentParser, *, catalog: bool = True) -> None:
    """``--config`` and, unless told otherwise, ``--catalog``."""
    p.add_argument("--config", type=Path, help="YAML settings (default: built-in, see detector/defaults)")
    if catalog:
        p.add_argument("--catalog", type=Path, help="key catalog YAML (environment, classification per key)")


def add_parsers(sub: Any) -> None:
    """Register ``simulate``, ``train``, ``replay``, ``normalize`` and ``evaluate``."""
    p = sub.add_parser("simulate", help="write synthetic labelled key-usage traffic")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="where the four files go")
    p.add_argument("--keys", type=int, default=30, metavar="N", help="keys in the world (default 30)")
    p.add_argument("--days", type=float, default=4.0, metavar="D", help="days in all (default 4)")
    p.add_argument("--test-days", type=float, default=1.0, metavar="T",
                   help="last days, with the labelled attacks, into test.jsonl (default 1)")  # fmt: skip
    p.add_argument("--seed", type=int, default=7, metavar="S", help="random seed (default 7)")
    p.add_argument("--strength", type=float, default=1.0, help="attack strength, 0 < S <= 1 (default 1)")
    p.add_argument("--generator", choices=("classic", "fleet"), default="classic",
                   help="classic (detector/simulation/classic/) or fleet "
                        "(detector/simulation/fleet.py)")  # fmt: skip
    p.set_defaults(handler=cmd_simulate)

    p = sub.add_parser("train", help="learn profiles and fit the forest from history")
    inputs_options(p)
    config_options(p, catalog=False)
    p.add_argument("--out", type=Path, required=True, metavar="MODEL_DIR")
    p.add_argument("--dead-letter", type=Path, metavar="FILE", help="write unreadable records here")
    p.add_argument(
        "--db",
        metavar="URL",
        help="learn this store's false-positive verdicts as normal; leave out its true positives",
    )
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("replay", help="run logs through the detector in event-time order")
    inputs_options(p)
    config_options(p)
    p.add_argument("--model", type=Path, required=True, metavar="MODEL_DIR")
    p.add_argument("--out", type=Path, required=True, metavar="ALERTS.jsonl")
    p.add_argument("--dead-letter", type=Path, metavar="FILE", help="write unreadable records here")
    p.add_argument("--update-model", action="store_true", help="save the profiles learned during replay")
    p.set_defaults(handler=cmd_replay)

    p = sub.add_parser("normalize", help="convert provider logs to canonical events")
    inputs_options(p)
    p.add_argument("--out", type=Path, required=True, metavar="EVENTS.jsonl")
    p.add_argument("--dead-letter", type=Path, metavar="FILE", help="write unreadable records here")
    p.add_argument("--config", type=Path, help="YAML settings")
    p.add_argument("--no-geo", action="store_true", help="do not geolocate addresses")
    p.set_defaults(handler=cmd_normalize)

    p = sub.add_parser("evaluate", help="score alerts against labelled scenarios")
    p.add_argument("--labels", type=Path, required=True, help="labels.json as `simulate` writes it")
    p.add_argument("--alerts", type=Path, required=True, help="alerts JSONL as `replay` writes it")
    p.add_argument("--window", type=float, default=None, help="window seconds (default: from config)")
    p.add_argument("--key-hours", type=float, default=None,
                   help="exposure for the false-alert rate (default: from the labels)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--config", type=Path, help="YAML settings")
    p.add_argument("--db", metavar="URL", help="count this store's true-positive verdicts as labelled")
    p.set_defaults(handler=cmd_evaluate)


def cmd_simulate(args: argparse.Namespace) -> int:
    """Write history.jsonl, test.jsonl, labels.json and catalog.yaml."""
    print(simulate_to(args.out, keys=args.keys, days=args.days, test_days=args.test_days, seed=args.seed,
                      strength=args.strength, generator=args.generator))  # fmt: skip
    return 0


def simulate_to(
    out: Path,
    *,
    keys: int,
    days: float,
    test_days: float,
    seed: int,
    strength: float = 1.0,
    generator: str = "classic",
) -> str:
    """Simulate a labelled world into ``out``; a line that says what was written."""
    from detector.simulation.suite import GENERATORS

    if not 0 < strength <= 1:
        raise ConfigError(f"--strength must be in (0, 1], got {strength}")
    if not 0 < test_days < days:
        raise ConfigError("--test-days must be positive and shorter than --days")
    sim = GENERATORS[generator](keys=keys, history_days=days - test_days, test_days=test_days, seed=seed,
                                strength=strength)  # fmt: skip
    write_jsonl(out / "history.jsonl", (e.to_dict() for e in sim.history))
    write_jsonl(out / "test.jsonl", (e.to_dict() for e in sim.test))
    (out / "labels.json").write_text(json.dumps(sim.labels, indent=2), encoding="utf-8")
    (out / "catalog.yaml").write_text(yaml.safe_dump(sim.catalog, sort_keys=False), encoding="utf-8")
    attacks = sum(1 for s in sim.labels["scenarios"] if s["kind"] == "attack")
    return (f"simulated {len(sim.history):,} history and {len(sim.test):,} test events for {keys} keys, "
            f"{attacks} attack scenarios -> {out}")  # fmt: skip


def cmd_train(args: argparse.Namespace) -> int:
    """Learn profiles and fit the forest; write the model directory."""
    print(train_to(args.inputs, args.out, config=args.config, fmt=args.format, dead_letter=args.dead_letter,
                   db=args.db))  # fmt: skip
    return 0


def train_to(
    inputs: Sequence[Path],
    out: Path,
    *,
    config: Path | None = None,
    fmt: str = "auto",
    dead_letter: Path | None = None,
    db: str | None = None,
) -> str:
    """Learn profiles and fit the forest from ``inputs`` into the model directory ``out``.

    With ``db``, that store's verdicts teach: see :func:`_without_true_positives`.
    """
    settings = load_settings(config)
    started = time.perf_counter()
    batch = read_events(list(inputs), fmt, dead_letter)
    events, feedback = _without_true_positives(batch.events, db, config)
    gc.freeze()
    with collector_paused():
        model = train(events, settings.detection, enricher_for(settings))
    if feedback is not None:
        model.card["verdicts"] = feedback
    card = save_model(model, out, list(inputs))
    seconds = time.perf_counter() - started
    val = card["validation"]
    return (
        f"trained on {batch.summary()} in {seconds:.1f} s: {card['training']['keys']} keys, "
        f"{val['mature_windows']:,} mature windows, forest threshold {card['thresholds']['forest']}, "
        f"held-out windows flagged {val.get('holdout_flagged_share', 'n/a')} -> {out}"
    )


def _without_true_positives(
    events: list[Event], url: str | None, config: Path | None
) -> tuple[list[Event], dict[str, int] | None]:
    """With a store: leave out the events of every confirmed attack, and say what the verdicts teach.

    Training learns everything it is given as normal: a false positive's windows are learned
    (the behaviour analysts judged benign stops alerting), a true positive's are left out (an
    attack must never become normal).
    """
    if not url:
        return events, None
    attacks = verdict_spans(url, config, Verdict.TRUE_POSITIVE)
    benign = verdict_spans(url, config, Verdict.FALSE_POSITIVE)
    kept, excluded = exclude_spans(events, attacks)
    learned = exclude_spans(kept, benign)[1] if benign else 0
    print(
        f"verdicts: {len(attacks)} true-positive windows leave out {excluded:,} events; "
        f"{len(benign)} false-positive windows are learned as normal ({learned:,} events)"
    )
    return kept, {
        "true_positive_windows_excluded": len(attacks),
        "events_excluded": excluded,
        "false_positive_windows_learned": len(benign),
        "events_learned": learned,
    }


def cmd_replay(args: argparse.Namespace) -> int:
    """Replay logs through the detector; write the final state of every alert."""
    print(replay_to(args.inputs, args.model, args.out, config=args.config, catalog=args.catalog,
                    fmt=args.format, dead_letter=args.dead_letter,
                    update_model=args.update_model))  # fmt: skip
    return 0


def replay_to(
    inputs: Sequence[Path],
    model_dir: Path,
    out: Path,
    *,
    config: Path | None = None,
    catalog: Path | None = None,
    fmt: str = "auto",
    dead_letter: Path | None = None,
    update_model: bool = False,
) -> str:
    """Replay ``inputs`` through the model in ``model_dir``; write every alert's final state to ``out``."""
    settings = load_settings(config)
    model = load_model(model_dir)
    pipe = Pipeline(settings.detection, profiles=model.profiles, forest=model.forest,
                    catalog=catalog_for(catalog, settings), enricher=enricher_for(settings))  # fmt: skip
    started = time.perf_counter()
    batch = read_events(list(inputs), fmt, dead_letter)
    gc.freeze()  # the events and the model live to the end: keep the collector from rescanning them
    alerts = replay_events(pipe, batch.events)
    seconds = time.perf_counter() - started
    write_jsonl(out, (a.to_dict() for a in alerts))
    if update_model:
        update_profiles(model_dir, pipe.profiles, pipe.stats.events)
    rate = pipe.stats.events / seconds if seconds else 0.0
    return (
        f"replayed {batch.summary()} in {seconds:.1f} s ({rate:,.0f} events/s): "
        f"{pipe.stats.windows:,} windows, {pipe.stats.late} late, {len(alerts)} alerts -> {out}"
    )


def replay_events(pipe: Pipeline, events: list[Event]) -> list[Alert]:
    """Feed events through the pipeline with a progress bar on a terminal; return all alerts."""
    alerts: dict[str, Alert] = {}
    with (
        collector_paused(),
        display.progress(len(events), "replaying", enabled=sys.stderr.isatty()) as advance,
    ):
        for i in range(0, len(events), PROGRESS_EVERY):
            chunk = events[i : i + PROGRESS_EVERY]
            pipe.process(chunk)
            advance(len(chunk))
    pipe.process(())
    alerts.update((a.alert_id, a) for a in pipe.finish())
    for a in pipe.book.open.values():
        alerts.setdefault(a.alert_id, a)
    return sorted(alerts.values(), key=lambda a: (a.first_window_start, a.key_id, a.detector))


def cmd_normalize(args: argparse.Namespace) -> int:
    """Convert provider logs to canonical JSONL."""
    settings = load_settings(args.config)
    batch = read_events(args.inputs, args.format, args.dead_letter)
    enricher = None if args.no_geo else enricher_for(settings)
    events = batch.events
    if enricher is not None:
        for ev in events:
            enricher.enrich(ev)
    write_jsonl(args.out, (e.to_dict() for e in events))
    print(f"normalized {batch.summary()} -> {args.out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Print per-scenario recall, false alerts per 1000 key-hours and time to detect."""
    settings = load_settings(args.config)
    try:
        labels = json.loads(args.labels.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"labels file {args.labels} is not valid JSON: {exc}") from None
    alerts = load_alerts(args.alerts)
    if args.db:  # true-positive verdicts count as labelled detections
        extra = verdict_labels(args.db, args.config)
        labels = {**labels, "scenarios": [*labels.get("scenarios", []), *extra]}
    window = args.window or settings.window.seconds
    report = evaluate(labels, alerts, window_seconds=window, key_hours=args.key_hours)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.format_table())
    return 0


def load_alerts(path: Path) -> list[Alert]:
    """Read an alerts JSONL file."""
    alerts = []
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    alerts.append(Alert.from_dict(orjson.loads(line)))
                except (ValueError, KeyError, TypeError) as exc:
                    raise ConfigError(f"{path}:{n} is not a KeyWatch alert: {exc}") from None
    return alerts
