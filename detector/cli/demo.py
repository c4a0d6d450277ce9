"""``keywatch demo``: simulated key usage streamed through Kafka into stored alerts, contained.

Starts the embedded broker, creates the topics, trains on simulated history, launches
``keywatch run`` consumers (a real consumer group, as separate processes), plays the test days
with their attacks in accelerated time, shows alerts as they arrive on ``keywatch.alerts``, and
ends with a summary: events, alerts, incidents, dead letters and detection figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from kafka import KafkaConsumer, TopicPartition
from pydantic import SecretStr
from rich.live import Live
from rich.table import Table

from detector.adapters.audit import Ledger, generate_signing_key, load_signing_key
from detector.adapters.broker import EmbeddedBroker, create_topics, free_port
from detector.adapters.inputs import read_events
from detector.adapters.kafka_producer import event_producer, paced, send_events, send_raw
from detector.adapters.keys.softhsm import make_token
from detector.adapters.responder import BackendRouter, Responder, default_playbooks_dir, load_library
from detector.adapters.slack.notifier import SlackNotifier
from detector.adapters.slack.outbox import list_messages
from detector.adapters.store import Store
from detector.adapters.store.engine import private_file
from detector.adapters.store.users import UserRepository
from detector.api import create_app
from detector.cli import display
from detector.cli.detection import config_options, load_alerts, replay_to, simulate_to, train_to
from detector.cli.serve import server_config
from detector.cli.wiring import runner_for
from detector.config import Settings, load_settings
from detector.domain.alerts import Alert
from detector.domain.users import Role
from detector.evaluation import evaluate
from detector.response.playbook import Mode
from detector.response.runner import PlaybookRunner

PARTITIONS = 4
BAD_RECORDS: Sequence[bytes] = (
    b'{"Records": [{"eventSource": "kms.amazonaws.com", "eventName": ',  # cut off mid-record
    b'{"hello": "a format nobody logs"}',
    b"\x00\xff<script>alert(1)</script>",
)


def add_parsers(sub: Any) -> None:
    """Register ``demo``."""
    p = sub.add_parser("demo", help="simulate, train, replay and evaluate end to end")
    p.add_argument("--workdir", type=Path, default=Path(".demo"))
    p.add_argument("--keys", type=int, default=40)
    p.add_argument("--days", type=float, default=5.0)
    p.add_argument("--test-days", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--offline", action="store_true", help="replay files instead of streaming through Kafka")
    p.add_argument("--consumers", type=int, default=2, help="keywatch run processes in the group")
    p.add_argument("--play-seconds", type=float, default=60.0, help="wall time to play the test days in")
    config_options(p)
    p.set_defaults(handler=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    """Simulate, train, then stream through Kafka (or replay with ``--offline``); evaluate and show."""
    return run_offline_demo(args) if args.offline else run_live_demo(args)


def _prepare(args: argparse.Namespace, work: Path, steps: display.Steps) -> tuple[Path, Path]:
    """Simulate the demo's world and train on its history; its data and model directories."""
    data, model_dir = work / "data", work / "model"
    with steps.step("simulate"):
        print(simulate_to(data, keys=args.keys, days=args.days, test_days=args.test_days, seed=args.seed))
    with steps.step("train"):
        print(train_to([data / "history.jsonl"], model_dir, config=args.config))
    return data, model_dir


