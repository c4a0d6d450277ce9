"""``keywatch run``: a Kafka consumer group that turns key-usage logs into stored alerts.

Each poll is a micro-batch. Per partition, a :class:`~detector.streaming.PartitionTask` parses
and detects; then, in this order, the batch's alerts, dead letters and due checkpoints are
written to the store in one transaction, the alerts and dead letters are published, and only
then are the offsets committed. A crash anywhere before the commit redelivers the batch;
alert ids derive from key, detector and window and the store upserts them, so a redelivery
never makes a second alert. Topic consumers see alerts at least once and dedupe by
``alert_id`` (the latest ``count`` wins).

Per-partition state follows the partition: on revocation (or shutdown) each task is
checkpointed with the offset it covers; the next owner restores the checkpoint and seeks to
that offset, so the windows in flight are rebuilt exactly and nothing is judged twice.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from detector.adapters.files import dead_letter_entry
from detector.adapters.metrics import ConsumerMetrics
from detector.adapters.store import Checkpoint, DeadLetter, Store
from detector.adapters.store.feedback import FeedbackRepository
from detector.config import Settings
from detector.domain.alerts import Alert
from detector.pipeline import Pipeline
from detector.pipeline_state import StateError
from detector.streaming import BatchOutcome, Message, PartitionTask, Rejected

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RunTotals:
    """What a run did, for its summary line."""

    messages: int = 0
    events: int = 0
    skipped: int = 0
    alerts: int = 0
    dead_letters: int = 0
    batches: int = 0
    restored: int = 0
    checkpoints: int = 0
    stored_alert_ids: set[str] = field(default_factory=set)
    first_message_at: float | None = None  # time.time() when the first batch arrived
    last_commit_at: float | None = None  # time.time() when the last batch was committed


@dataclass(frozen=True, slots=True)
class BatchReport:
    """One committed batch, for live displays and latency measurements."""

    messages: int
    events: int
    alerts: list[Alert]
    first_produced: float  # seconds since the epoch (record timestamps) of the batch's oldest...
    last_produced: float  # ...and newest message
    committed_at: float  # time.time() once alerts were stored and offsets committed


class DetectorService:
    """One member of the detector consumer group."""

    def __init__(
        self,
        settings: Settings,
        build_pipeline: Callable[[], Pipeline],
        store: Store,
        *,
        fmt: str = "auto",
        metrics: ConsumerMetrics | None = None,
        on_batch: Callable[[BatchReport], None] | None = None,
        client_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Wire the service; nothing connects before :meth:`run` (``clock``: when suppressions apply)."""
        self.settings = settings
        self.kafka = settings.kafka
        self.build_pipeline = build_pipeline
        self.store = store
        self.feedback = FeedbackRepository(store, clock=clock)
        self.fmt = fmt
        self.metrics = metrics or ConsumerMetrics()
        self.on_batch = on_batch
        self.client_id = client_id or f"keywatch-{socket.gethostname()}-{os.getpid()}"
        self.tasks: dict[int, PartitionTask] = {}
        self.totals = RunTotals()
        self.consumer: KafkaConsumer | None = None
        self.producer: KafkaProducer | None = None

    # -- life cycle -------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, idle_exit_seconds: float | None = None) -> RunTotals:
        """Consume until ``stop`` is set (or, when asked, after that long without any message)."""
        k = self.kafka
        self.producer = KafkaProducer(
            bootstrap_servers=k.bootstrap_servers,
            client_id=self.client_id,
            acks="all",
            linger_ms=5,
            max_request_size=max(k.max_message_bytes * 2, 1_048_576),
        )
        self.consumer = KafkaConsumer(
            bootstrap_servers=k.bootstrap_servers,
            group_id=k.group,
            client_id=self.client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=k.session_timeout_ms,
            max_poll_interval_ms=k.max_poll_interval_ms,
            heartbeat_interval_ms=max(100, k.session_timeout_ms // 4),
            max_poll_records=k.max_poll_records,
            max_partition_fetch_bytes=max(k.max_message_bytes + 65536, 8 * 1_048_576),
            fetch_max_bytes=64 * 1_048_576,
        )
        self.consumer.subscribe([k.topic], listener=_Listener(self))
        last_message = time.monotonic()
        idle_closed = False
        try:
            while not stop.is_set():
                try:
                    records = self.consumer.poll(timeout_ms=k.poll_timeout_ms, max_records=k.max_poll_records)
                except KafkaError as exc:  # broker gone or frozen: wait it out, nothing is lost
                    log.warning("poll failed (%s); retrying", exc)
                    time.sleep(0.5)
                    continue
                now = time.monotonic()
                if not self.tasks:  # idle time counts only while this member owns partitions
                    last_message = now
                if records:
                    self._handle(records)
                    last_message, idle_closed = now, False
                elif not idle_closed and now - last_message >= k.idle_flush_seconds:
                    self._close_idle()
                    idle_closed = True
                if idle_exit_seconds is not None and now - last_message >= idle_exit_seconds:
                    break
                self._update_lag()
        finally:
            self._shutdown()
        return self.totals

    def _shutdown(self) -> None:
        consumer, producer = self.consumer, self.producer
        self.consumer = self.producer = None
        if consumer is not None:
            try:
                self._checkpoint_all(list(self.tasks.values()))
            finally:
                consumer.close(autocommit=False)
        if producer is not None:
            producer.close(timeout=10)

    # -- batches ----------------------------------------------------------------------------

    def _handle(self, records: dict[TopicPartition, list[Any]]) -> None:
        started = time.perf_counter()
        if self.totals.first_message_at is None:
            self.totals.first_message_at = time.time()
        alerts: dict[str, Alert] = {}
        rejected: list[Rejected] = []
        fed: list[PartitionTask] = []
        messages = events = 0
        oldest, newest = float("inf"), 0
        for tp, recs in records.items():
            task = self.tasks.get(tp.partition) or self._assign_one(tp)
            out = task.feed(Message(tp.topic, tp.partition, r.offset, r.value, r.timestamp) for r in recs)
            self._count(tp.partition, len(recs), out)
            alerts.update((a.alert_id, a) for a in out.alerts)
            rejected.extend(out.rejected)
            fed.append(task)
            messages, events = messages + len(recs), events + out.events
            oldest, newest = min(oldest, recs[0].timestamp), max(newest, recs[-1].timestamp)
        batch_alerts = list(alerts.values())
        self._deliver(batch_alerts, rejected, self._due(fed))
        self._commit(fed)
        self.totals.last_commit_at = done = time.time()
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        self.totals.batches += 1
        if self.on_batch is not None:
            self.on_batch(BatchReport(messages, events, batch_alerts, oldest / 1000, newest / 1000, done))

    def _close_idle(self) -> None:
        """Quiet partitions: close their open windows now and checkpoint what that changed."""
        alerts: dict[str, Alert] = {}
        touched = [t for t in self.tasks.values() if t.pipeline.open and self._caught_up(t)]
        for task in touched:
            alerts.update((a.alert_id, a) for a in task.close_idle())
        if touched:
            self._deliver(list(alerts.values()), [], [self._checkpoint_of(t) for t in touched])

    def _caught_up(self, task: PartitionTask) -> bool:
        """Whether the task has read all its partition holds (as far as the last fetch told).

        During a broker outage the last known end stays ahead of the position, so windows are
        not closed early just because nothing arrives.
        """
        assert self.consumer is not None  # noqa: S101 - only called while running
        high = self.consumer.highwater(TopicPartition(task.topic, task.partition))
        return high is not None and task.next_offset is not None and task.next_offset >= high

    def _deliver(self, alerts: list[Alert], rejected: list[Rejected], checkpoints: list[Checkpoint]) -> None:
        """Store, then publish; the caller commits offsets only after this returns."""
        letters = [
            DeadLetter(
                error=r.error,
                raw=r.message.value or b"",
                topic=r.message.topic,
                partition=r.message.partition,
                offset=r.message.offset,
            )
            for r in rejected
        ]
        self.store.save_batch(alerts, letters, checkpoints)
        suppressed = self.feedback.apply(alerts)  # stored and marked, never silently dropped
        self.totals.checkpoints += len(checkpoints)
        self.metrics.checkpoints.inc(len(checkpoints))
        producer = self.producer
        assert producer is not None  # noqa: S101 - only called while running
        for alert in alerts:
            self.totals.stored_alert_ids.add(alert.alert_id)
            if alert.alert_id in suppressed:  # an analyst silenced it: stored, not published
                continue
            producer.send(self.kafka.alerts_topic, orjson.dumps(alert.to_dict()), key=alert.key_id.encode())
            self.metrics.alerts.labels(alert.detector).inc()
        for r in rejected:
            entry = dead_letter_entry(
                r.message.value or b"",
                r.error,
                self.kafka.max_message_bytes,
                topic=r.message.topic,
                partition=r.message.partition,
                offset=r.message.offset,
                timestamp_ms=r.message.timestamp_ms,
            )
            producer.send(self.kafka.deadletter_topic, orjson.dumps(entry))
        self._flush_producer()
        self.totals.alerts += len(alerts)
        self.totals.dead_letters += len(rejected)
        self.metrics.dead_letters.inc(len(rejected))

    def _flush_producer(self) -> None:
        assert self.producer is not None  # noqa: S101 - only called while running
        while True:
            try:
                self.producer.flush(timeout=30)
                return
            except KafkaError as exc:  # broker away: keep the batch, retry until it is back
                log.warning("publishing alerts waits for the broker (%s)", exc)

    def _commit(self, tasks: Iterable[PartitionTask]) -> None:
        assert self.consumer is not None  # noqa: S101 - only called while running
        offsets = {
            TopicPartition(t.topic, t.partition): OffsetAndMetadata(t.next_offset, "", -1)
            for t in tasks
            if t.next_offset is not None
        }
        try:
            self.consumer.commit(offsets)
        except CommitFailedError as exc:  # rebalanced meanwhile: the checkpoint covers the batch
            log.warning("offset commit refused after a rebalance (%s); the new owner replays", exc)
        except KafkaError as exc:
            log.warning("offset commit failed (%s); the batch will be redelivered", exc)

    def _count(self, partition: int, messages: int, out: BatchOutcome) -> None:
        m, t = self.metrics, self.totals
        m.messages.labels(str(partition)).inc(messages)
        m.events.inc(out.events)
        m.skipped.inc(out.skipped)
        t.messages += messages
        t.events += out.events
        t.skipped += out.skipped
        m.late.set(sum(task.pipeline.stats.late for task in self.tasks.values()))

    def _update_lag(self) -> None:
        consumer = self.consumer
        if consumer is None:
            return
        for partition, task in self.tasks.items():
            tp = TopicPartition(task.topic, partition)
            high = consumer.highwater(tp)
            if high is not None and task.next_offset is not None:
                self.metrics.lag.labels(str(partition)).set(max(high - task.next_offset, 0))

    # -- checkpoints and rebalancing --------------------------------------------------------

    def _due(self, tasks: Iterable[PartitionTask]) -> list[Checkpoint]:
        now = time.monotonic()
        interval = self.kafka.checkpoint_interval_seconds
        due = [t for t in tasks if t.checkpointed_offset is None or now - t.checkpointed_at >= interval]
        return [self._checkpoint_of(t) for t in due]

    def _checkpoint_of(self, task: PartitionTask) -> Checkpoint:
        offset = task.next_offset if task.next_offset is not None else 0
        task.checkpointed_offset, task.checkpointed_at = offset, time.monotonic()
        return Checkpoint(
            group=self.kafka.group, topic=task.topic, partition=task.partition,
            offset=offset, state=task.snapshot(),
        )  # fmt: skip

    def _checkpoint_all(self, tasks: list[PartitionTask]) -> None:
        ready = [t for t in tasks if t.next_offset is not None]
        if ready:
            self.store.save_checkpoints([self._checkpoint_of(t) for t in ready])
            self.totals.checkpoints += len(ready)

    def _assign_one(self, tp: TopicPartition) -> PartitionTask:
        kw = {"fmt": self.fmt, "max_bytes": self.kafka.max_message_bytes}
        saved = self.store.load_checkpoint(self.kafka.group, tp.topic, tp.partition)
        task: PartitionTask | None = None
        if saved is not None:
            try:
                task = PartitionTask.restored(tp.topic, tp.partition, self.build_pipeline,
                                              saved.state, saved.offset, **kw)  # fmt: skip
            except StateError as exc:
                log.error("partition %d: checkpoint unusable (%s); starting fresh", tp.partition, exc)
        if task is None:
            task = PartitionTask(tp.topic, tp.partition, self.build_pipeline(), **kw)  # type: ignore[arg-type]
        else:
            self.totals.restored += 1
            if self.consumer is not None:
                self.consumer.seek(tp, task.next_offset)
        task.checkpointed_at = time.monotonic()
        self.tasks[tp.partition] = task
        return task

    def _revoked(self, partitions: Iterable[TopicPartition]) -> None:
        gone = [self.tasks.pop(tp.partition) for tp in partitions if tp.partition in self.tasks]
        self._checkpoint_all(gone)
        log.info("revoked %s; checkpointed %d", sorted(tp.partition for tp in partitions), len(gone))

    def _assigned(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            self._assign_one(tp)
        log.info("assigned %s", sorted(tp.partition for tp in partitions))

    def _lost(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:  # another member may own them already: its checkpoint wins
            self.tasks.pop(tp.partition, None)
        log.warning("lost %s without a clean hand-over", sorted(tp.partition for tp in partitions))


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hands partition state over through the store when the group rebalances."""

    def __init__(self, service: DetectorService) -> None:
        self.service = service

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.service._revoked(revoked)

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.service._assigned(assigned)

    def on_partitions_lost(self, lost: list[TopicPartition]) -> None:
        self.service._lost(lost)
