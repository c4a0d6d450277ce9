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

With ``kafka.workers`` > 0 (the default is 1) the tasks run in detector worker processes
(:mod:`detector.adapters.partition_workers`) and batches are pipelined: the member hands batch
N+1 to the workers before it waits for batch N's results, stores, publishes and commits N, and
polls (decodes) N+2 while the workers detect N+1. A batch is finished as soon as its results
are in, or when two are in flight, never merely because a poll came back empty: that would
leave the workers idle while the member decodes. The order store → publish → commit holds for
every batch; a rebalance, an idle close and a stop first finish every batch in flight.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from detector.adapters.files import dead_letter_entry
from detector.adapters.metrics import ConsumerMetrics
from detector.adapters.partition_workers import Fed, PartitionTasks, TaskSpec, partition_tasks
from detector.adapters.store import Checkpoint, DeadLetter, Store
from detector.adapters.store.feedback import FeedbackRepository
from detector.config import Settings
from detector.domain.alerts import Alert
from detector.heap import settle_heap
from detector.pipeline import Pipeline
from detector.pipeline_state import StateError
from detector.streaming import Rejected

log = logging.getLogger(__name__)
# How long a poll waits for records while batches are in flight: a finished batch is stored and
# committed at most this late.
_BUSY_POLL_MS = 10


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


@dataclass(slots=True)
class Owned:
    """What the member knows of a partition it owns; the task itself may live in a worker."""

    topic: str
    partition: int
    next_offset: int | None = None  # first offset not yet detected; None before the first message
    checkpointed: bool = False  # a checkpoint of this ownership is stored (or asked for)
    checkpointed_at: float = 0.0  # time.monotonic() of the last checkpoint (or of asking for one)
    open: bool = False  # the task holds open windows
    late: int = 0


