"""``keywatch run`` and ``keywatch health``: the streaming consumer and its reachability check."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path
from typing import Any

from detector.adapters.broker import BrokerError, wait_until_answers
from detector.adapters.kafka_consumer import DetectorService
from detector.adapters.metrics import ConsumerMetrics
from detector.adapters.pipeline_builder import PipelineBuilder
from detector.adapters.store import Store
from detector.adapters.store.feedback import FeedbackRepository
from detector.cli.wiring import catalog_for
from detector.config import Settings, load_settings
from detector.domain.errors import ConfigError, KeyWatchError

log = logging.getLogger(__name__)


def add_parsers(sub: Any) -> None:
    """Register ``run`` and ``health``."""
    p = sub.add_parser("run", help="consume key-usage logs from Kafka and store alerts (consumer group)")
    _kafka_flags(p)
    p.add_argument("--model", type=Path, metavar="MODEL_DIR", help="trained model (default: config `model`)")
    p.add_argument("--db", metavar="URL", help="alert store URL (default: config `store.url`)")
    p.add_argument("--format", default="auto", help="input format of the topic (default: auto, per record)")
    p.add_argument("--catalog", type=Path, help="key catalog YAML")
    p.add_argument("--metrics-port", type=int, help="Prometheus port (default: config; 0: off)")
    p.add_argument("--idle-exit", type=float, metavar="SECONDS", help="stop after this long without messages")
    p.add_argument(
        "--workers", type=_workers, metavar="N",
        help="detector processes beside this member (default: config `kafka.workers`, 1; 0: detect in "
        "this process, for a host with one core)",
    )  # fmt: skip
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("health", help="say whether the broker and the store are reachable")
    _kafka_flags(p)
    p.add_argument("--db", metavar="URL", help="alert store URL (default: config `store.url`)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the broker")
    p.set_defaults(handler=cmd_health)


def _kafka_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="YAML settings")
    p.add_argument("--bootstrap-servers", metavar="HOST:PORT[,...]")
    p.add_argument("--topic", help="events topic (default: keywatch.events)")
    p.add_argument("--group", help="consumer group (default: keywatch-detector)")


def _workers(text: str) -> int:
    """``--workers``: a count from 0 to 64, as ``kafka.workers`` allows."""
    try:
        count = int(text)
    except ValueError:
        count = -1
    if not 0 <= count <= 64:
        raise argparse.ArgumentTypeError(f"expected a number of processes from 0 to 64, got {text!r}")
    return count


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from config file and environment, overridden by the command-line flags given."""
    settings = load_settings(args.config)
    kafka: dict[str, object] = {
        name: value
        for name, value in (
            ("bootstrap_servers", args.bootstrap_servers),
            ("topic", args.topic),
            ("group", args.group),
        )
        if value
    }
    if getattr(args, "workers", None) is not None:
        kafka["workers"] = args.workers
    update: dict[str, Any] = {}
    if kafka:
        update["kafka"] = settings.kafka.model_copy(update=kafka)
    if getattr(args, "db", None):
        update["store"] = settings.store.model_copy(update={"url": args.db})
    if getattr(args, "metrics_port", None) is not None:
        update["metrics"] = settings.metrics.model_copy(update={"port": args.metrics_port})
    return settings.model_copy(update=update) if update else settings


def cmd_run(args: argparse.Namespace) -> int:
    """Run one member of the detector consumer group until SIGTERM/SIGINT."""
    settings = settings_from(args)
    store = Store.from_settings(settings)
    store.migrate()
    model_dir = model_dir_for(args.model or settings.model, store)
    build = PipelineBuilder(
        settings.detection, model_dir, catalog_for(args.catalog, settings), settings.geoip
    )
    build.load()  # a bad model or GeoIP database is one clear error before anything connects
    if settings.kafka.workers:
        build.release()  # the workers load their own; the member only polls, stores and commits
    metrics = ConsumerMetrics()
    metrics.serve(settings.metrics.host, settings.metrics.port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    service = DetectorService(settings, build, store, fmt=args.format, metrics=metrics, settle=True)
    k = settings.kafka
    print(f"keywatch run: {k.bootstrap_servers} topic {k.topic} group {k.group} -> {_safe_url(store)}",
          flush=True)  # fmt: skip
    totals = service.run(stop, idle_exit_seconds=args.idle_exit)
    store.close()
    print(
        f"consumed {totals.messages:,} messages ({totals.events:,} events, {totals.skipped:,} skipped): "
        f"{totals.alerts:,} alert writes, {totals.dead_letters:,} dead letters, "
        f"{totals.checkpoints} checkpoints, {totals.restored} partitions restored",
        flush=True,
    )
    return 0


def model_dir_for(given: Path | None, store: Store) -> Path:
    """The model to run: the one named, else the version an admin activated in the registry."""
    if given is not None:
        return given
    active = FeedbackRepository(store).active_model()
    if active is None:
        raise ConfigError(
            "no model: pass --model MODEL_DIR, set `model` (KEYWATCH_MODEL) or activate a registered one"
        )
    return Path(active.path)


def cmd_health(args: argparse.Namespace) -> int:
    """Check the broker and the store; exit 0 only when both answer."""
    settings = settings_from(args)
    ok = True
    try:
        wait_until_answers(settings.kafka.bootstrap_servers, args.timeout)
        print(f"broker  ok    {settings.kafka.bootstrap_servers}")
    except BrokerError as exc:
        ok = False
        print(f"broker  FAIL  {exc}")
    try:
        store = Store.from_settings(settings)
        store.ping()
        print(f"store   ok    {_safe_url(store)}")
        store.close()
    except KeyWatchError as exc:
        ok = False
        print(f"store   FAIL  {exc}")
    return 0 if ok else 1


def _safe_url(store: Store) -> str:
    """The store URL without its password."""
    return store.safe_url