def run_offline_demo(args: argparse.Namespace) -> int:
    """Simulate, train, replay the test days from files, evaluate and show the top alerts."""
    work: Path = args.workdir
    steps = display.Steps()
    data, model_dir = _prepare(args, work, steps)
    with steps.step("replay"):
        print(replay_to([data / "test.jsonl"], model_dir, work / "alerts.jsonl", config=args.config,
                        catalog=args.catalog or data / "catalog.yaml",
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


def run_live_demo(args: argparse.Namespace) -> int:
    """Simulate, train, stream through the broker and summarise; see the module docstring."""
    work: Path = args.workdir.resolve()
    steps = display.Steps()
    data, model_dir = _prepare(args, work, steps)
    db_path = work / "keywatch.db"
    db_path.unlink(missing_ok=True)
    settings = load_settings(args.config)
    k = settings.kafka
    events = read_events([data / "test.jsonl"], "canonical", None).events
    with steps.step("hsm"):
        settings = _response_settings(settings, work, sorted({e.key_id for e in events}))
    span = events[-1].ts - events[0].ts if events else 1.0
    speedup = max(span / args.play_seconds, 1.0)
    with EmbeddedBroker(log_path=work / "broker.log") as broker:
        create_topics(broker.bootstrap, {k.topic: PARTITIONS, k.alerts_topic: 1, k.deadletter_topic: 1})
        display.console.print(
            f"[bold]== stream[/bold]  broker {broker.bootstrap}, {PARTITIONS} partitions, "
            f"{args.consumers} consumers, {len(events):,} events at {speedup:,.0f}x"
        )
        consumers = [
            _start_consumer(work, i, broker.bootstrap, model_dir, db_path, data, args)
            for i in range(args.consumers)
        ]
        store = Store(f"sqlite:///{db_path}")
        store.migrate()
        runner = runner_for(settings, store, args.catalog or data / "catalog.yaml")
        responder = Responder(
            store,
            runner,
            load_library(default_playbooks_dir()),
            Mode.STAGED,
            SlackNotifier(store, settings.slack.default_channel),
        )
        stop = threading.Event()
        respond = threading.Thread(target=responder.run_forever, args=(stop, 0.25), daemon=True)
        respond.start()
        console = _console(settings, store, work)
        started = time.perf_counter()
        seen = _stream(broker.bootstrap, k.topic, k.alerts_topic, events, speedup, consumers)
        seconds = time.perf_counter() - started
        stop.set()
        respond.join(30)
        responder.tick()
    contained = _containment(store, runner, settings, work)
    alerts = store.list_alerts(limit=1_000_000)
    incidents = store.list_incidents(limit=1_000_000)
    letters = store.count_dead_letters()
    labels = json.loads((data / "labels.json").read_text(encoding="utf-8"))
    report = evaluate(labels, alerts, window_seconds=settings.window.seconds)
    print()
    print(report.format_table())
    display.top_alerts(alerts, args.top)
    display.console.print(
        f"\nstreamed {len(events):,} events (+{len(BAD_RECORDS)} malformed) in {seconds:.1f} s: "
        f"{len(alerts)} alerts ({seen} alert messages on {k.alerts_topic}), {len(incidents)} incidents, "
        f"{letters} dead letters\n{contained}\n"
        f"store: {db_path}  (keywatch alerts list / incidents list / playbook runs --db sqlite:///{db_path})\n"
        f"consumer logs: {work}/consumer-*.log"
    )
    _keep_console(console, store, responder)
    return 0


@dataclass
class _Console:
    url: str
    server: uvicorn.Server
    thread: threading.Thread
    tokens: dict[str, str]


def _console(settings: Settings, store: Store, work: Path) -> _Console:
    """The API and SOC console on a free loopback port, with a responder and an analyst to log in as."""
    users = UserRepository(store)
    tokens = {}
    for name, role in (("rita", Role.RESPONDER), ("rob", Role.RESPONDER), ("ann", Role.ANALYST)):
        users.add(name, role)
        tokens[name] = users.issue_token(name)
    port = free_port()
    config = server_config(create_app(settings, store), settings, "127.0.0.1", port)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}/console/"
    secrets = work / "console-tokens.txt"
    secrets.unlink(missing_ok=True)
    secrets.touch(mode=0o600)  # tokens never sit in a readable file
    secrets.write_text("".join(f"{name}: {token}\n" for name, token in tokens.items()), encoding="utf-8")
    display.console.print(f"   console: {url}  (log in with a token from {secrets})")
    return _Console(url, server, thread, tokens)


def _keep_console(console: _Console, store: Store, responder: Responder) -> None:
    """On a terminal, keep the console (and the responder) up until Enter; elsewhere stop it now."""
    if sys.stdin.isatty():
        display.console.print(f"\nconsole: {console.url}  — press Enter to stop")
        stop = threading.Event()
        loop = threading.Thread(target=responder.run_forever, args=(stop, 0.25), daemon=True)
        loop.start()
        with contextlib.suppress(EOFError, KeyboardInterrupt):
            input()
        stop.set()
    console.server.should_exit = True
    console.thread.join(10)
    store.close()


def _response_settings(settings: Settings, work: Path, key_ids: list[str]) -> Settings:
    """A SoftHSM2 token holding every simulated key, an audit signing key, local-only Slack."""
    label, pin = "keywatch-demo", "demo-1234"
    module = make_token(work / "hsm", label, pin, key_ids)
    signing = work / "audit.key"
    for old in (signing, signing.with_suffix(".key.pub")):
        old.unlink(missing_ok=True)
    generate_signing_key(signing)
    display.console.print(f"   SoftHSM2 token {label!r} with {len(key_ids)} keys in {work / 'hsm'}")
    return settings.model_copy(
        update={
            "hsm": settings.hsm.model_copy(
                update={"module": module, "token_label": label, "pin": SecretStr(pin)}
            ),
            "audit": settings.audit.model_copy(update={"signing_key": signing}),
            "response": settings.response.model_copy(update={"default_backend": "pkcs11"}),
        }
    )


def _containment(store: Store, runner: PlaybookRunner, settings: Settings, work: Path) -> str:
    """What the responder did: runs, keys disabled inside the token, Slack queue, ledger check."""
    runs = runner.runs(limit=10_000)
    backend = BackendRouter(settings)
    keys = sorted({r.key_id for r in runs})
    disabled = [k for k in keys if (info := backend(k).describe(k)) is not None and info.state != "enabled"]
    ledger = Ledger(store, None)
    report = ledger.verify(load_signing_key(work / "audit.key").public_key())
    queued = len(list_messages(store, limit=100_000))
    by_status: dict[str, int] = {}
    for r in runs:
        by_status[r.status] = by_status.get(r.status, 0) + 1
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(by_status.items()))
    return (
        f"response: {len(runs)} playbook runs ({statuses}), {len(disabled)} keys disabled in the SoftHSM2 "
        f"token, {queued} Slack messages in the outbox (no Slack configured), audit ledger "
        f"{len(ledger.records())} records: {report.summary()}"
    )