@dataclass(slots=True)
class _InFlight:
    """A batch handed to the tasks whose results are not stored yet."""

    partitions: list[int]
    messages: int
    oldest: int  # record timestamps (ms) of the batch's oldest and newest message
    newest: int
    started: float  # time.perf_counter()


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
        settle: bool = False,
    ) -> None:
        """Wire the service; nothing connects before :meth:`run`.

        ``clock``: when suppressions apply. ``settle``: tune this process's garbage collector for
        a long-running detector once its partitions are built (:func:`settle_heap`); for a
        process that runs only this service (``keywatch run``). Worker processes always do.
        """
        self.settings = settings
        self.kafka = settings.kafka
        self.build_pipeline = build_pipeline
        self.store = store
        self.feedback = FeedbackRepository(store, clock=clock)
        self.fmt = fmt
        self.metrics = metrics or ConsumerMetrics()
        self.on_batch = on_batch
        self.client_id = client_id or f"keywatch-{socket.gethostname()}-{os.getpid()}"
        self.settle = settle
        self.owned: dict[int, Owned] = {}
        self.assigned_at = 0.0  # time.monotonic() of the last partition taken on
        self.tasks: PartitionTasks | None = None
        self.inflight: deque[_InFlight] = deque()  # oldest first
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
        self.tasks = partition_tasks(self.build_pipeline, k.workers)
        depth = 2 if self.tasks.overlaps else 1  # batches in flight once one is dispatched
        self.consumer.subscribe([k.topic], listener=_Listener(self))
        last_message = time.monotonic()
        idle_closed = False
        try:
            while not stop.is_set():
                busy = bool(self.inflight)  # then wait briefly: a batch's results may be ready first
                try:
                    records = self.consumer.poll(
                        timeout_ms=min(k.poll_timeout_ms, _BUSY_POLL_MS) if busy else k.poll_timeout_ms,
                        max_records=k.max_poll_records,
                    )
                except KafkaError as exc:  # broker gone or frozen: wait it out, nothing is lost
                    log.warning("poll failed (%s); retrying", exc)
                    self._finish()
                    time.sleep(0.5)
                    continue
                now = time.monotonic()
                if not self.owned:  # idle time counts only while this member owns partitions
                    last_message = now
                last_message = max(last_message, self.assigned_at)  # restoring is not idling
                if records:
                    self._dispatch(records)
                    last_message, idle_closed = now, False
                if self.inflight:
                    # Keep up to ``depth`` batches in flight, so workers always have the next one;
                    # finish a batch once its results are in, or when the pipeline is full.
                    while self.inflight and (
                        len(self.inflight) >= depth or self.tasks.ready(len(self.inflight[0].partitions))
                    ):
                        self._finish_oldest()
                elif not idle_closed and now - last_message >= k.idle_flush_seconds:
                    idle_closed = self._close_idle()
                if idle_exit_seconds is not None and now - last_message >= idle_exit_seconds:
                    break
                self._update_lag()
            self._finish()  # a clean stop: the last batch stored and committed, every state saved
            self._checkpoint_all(list(self.owned))
        finally:
            self._shutdown()
        return self.totals

    def _shutdown(self) -> None:
        """Close the clients and workers (after a failure, too: a restart replays from the commits)."""
        consumer, producer, tasks = self.consumer, self.producer, self.tasks
        self.consumer = self.producer = self.tasks = None
        if consumer is not None:
            consumer.close(autocommit=False)
        if tasks is not None:
            tasks.close()
        if producer is not None:
            producer.close(timeout=10)

    # -- batches ----------------------------------------------------------------------------

    def _dispatch(self, records: dict[TopicPartition, list[Any]]) -> None:
        """Hand each partition's records to its task (and ask for the checkpoints that are due)."""
        assert self.tasks is not None  # noqa: S101 - only called while running
        started = time.perf_counter()
        if self.totals.first_message_at is None:
            self.totals.first_message_at = time.time()
        now, interval = time.monotonic(), self.kafka.checkpoint_interval_seconds
        partitions: list[int] = []
        messages, oldest, newest = 0, 2**63, 0
        for tp, recs in records.items():
            own = self.owned.get(tp.partition) or self._assign_one(tp)
            due = not own.checkpointed or now - own.checkpointed_at >= interval
            if due:
                own.checkpointed, own.checkpointed_at = True, now
            self.tasks.submit(tp.partition, [(r.offset, r.value, r.timestamp) for r in recs], due)
            self.metrics.messages.labels(str(tp.partition)).inc(len(recs))
            partitions.append(tp.partition)
            messages += len(recs)
            oldest, newest = min(oldest, recs[0].timestamp), max(newest, recs[-1].timestamp)
        self.totals.messages += messages
        self.inflight.append(_InFlight(partitions, messages, oldest, newest, started))

    def _finish(self) -> None:
        """Finish every batch in flight."""
        if self.tasks is None:  # closing after a failure: those batches are replayed after a restart
            self.inflight.clear()
        while self.inflight:
            self._finish_oldest()

    def _finish_oldest(self) -> None:
        """Store the results of the oldest batch in flight, publish them, then commit its offsets."""
        batch = self.inflight.popleft()
        assert self.tasks is not None  # noqa: S101 - only called while running
        alerts: dict[str, Alert] = {}
        rejected: list[Rejected] = []
        checkpoints: list[Checkpoint] = []
        events = 0
        for fed in self.tasks.collect(len(batch.partitions)):
            own = self._took(fed)
            out = fed.outcome
            alerts.update((a.alert_id, a) for a in out.alerts)
            rejected.extend(out.rejected)
            if fed.state is not None:
                checkpoints.append(self._checkpoint(own, fed.state))
            events += out.events
            self.metrics.events.inc(out.events)
            self.metrics.skipped.inc(out.skipped)
            self.totals.events += out.events
            self.totals.skipped += out.skipped
        self.metrics.late.set(sum(own.late for own in self.owned.values()))
        batch_alerts = list(alerts.values())
        self._deliver(batch_alerts, rejected, checkpoints)
        self._commit(batch.partitions)
        self.totals.last_commit_at = done = time.time()
        self.metrics.batch_seconds.observe(time.perf_counter() - batch.started)
        self.totals.batches += 1
        if self.on_batch is not None:
            first, last = batch.oldest / 1000, batch.newest / 1000
            self.on_batch(BatchReport(batch.messages, events, batch_alerts, first, last, done))

    def _took(self, fed: Fed) -> Owned:
        """Note what a task reported of itself (results only arrive for owned partitions)."""
        own = self.owned[fed.partition]  # revocation and loss finish the batches in flight first
        own.next_offset, own.late, own.open = fed.next_offset, fed.late, fed.open
        return own

    def _close_idle(self) -> bool:
        """Quiet partitions: close their open windows now and checkpoint what that changed.

        True once no partition holds open windows; a partition whose end is not known yet (no
        fetch answered since it was assigned) is closed on a later call.
        """
        assert self.tasks is not None  # noqa: S101 - only called while running
        self._finish()
        touched = [p for p, own in self.owned.items() if own.open and self._caught_up(own)]
        if touched:
            alerts: dict[str, Alert] = {}
            checkpoints = []
            for fed in self.tasks.close_idle(touched):
                own = self._took(fed)
                alerts.update((a.alert_id, a) for a in fed.outcome.alerts)
                assert fed.state is not None  # noqa: S101 - close_idle always snapshots
                checkpoints.append(self._checkpoint(own, fed.state))
            self._deliver(list(alerts.values()), [], checkpoints)
        return not any(own.open for own in self.owned.values())

    def _caught_up(self, task: Owned) -> bool:
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

    def _commit(self, partitions: Iterable[int]) -> None:
        assert self.consumer is not None  # noqa: S101 - only called while running
        owned = [self.owned[p] for p in partitions if p in self.owned]
        offsets = {
            TopicPartition(t.topic, t.partition): OffsetAndMetadata(t.next_offset, "", -1)
            for t in owned
            if t.next_offset is not None
        }
        if not offsets:
            return
        try:
            self.consumer.commit(offsets)
        except CommitFailedError as exc:  # rebalanced meanwhile: the checkpoint covers the batch
            log.warning("offset commit refused after a rebalance (%s); the new owner replays", exc)
        except KafkaError as exc:
            log.warning("offset commit failed (%s); the batch will be redelivered", exc)

    def _update_lag(self) -> None:
        consumer = self.consumer
        if consumer is None:
            return
        for partition, task in self.owned.items():
            tp = TopicPartition(task.topic, partition)
            high = consumer.highwater(tp)
            if high is not None and task.next_offset is not None:
                self.metrics.lag.labels(str(partition)).set(max(high - task.next_offset, 0))

    # -- checkpoints and rebalancing --------------------------------------------------------

    def _checkpoint(self, own: Owned, state: bytes) -> Checkpoint:
        """The checkpoint of a task's state, which covers the messages before its next offset."""
        offset = own.next_offset if own.next_offset is not None else 0
        own.checkpointed, own.checkpointed_at = True, time.monotonic()
        return Checkpoint(group=self.kafka.group, topic=own.topic, partition=own.partition,
                          offset=offset, state=state)  # fmt: skip

    def _checkpoint_all(self, partitions: list[int]) -> None:
        if self.tasks is None:  # closing after a failure: the last checkpoints and commits stand
            return
        ready = [p for p in partitions if p in self.owned and self.owned[p].next_offset is not None]
        if ready:
            states = self.tasks.snapshots(ready)
            self.store.save_checkpoints([self._checkpoint(self.owned[p], states[p]) for p in ready])
            self.totals.checkpoints += len(ready)

    def _assign_one(self, tp: TopicPartition) -> Owned:
        assert self.tasks is not None  # noqa: S101 - only called while running
        spec = TaskSpec(tp.topic, tp.partition, self.fmt, self.kafka.max_message_bytes)
        own = Owned(tp.topic, tp.partition)
        saved = self.store.load_checkpoint(self.kafka.group, tp.topic, tp.partition)
        try:
            if saved is None:
                self.tasks.start(spec)
            else:
                self.tasks.start(replace(spec, state=saved.state, offset=saved.offset))
                # The checkpoint may hold open windows: idle closing must see them even if no
                # record ever arrives again.
                own.next_offset, own.checkpointed, own.open = saved.offset, True, True
                self.totals.restored += 1
                if self.consumer is not None:
                    self.consumer.seek(tp, saved.offset)
        except StateError as exc:
            log.error("partition %d: checkpoint unusable (%s); starting fresh", tp.partition, exc)
            self.tasks.start(spec)
        own.checkpointed_at = self.assigned_at = time.monotonic()
        self.owned[tp.partition] = own
        if self.settle:
            settle_heap()  # the new task's profiles are long-lived
        return own

    def _revoked(self, partitions: Iterable[TopicPartition]) -> None:
        self._finish()  # the batch in flight is stored and committed before the hand-over
        gone = [tp.partition for tp in partitions if tp.partition in self.owned]
        self._checkpoint_all(gone)
        for p in gone:
            self._forget(p)
        log.info("revoked %s; checkpointed %d", sorted(tp.partition for tp in partitions), len(gone))

    def _assigned(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            self._assign_one(tp)
        log.info("assigned %s", sorted(tp.partition for tp in partitions))

    def _lost(self, partitions: Iterable[TopicPartition]) -> None:
        self._finish()  # stored (idempotent); its commit is refused, and the new owner replays
        for tp in partitions:  # another member may own them already: its checkpoint wins
            self._forget(tp.partition)
        log.warning("lost %s without a clean hand-over", sorted(tp.partition for tp in partitions))

    def _forget(self, partition: int) -> None:
        if self.owned.pop(partition, None) is not None and self.tasks is not None:
            self.tasks.drop(partition)


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
