"""Shared set-up of the streaming tests: a trained model, topics, and consumers in and out of process."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from detector.adapters.broker import create_topics
from detector.adapters.kafka_consumer import DetectorService, RunTotals
from detector.adapters.kafka_producer import event_producer, send_events
from detector.adapters.model_store import save_model
from detector.adapters.pipeline_builder import PipelineBuilder
from detector.adapters.store import Store
from detector.config import KafkaSettings, MetricsSettings, Settings, StoreSettings
from detector.domain.alerts import Alert
from detector.domain.catalog import KeyCatalog
from detector.features.geo import Enricher
from detector.simulation.classic import simulate
from detector.simulation.result import Simulation
from detector.training import train

PARTITIONS = 3


@dataclass(frozen=True)
class World:
    """Simulated traffic with labelled attacks and the model trained on its history."""

    sim: Simulation
    model_dir: Path
    catalog_path: Path


def make_world(root: Path, keys: int = 8, seed: int = 5) -> World:
    sim = simulate(keys=keys, days=2.5, test_days=0.5, seed=seed)
    settings = Settings()
    model = train(sim.history, settings.detection, Enricher(None))
    model_dir = root / "model"
    save_model(model, model_dir, [])
    catalog = root / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(sim.catalog), encoding="utf-8")
    return World(sim, model_dir, catalog)


def names() -> tuple[str, str]:
    """A fresh topic and group per test, so tests sharing a broker never see each other."""
    tag = uuid.uuid4().hex[:10]
    return f"events-{tag}", f"group-{tag}"


def settings_for(bootstrap: str, topic: str, group: str, db_url: str, **kafka: object) -> Settings:
    k = {
        "bootstrap_servers": bootstrap,
        "topic": topic,
        "group": group,
        "alerts_topic": f"{topic}.alerts",
        "deadletter_topic": f"{topic}.deadletter",
        "idle_flush_seconds": 1.0,
        "session_timeout_ms": 6000,
        "max_poll_interval_ms": 20000,
        "checkpoint_interval_seconds": 0.5,
        "max_poll_records": 500,
        "workers": 0,  # in the member's process unless a test asks for workers (as the worker tests do)
        **kafka,
    }
    return Settings().model_copy(
        update={
            "kafka": KafkaSettings(**k),
            "store": StoreSettings(url=db_url),
            "metrics": MetricsSettings(port=0),
        }
    )


def make_topics(settings: Settings) -> None:
    k = settings.kafka
    create_topics(k.bootstrap_servers, {k.topic: PARTITIONS, k.alerts_topic: 1, k.deadletter_topic: 1})


def produce(settings: Settings, sim: Simulation, start: int = 0, stop: int | None = None) -> int:
    producer = event_producer(settings.kafka.bootstrap_servers)
    n = send_events(producer, settings.kafka.topic, sim.test[start:stop])
    producer.flush()
    producer.close()
    return n


def pipeline_factory(world: World, settings: Settings) -> PipelineBuilder:
    catalog = KeyCatalog.from_mapping(yaml.safe_load(world.catalog_path.read_text()), {})
    return PipelineBuilder(settings.detection, world.model_dir, catalog).load()


class InProcess:
    """A consumer-group member on a thread of this process."""

    def __init__(self, world: World, settings: Settings, *, idle_exit: float | None = 4.0) -> None:
        store = Store(settings.store.url)
        store.migrate()
        self.store = store
        self.service = DetectorService(settings, pipeline_factory(world, settings), store)
        self.stop = threading.Event()
        self.totals: RunTotals | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(idle_exit,), daemon=True)

    def _run(self, idle_exit: float | None) -> None:
        try:
            self.totals = self.service.run(self.stop, idle_exit_seconds=idle_exit)
        except BaseException as exc:  # surfaced by join()
            self.error = exc

    def start(self) -> InProcess:
        self.thread.start()
        return self

    def join(self, timeout: float = 180.0) -> RunTotals:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "consumer did not finish"
        self.store.close()
        if self.error is not None:
            raise self.error
        assert self.totals is not None
        return self.totals


def start_process(
    world: World, settings: Settings, log: Path, idle_exit: float = 4.0
) -> subprocess.Popen[bytes]:
    """``keywatch run`` as its own process, configured through the environment only."""
    k = settings.kafka
    env = {
        **os.environ,
        "KEYWATCH_KAFKA__BOOTSTRAP_SERVERS": k.bootstrap_servers,
        "KEYWATCH_KAFKA__TOPIC": k.topic,
        "KEYWATCH_KAFKA__GROUP": k.group,
        "KEYWATCH_KAFKA__ALERTS_TOPIC": k.alerts_topic,
        "KEYWATCH_KAFKA__DEADLETTER_TOPIC": k.deadletter_topic,
        "KEYWATCH_KAFKA__IDLE_FLUSH_SECONDS": str(k.idle_flush_seconds),
        "KEYWATCH_KAFKA__SESSION_TIMEOUT_MS": str(k.session_timeout_ms),
        "KEYWATCH_KAFKA__MAX_POLL_INTERVAL_MS": str(k.max_poll_interval_ms),
        "KEYWATCH_KAFKA__CHECKPOINT_INTERVAL_SECONDS": str(k.checkpoint_interval_seconds),
        "KEYWATCH_KAFKA__MAX_POLL_RECORDS": str(k.max_poll_records),
        "KEYWATCH_KAFKA__WORKERS": str(k.workers),
        "KEYWATCH_STORE__URL": settings.store.url,
        "KEYWATCH_MODEL": str(world.model_dir),
        "KEYWATCH_METRICS__PORT": "0",
        "KEYWATCH_GEOIP__CACHE_SIZE": "0",
    }
    cmd = [sys.executable, "-m", "detector.cli", "-v", "run", "--catalog", str(world.catalog_path),
           "--idle-exit", str(idle_exit)]  # fmt: skip
    return subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def stored_alerts(db_url: str) -> dict[str, dict[str, object]]:
    store = Store(db_url)
    try:
        return {a.alert_id: _comparable(a) for a in store.list_alerts(limit=1_000_000)}
    finally:
        store.close()


def _comparable(a: Alert) -> dict[str, object]:
    d = a.to_dict()
    d["event_ids"] = sorted(d["event_ids"])  # type: ignore[arg-type]
    return d
