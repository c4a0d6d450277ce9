"""The consumer group on the real embedded broker and real databases.

A reference run (one consumer, never disturbed) gives the alerts the simulated attacks should
raise; runs that are killed, rebalanced or see the broker frozen must store exactly the same
alerts: none lost, none twice.
"""

from __future__ import annotations

import base64
import json
import signal
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import orjson
import psutil
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from streaming_support import (
    PARTITIONS,
    InProcess,
    World,
    make_topics,
    make_world,
    names,
    produce,
    settings_for,
    start_process,
    stored_alerts,
    wait_for,
)

from detector.adapters.broker import EmbeddedBroker
from detector.adapters.kafka_producer import event_producer, send_raw
from detector.adapters.store import Store
from detector.config import Settings
from detector.evaluation import evaluate

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(log_path=tmp_path_factory.mktemp("broker") / "broker.log") as b:
        yield b


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="module")
def reference(broker: EmbeddedBroker, world: World, tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[type-arg]
    """Alerts of an undisturbed run on SQLite."""
    topic, group = names()
    url = f"sqlite:///{tmp_path_factory.mktemp('ref') / 'ref.db'}"
    settings = settings_for(broker.bootstrap, topic, group, url)
    make_topics(settings)
    produce(settings, world.sim)
    totals = InProcess(world, settings).start().join()
    assert totals.events == len(world.sim.test)
    alerts = stored_alerts(url)
    report = evaluate(world.sim.labels, [_alert(a) for a in alerts.values()])
    assert report.overall_recall >= 0.9, report.format_table()
    return alerts


def _alert(d: dict) -> object:  # type: ignore[type-arg]
    from detector.domain.alerts import Alert

    return Alert.from_dict(d)


def _committed(settings: Settings) -> int:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    try:
        offsets = admin.list_group_offsets(settings.kafka.group).get(settings.kafka.group, {})
    finally:
        admin.close()
    return sum(o.offset for tp, o in offsets.items() if tp.topic == settings.kafka.topic and o.offset > 0)


def _read_topic(bootstrap: str, topic: str, expect: int, timeout: float = 20.0) -> list[bytes]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    consumer.assign([TopicPartition(topic, 0)])
    consumer.seek_to_beginning()
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(values) < expect and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            values.extend(r.value for r in records)
    consumer.close()
    return values


def test_records_in_alerts_out_and_dead_letters(
    broker: EmbeddedBroker,
    world: World,
    db_url: str,
    reference: dict,  # type: ignore[type-arg]
) -> None:
    topic, group = names()
    settings = settings_for(broker.bootstrap, topic, group, db_url)
    make_topics(settings)
    cloudtrail = [p.read_bytes() for p in sorted((FIXTURES / "cloudtrail").glob("kms_*.json"))]
    bad = [b"{not json", b'{"who": "knows"}', b"\xff\xfe\x00 <script>", b"[" * 100_000]
    producer = event_producer(broker.bootstrap)
    send_raw(producer, topic, [(b"fixture", raw) for raw in cloudtrail])
    send_raw(producer, topic, [(b"bad", raw) for raw in bad])
    producer.flush()
    produce(settings, world.sim)

    totals = InProcess(world, settings).start().join()

    assert totals.dead_letters == len(bad)
    assert totals.events >= len(world.sim.test) + len(cloudtrail)
    stored = stored_alerts(db_url)
    assert set(reference) <= set(stored), "the attacks alert as in the reference run"
    published = {
        json.loads(v)["alert_id"] for v in _read_topic(broker.bootstrap, f"{topic}.alerts", len(stored))
    }
    assert published == set(stored)
    letters = [orjson.loads(v) for v in _read_topic(broker.bootstrap, f"{topic}.deadletter", len(bad))]
    assert sorted(base64.b64decode(d["raw_b64"]) for d in letters) == sorted(bad)
    for d in letters:
        assert d["topic"] == topic and isinstance(d["partition"], int) and isinstance(d["offset"], int)
        assert d["error"]
    store = Store(db_url)
    assert store.count_dead_letters() == len(bad)
    assert store.list_incidents(limit=1000), "alerts are grouped into incidents"
    store.close()


@pytest.mark.parametrize("workers", [0, 1], ids=["in-process", "worker-process"])
def test_sigkill_mid_stream_then_restart_alerts_exactly_once(
    broker: EmbeddedBroker,
    world: World,
    reference: dict,  # type: ignore[type-arg]
    tmp_path: Path,
    workers: int,
    postgres_url: str,
) -> None:
    topic, group = names()
    url = postgres_url
    settings = settings_for(broker.bootstrap, topic, group, url, workers=workers)
    make_topics(settings)
    total = produce(settings, world.sim)
    log = tmp_path / "consumer.log"

    first = start_process(world, settings, log)
    wait_for(lambda: _committed(settings) >= total // 3, 120, "a third of the stream committed")
    helpers = psutil.Process(first.pid).children()  # detector workers (and multiprocessing's tracker)
    assert sum("resource_tracker" not in " ".join(h.cmdline()) for h in helpers) == workers
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert _committed(settings) < total, "killed mid-stream"
    _, alive = psutil.wait_procs(helpers, timeout=10)
    assert not alive, "a detector worker outlived its member"

    second = start_process(world, settings, log)
    assert second.wait(180) == 0, log.read_text()
    assert "partitions restored" in log.read_text()
    assert stored_alerts(settings.store.url) == reference


def test_sigterm_stops_a_member_and_its_worker_cleanly(
    broker: EmbeddedBroker, world: World, tmp_path: Path
) -> None:
    """As ``docker stop`` or systemd would: the last batch stored and committed, every state saved."""
    topic, group = names()
    settings = settings_for(broker.bootstrap, topic, group, f"sqlite:///{tmp_path / 'term.db'}", workers=1)
    make_topics(settings)
    total = produce(settings, world.sim)
    log = tmp_path / "consumer.log"
    member = start_process(world, settings, log, idle_exit=600)
    wait_for(lambda: _committed(settings) >= total // 4, 120, "a quarter of the stream committed")
    children = psutil.Process(member.pid).children()
    helpers = [h for h in children if "resource_tracker" not in " ".join(h.cmdline())]
    assert len(helpers) == 1
    for proc in (member, *helpers):  # systemd signals the whole group; workers leave stopping to the member
        proc.send_signal(signal.SIGTERM)
    assert member.wait(60) == 0, log.read_text()
    _, alive = psutil.wait_procs(helpers, timeout=10)
    assert not alive, "the worker outlived its member"
    assert "consumed" in log.read_text() and "Traceback" not in log.read_text()


@pytest.mark.parametrize("workers", [0, 1], ids=["in-process", "worker-process"])
def test_two_consumers_and_a_rebalance(
    broker: EmbeddedBroker,
    world: World,
    reference: dict,  # type: ignore[type-arg]
    tmp_path: Path,
    workers: int,
) -> None:
    topic, group = names()
    url = f"sqlite:///{tmp_path / 'two.db'}"
    # no idle closing while the test holds the stream back: windows close by event time only
    settings = settings_for(broker.bootstrap, topic, group, url, idle_flush_seconds=3600.0, workers=workers)
    make_topics(settings)
    half = len(world.sim.test) // 2
    produce(settings, world.sim, 0, half)
    first = InProcess(world, settings, idle_exit=None).start()
    wait_for(lambda: _committed(settings) >= half // 2, 120, "the first consumer under way")
    second = InProcess(world, settings, idle_exit=None).start()  # joining forces a rebalance
    wait_for(lambda: len(first.service.owned) < PARTITIONS, 60, "the partitions split")
    assert second.service.owned or len(first.service.owned) < PARTITIONS
    produce(settings, world.sim, half)
    wait_for(lambda: _committed(settings) >= len(world.sim.test), 180, "both caught up")
    # one after the other: the embedded broker (Tansu) can wedge a group whose last two members
    # leave at the same moment (every later SyncGroup then fails with "coordinator rebalance")
    first.stop.set()
    a = first.join()
    second.stop.set()
    b = second.join()
    assert a.messages + b.messages >= len(world.sim.test)
    assert a.restored + b.restored >= 1, "state moved with a partition"
    # a last member takes every partition over from the checkpoints and closes the final windows
    last = settings_for(broker.bootstrap, topic, group, url, workers=workers)
    finisher = InProcess(world, last).start().join()
    assert finisher.restored == PARTITIONS
    assert stored_alerts(url) == reference


def test_a_restored_partition_closes_its_open_windows_without_new_records(
    broker: EmbeddedBroker, world: World, tmp_path: Path
) -> None:
    """A member that takes a partition over at the end of its stream still closes the last windows."""
    topic, group = names()
    url = f"sqlite:///{tmp_path / 'restored.db'}"
    holding = settings_for(broker.bootstrap, topic, group, url, idle_flush_seconds=3600.0)
    make_topics(holding)
    total = produce(holding, world.sim)
    first = InProcess(world, holding, idle_exit=None).start()
    wait_for(lambda: _committed(holding) >= total, 120, "the stream consumed")
    first.stop.set()
    first.join()
    assert _open_windows(holding) > 0, "the first member left windows open in its checkpoints"
    finisher = InProcess(world, settings_for(broker.bootstrap, topic, group, url)).start().join()
    assert finisher.restored == PARTITIONS and finisher.messages == 0
    assert _open_windows(holding) == 0


def _open_windows(settings: Settings) -> int:
    store = Store(settings.store.url)
    try:
        k = settings.kafka
        saved = [store.load_checkpoint(k.group, k.topic, p) for p in range(PARTITIONS)]
    finally:
        store.close()
    states = [json.loads(zlib.decompress(c.state)) for c in saved if c is not None]
    return sum(len(bucket) for state in states for _, bucket in state["open"])


def test_broker_frozen_for_30_s_then_caught_up(
    broker: EmbeddedBroker,
    world: World,
    reference: dict,
    tmp_path: Path,  # type: ignore[type-arg]
) -> None:
    topic, group = names()
    url = f"sqlite:///{tmp_path / 'frozen.db'}"
    settings = settings_for(broker.bootstrap, topic, group, url, max_poll_records=200)
    make_topics(settings)
    total = produce(settings, world.sim)
    consumer = InProcess(world, settings, idle_exit=None).start()
    wait_for(lambda: _committed(settings) >= total // 4, 120, "the consumer under way")
    broker.freeze()
    try:
        time.sleep(30)
        assert consumer.thread.is_alive(), "the consumer waits the outage out"
    finally:
        broker.thaw()
    wait_for(lambda: _committed(settings) >= total, 180, "the consumer caught up")
    time.sleep(settings.kafka.idle_flush_seconds + 3)
    consumer.stop.set()
    totals = consumer.join()
    assert totals.events >= total
    assert stored_alerts(url) == reference


def test_health_says_what_is_reachable(
    broker: EmbeddedBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from detector.adapters.broker import free_port
    from detector.cli.main import main

    db = f"sqlite:///{tmp_path / 'h.db'}"
    assert main(["health", "--bootstrap-servers", broker.bootstrap, "--db", db]) == 0
    out = capsys.readouterr().out
    assert "broker  ok" in out and "store   ok" in out
    dead = f"127.0.0.1:{free_port()}"
    assert main(["health", "--bootstrap-servers", dead, "--db", db, "--timeout", "1"]) == 1
    assert "broker  FAIL" in capsys.readouterr().out


def test_metrics_are_exposed(broker: EmbeddedBroker, world: World, tmp_path: Path) -> None:
    import urllib.request

    from detector.adapters.broker import free_port

    topic, group = names()
    settings = settings_for(broker.bootstrap, topic, group, f"sqlite:///{tmp_path / 'm.db'}")
    make_topics(settings)
    produce(settings, world.sim, 0, 5000)
    member = InProcess(world, settings)
    port = free_port()
    member.service.metrics.serve("127.0.0.1", port)
    member.start().join()
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert "keywatch_events_total 5000.0" in text
    assert "keywatch_batch_seconds_count" in text
    assert 'keywatch_consumer_lag{partition="0"} 0.0' in text
    assert "keywatch_checkpoints_total" in text


def test_run_without_a_model_is_one_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from detector.cli.main import main

    db = f"sqlite:///{tmp_path / 'none.db'}"
    assert main(["run", "--bootstrap-servers", "127.0.0.1:1", "--db", db]) == 2
    assert "no model" in capsys.readouterr().err


def test_run_takes_the_activated_model(world: World, tmp_path: Path) -> None:
    from detector.adapters.model_store import load_model
    from detector.adapters.store.feedback import FeedbackRepository
    from detector.cli.stream import model_dir_for

    store = Store(f"sqlite:///{tmp_path / 'models.db'}")
    store.migrate()
    card = load_model(world.model_dir).card
    FeedbackRepository(store).register_model(str(world.model_dir), card, activate=True)
    assert model_dir_for(None, store) == world.model_dir
    assert model_dir_for(tmp_path, store) == tmp_path, "a named model wins"
    store.close()
