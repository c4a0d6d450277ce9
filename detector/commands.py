"""What each ``keywatch`` subcommand does, wiring adapters to the pure core."""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import yaml

from detector import display
from detector.adapters.geoip import MaxMindLocator
from detector.adapters.inputs import read_events
from detector.adapters.model_store import load_model, save_model, update_profiles
from detector.config import Settings, load_settings, yaml_problem
from detector.domain.alerts import Alert
from detector.domain.catalog import KeyCatalog
from detector.domain.errors import ConfigError
from detector.domain.events import Event
from detector.domain.suppressions import Verdict, exclude_spans
from detector.evaluation import evaluate
from detector.features.geo import Enricher
from detector.model_commands import verdict_labels, verdict_spans
from detector.pipeline import Pipeline
from detector.training import train

PROGRESS_EVERY = 20_000


def write_jsonl(path: Path, rows: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> int:
    """Write one JSON object per line; return how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("wb") as fh:
        for row in rows:
            fh.write(orjson.dumps(row) + b"\n")
            n += 1
    return n


def enricher_for(settings: Settings) -> Enricher:
    """Geolocation from the configured (or shipped) offline database."""
    return Enricher(MaxMindLocator(settings.geoip.mmdb_path), settings.geoip.cache_size)


def catalog_for(path: Path | None, settings: Settings) -> KeyCatalog:
    """Key catalog from YAML, or the documented defaults for every key."""
    path = path or settings.catalog
    defaults = settings.severity.catalog_defaults.model_dump()
    if path is None:
        return KeyCatalog.from_mapping(None, defaults)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"key catalog {path} is not valid YAML: {yaml_problem(exc)}") from None
    return KeyCatalog.from_mapping(data, defaults)


def cmd_simulate(args: argparse.Namespace) -> int:
    """Write history.jsonl, test.jsonl, labels.json and catalog.yaml."""
    from detector.simulation.suite import GENERATORS

    strength = getattr(args, "strength", 1.0)  # the demo calls this with the classic defaults
    if not 0 < strength <= 1:
        raise ConfigError(f"--strength must be in (0, 1], got {strength}")
    if not 0 < args.test_days < args.days:
        raise ConfigError("--test-days must be positive and shorter than --days")
    generate = GENERATORS[getattr(args, "generator", "classic")]
    history_days = args.days - args.test_days
    sim = generate(keys=args.keys, history_days=history_days, test_days=args.test_days, seed=args.seed,
                   strength=strength)  # fmt: skip
    out: Path = args.out
    write_jsonl(out / "history.jsonl", (e.to_dict() for e in sim.history))
    write_jsonl(out / "test.jsonl", (e.to_dict() for e in sim.test))
    (out / "labels.json").write_text(json.dumps(sim.labels, indent=2), encoding="utf-8")
    (out / "catalog.yaml").write_text(yaml.safe_dump(sim.catalog, sort_keys=False), encoding="utf-8")
    attacks = sum(1 for s in sim.labels["scenarios"] if s["kind"] == "attack")
    print(
        f"simulated {len(sim.history):,} history and {len(sim.test):,} test events for {args.keys} keys, "
        f"{attacks} attack scenarios -> {out}"
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Learn profiles and fit the forest; write the model directory."""
    settings = load_settings(args.config)
    started = time.perf_counter()
    batch = read_events(args.inputs, args.format, args.dead_letter)
    events, feedback = _without_true_positives(batch.events, args)
    gc.freeze()
    with collector_paused():
        model = train(events, settings.detection, enricher_for(settings))
    if feedback is not None:
        model.card["verdicts"] = feedback
    card = save_model(model, args.out, list(args.inputs))
    seconds = time.perf_counter() - started
    val = card["validation"]
    print(
        f"trained on {batch.summary()} in {seconds:.1f} s: {card['training']['keys']} keys, "
        f"{val['mature_windows']:,} mature windows, forest threshold {card['thresholds']['forest']}, "
        f"held-out windows flagged {val.get('holdout_flagged_share', 'n/a')} -> {args.out}"
    )
    return 0


def _without_true_positives(
    events: list[Event], args: argparse.Namespace
) -> tuple[list[Event], dict[str, int] | None]:
    """With ``--db``: leave out the events of every confirmed attack, and say what the verdicts teach.

    Training learns everything it is given as normal: a false positive's windows are learned
    (the behaviour analysts judged benign stops alerting), a true positive's are left out (an
    attack must never become normal).
    """
    url = getattr(args, "db", None)
    if not url:
        return events, None
    attacks = verdict_spans(url, args.config, Verdict.TRUE_POSITIVE)
    benign = verdict_spans(url, args.config, Verdict.FALSE_POSITIVE)
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
    settings = load_settings(args.config)
    model = load_model(args.model)
    pipe = Pipeline(settings.detection, profiles=model.profiles, forest=model.forest,
                    catalog=catalog_for(args.catalog, settings), enricher=enricher_for(settings))  # fmt: skip
    started = time.perf_counter()
    batch = read_events(args.inputs, args.format, args.dead_letter)
    gc.freeze()  # the events and the model live to the end: keep the collector from rescanning them
    alerts = replay_events(pipe, batch.events)
    seconds = time.perf_counter() - started
    write_jsonl(args.out, (a.to_dict() for a in alerts))
    if getattr(args, "update_model", False):
        update_profiles(args.model, pipe.profiles, pipe.stats.events)
    rate = pipe.stats.events / seconds if seconds else 0.0
    print(
        f"replayed {batch.summary()} in {seconds:.1f} s ({rate:,.0f} events/s): "
        f"{pipe.stats.windows:,} windows, {pipe.stats.late} late, {len(alerts)} alerts -> {args.out}"
    )
    return 0


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: windows, features and alerts hold no reference cycles,
    so reference counting frees them, and the collector's rescans cost a third of a replay."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


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
    if getattr(args, "db", None):  # true-positive verdicts count as labelled detections
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


def cmd_demo(args: argparse.Namespace) -> int:
    """Simulate, train, then stream through Kafka (or replay with ``--offline``); evaluate and show."""
    if not args.offline:
        from detector.live_demo import run_live_demo

        return run_live_demo(args)
    work: Path = args.workdir
    data, model_dir = work / "data", work / "model"
    steps = display.Steps()
    with steps.step("simulate"):
        cmd_simulate(argparse.Namespace(out=data, keys=args.keys, days=args.days, seed=args.seed,
                                        test_days=args.test_days))  # fmt: skip
    catalog = args.catalog or data / "catalog.yaml"
    with steps.step("train"):
        cmd_train(argparse.Namespace(inputs=[data / "history.jsonl"], format="auto", config=args.config,
                                     out=model_dir, dead_letter=None))  # fmt: skip
    with steps.step("replay"):
        cmd_replay(argparse.Namespace(inputs=[data / "test.jsonl"], format="auto", config=args.config,
                                      catalog=catalog, model=model_dir, out=work / "alerts.jsonl",
                                      dead_letter=work / "dead-letter.jsonl"))  # fmt: skip
    settings = load_settings(args.config)
    labels = json.loads((data / "labels.json").read_text(encoding="utf-8"))
    alerts = load_alerts(work / "alerts.jsonl")
    report = evaluate(labels, alerts, window_seconds=settings.window.seconds)
    print()
    print(report.format_table())
    display.top_alerts(alerts, args.top)
    print(f"\nfiles in {work}: data/ (history, test, labels, catalog), model/, alerts.jsonl")
    return 0