def _start_consumer(
    work: Path, i: int, bootstrap: str, model: Path, db: Path, data: Path, args: argparse.Namespace
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KEYWATCH_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "KEYWATCH_KAFKA__IDLE_FLUSH_SECONDS": "2",
        "KEYWATCH_KAFKA__SESSION_TIMEOUT_MS": "6000",
        "KEYWATCH_STORE__URL": f"sqlite:///{db}",
        "KEYWATCH_MODEL": str(model),
        "KEYWATCH_METRICS__PORT": str(free_port()),
    }
    if args.config:
        env["KEYWATCH_CONFIG"] = str(args.config)
    catalog = str(args.catalog or data / "catalog.yaml")
    cmd = [sys.executable, "-m", "detector.cli", "run", "--catalog", catalog, "--idle-exit", "6"]
    path = work / f"consumer-{i}.log"
    path.unlink(missing_ok=True)
    private_file(path)  # consumer logs name keys, principals and the store
    log = path.open("wb")
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603


def _stream(
    bootstrap: str,
    topic: str,
    alerts_topic: str,
    events: list,  # type: ignore[type-arg]
    speedup: float,
    consumers: list[subprocess.Popen[bytes]],
) -> int:
    """Play events, show alerts as they arrive; return once every consumer has exited."""
    producer = event_producer(bootstrap)
    watch = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    watch.assign([TopicPartition(alerts_topic, 0)])
    watch.seek_to_beginning()
    latest: dict[str, Alert] = {}
    messages = 0
    sent = 0
    with Live(
        _table(latest, sent, len(events)),
        console=display.console,
        refresh_per_second=4,
        transient=not display.console.is_terminal,
    ) as live:
        for chunk in paced(events, speedup):
            sent += send_events(producer, topic, chunk)
            if sent == len(chunk):
                send_raw(producer, topic, [(None, raw) for raw in BAD_RECORDS])
            messages += _drain(watch, latest)
            live.update(_table(latest, sent, len(events)))
        producer.flush()
        while any(c.poll() is None for c in consumers):
            messages += _drain(watch, latest, timeout_ms=300)
            live.update(_table(latest, sent, len(events)))
        messages += _drain(watch, latest, timeout_ms=300)
        live.update(_table(latest, sent, len(events)))
    producer.close()
    watch.close()
    failed = [c.returncode for c in consumers if c.returncode]
    if failed:
        display.console.print(f"[red]consumers exited with {failed}; see their logs[/red]")
    return messages


def _drain(watch: KafkaConsumer, latest: dict[str, Alert], timeout_ms: int = 0) -> int:
    n = 0
    for records in watch.poll(timeout_ms=timeout_ms).values():
        for r in records:
            alert = Alert.from_dict(orjson.loads(r.value))
            latest[alert.alert_id] = alert
            n += 1
    return n


def _table(latest: dict[str, Alert], sent: int, total: int) -> Table:
    recent = sorted(latest.values(), key=lambda a: a.window_end, reverse=True)[:12]
    table = Table(title=f"events sent {sent:,}/{total:,} — {len(latest)} alerts (latest first)")
    for col in ("severity", "detector", "key", "principal", "window end (UTC)", "why"):
        table.add_column(col, overflow="ellipsis", no_wrap=True, max_width=60 if col == "why" else 28)
    for a in recent:
        why = a.reasons[0].text if a.reasons else ""
        table.add_row(
            a.severity.label,
            a.detector,
            a.key_id,
            a.principal or "",
            time.strftime("%m-%d %H:%M", time.gmtime(a.window_end)),
            why,
        )
    return table
