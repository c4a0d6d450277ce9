"""Where a member's partition tasks run: in its own process, or in detector worker processes.

kafka-python decodes records in pure Python on the thread that polls, and detection is pure
Python too, so one process holds one core at most. With ``kafka.workers`` > 0 a member keeps
polling, storing and committing in its own process while worker processes (spawned, each
holding the tasks of the partitions ``partition % workers`` maps to it) parse and detect:
decoding the next batch overlaps with detecting this one.

Both kinds offer the same calls. :meth:`submit` hands over one partition's batch;
:meth:`collect` returns what every batch submitted since the last collect gave, in order. Each
worker answers its requests in the order it got them, so a partition's batches are detected
in offset order. A worker that fails or dies makes the member fail (:class:`WorkerError`): it
stops without committing, and a restart replays from the last commit and checkpoint.
"""

from __future__ import annotations

import logging
import multiprocessing
import pickle
import queue
import signal
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Protocol

from detector.domain.errors import KeyWatchError
from detector.heap import settle_heap
from detector.pipeline import Pipeline
from detector.pipeline_state import StateError
from detector.streaming import BatchOutcome, PartitionTask, RawRecord

log = logging.getLogger(__name__)


class WorkerError(KeyWatchError):
    """A detector worker process failed or died; the member stops without committing."""


@dataclass(slots=True)
class Fed:
    """What one partition's batch (or idle close) gave, whichever process ran it."""

    partition: int
    outcome: BatchOutcome
    next_offset: int | None  # first offset the task has not been fed
    late: int  # late events the task has counted so far
    open: bool  # whether the task holds open windows
    state: bytes | None = None  # the task's snapshot after this batch, when one was asked for


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """What builds a partition's task: fresh, or restored from a checkpoint."""

    topic: str
    partition: int
    fmt: str
    max_bytes: int
    state: bytes | None = None
    offset: int | None = None


class PartitionTasks(Protocol):
    """The partition tasks of one member, wherever they run."""

    overlaps: bool  # True: submit returns at once and detection runs while the member polls

    def start(self, spec: TaskSpec) -> None:
        """Build (or restore) the task of one partition; raises StateError for an unusable state."""

    def submit(self, partition: int, records: list[RawRecord], snapshot: bool) -> None:
        """Hand over one batch of a partition (and ask for a snapshot after it)."""

    def collect(self, count: int | None = None) -> list[Fed]:
        """What the ``count`` oldest uncollected submissions (default: all) gave, in submission order."""

    def ready(self, count: int) -> bool:
        """Whether :meth:`collect` of the ``count`` oldest submissions would return without waiting."""

    def close_idle(self, partitions: list[int]) -> list[Fed]:
        """Close these partitions' open windows now; each answer carries a snapshot."""

    def snapshots(self, partitions: list[int]) -> dict[int, bytes]:
        """The current state of these partitions (nothing may be in flight for them)."""

    def drop(self, partition: int) -> None:
        """Forget a partition (revoked or lost)."""

    def close(self) -> None:
        """Release what the tasks hold."""


class _Tasks:
    """Partition tasks in one process: the body of both kinds."""

    def __init__(self, build: Callable[[], Pipeline]) -> None:
        self.build = build
        self.tasks: dict[int, PartitionTask] = {}

    def start(self, spec: TaskSpec) -> None:
        kw: dict[str, Any] = {"fmt": spec.fmt, "max_bytes": spec.max_bytes}
        if spec.state is not None and spec.offset is not None:
            task = PartitionTask.restored(
                spec.topic, spec.partition, self.build, spec.state, spec.offset, **kw
            )
        else:
            task = PartitionTask(spec.topic, spec.partition, self.build(), **kw)
        self.tasks[spec.partition] = task

    def feed(self, partition: int, records: list[RawRecord], snapshot: bool) -> Fed:
        task = self.tasks[partition]
        out = task.feed(records)
        return _fed(partition, task, out, task.snapshot() if snapshot else None)

    def close_idle(self, partition: int) -> Fed:
        task = self.tasks[partition]
        return _fed(partition, task, BatchOutcome(alerts=task.close_idle()), task.snapshot())

    def snapshot(self, partition: int) -> bytes:
        return self.tasks[partition].snapshot()

    def drop(self, partition: int) -> None:
        self.tasks.pop(partition, None)


def _fed(partition: int, task: PartitionTask, out: BatchOutcome, state: bytes | None) -> Fed:
    p = task.pipeline
    return Fed(partition, out, task.next_offset, p.stats.late, bool(p.open), state)


class LocalTasks:
    """Tasks in the member's own process: a batch is detected when it is submitted."""

    overlaps = False

    def __init__(self, build: Callable[[], Pipeline]) -> None:
        """Tasks built with ``build``."""
        self._tasks = _Tasks(build)
        self._done: list[Fed] = []

    def start(self, spec: TaskSpec) -> None:
        self._tasks.start(spec)

    def submit(self, partition: int, records: list[RawRecord], snapshot: bool) -> None:
        self._done.append(self._tasks.feed(partition, records, snapshot))

    def collect(self, count: int | None = None) -> list[Fed]:
        n = len(self._done) if count is None else count
        done, self._done = self._done[:n], self._done[n:]
        return done

    def ready(self, count: int) -> bool:
        return len(self._done) >= count

    def close_idle(self, partitions: list[int]) -> list[Fed]:
        return [self._tasks.close_idle(p) for p in partitions]

    def snapshots(self, partitions: list[int]) -> dict[int, bytes]:
        return {p: self._tasks.snapshot(p) for p in partitions}

    def drop(self, partition: int) -> None:
        self._tasks.drop(partition)

    def close(self) -> None:
        self._tasks.tasks.clear()


@dataclass(slots=True)
class _Worker:
    """One worker process, its end of the pipe, and a thread that writes requests to it.

    Requests are pickled by the caller and written by the thread, so handing a batch to a busy
    worker never blocks the member (a batch is larger than the pipe's buffer).
    """

    process: Any  # multiprocessing.context.SpawnProcess
    conn: Connection
    outbox: queue.SimpleQueue[bytes | None] = field(default_factory=queue.SimpleQueue)
    failed: BaseException | None = None  # why writing to the worker failed
    writer: threading.Thread | None = None

    def pump(self) -> None:
        while (data := self.outbox.get()) is not None:
            try:
                self.conn.send_bytes(data)
            except (OSError, ValueError) as exc:  # the worker is gone: the next answer says so
                self.failed = exc
                return


class WorkerTasks:
    """Tasks in ``count`` spawned worker processes; partition ``p`` lives in worker ``p % count``."""

    overlaps = True

    def __init__(self, build: Callable[[], Pipeline], count: int) -> None:
        """Start the workers; ``build`` must be picklable (a :class:`PipelineBuilder`)."""
        ctx = multiprocessing.get_context("spawn")  # never fork a process that runs kafka-python threads
        self.workers: list[_Worker] = []
        self._pending: deque[_Worker] = deque()  # the worker of each unanswered feed, in submission order
        self._done: list[Fed] = []
        for i in range(count):
            mine, theirs = ctx.Pipe()
            name = f"keywatch-detector-{i}"
            proc = ctx.Process(target=_serve, args=(theirs, build), name=name, daemon=True)
            proc.start()
            theirs.close()
            worker = _Worker(proc, mine)
            worker.writer = threading.Thread(target=worker.pump, name=f"{name}-writer", daemon=True)
            worker.writer.start()
            self.workers.append(worker)

    def _of(self, partition: int) -> _Worker:
        return self.workers[partition % len(self.workers)]

    def start(self, spec: TaskSpec) -> None:
        self._call(self._of(spec.partition), ("start", spec))

    def submit(self, partition: int, records: list[RawRecord], snapshot: bool) -> None:
        worker = self._of(partition)
        self._send(worker, ("feed", partition, records, snapshot))
        self._pending.append(worker)

    def collect(self, count: int | None = None) -> list[Fed]:
        self._drain(count)
        n = len(self._done) if count is None else count
        done, self._done = self._done[:n], self._done[n:]
        return done

    def ready(self, count: int) -> bool:
        self._drain(count, wait=False)
        return len(self._done) >= count

    def _drain(self, count: int | None = None, *, wait: bool = True) -> None:
        """Read feed answers, in submission order, until ``count`` (default: all) are at hand.

        With ``wait`` False, only the answers that have arrived already.
        """
        while self._pending and (count is None or len(self._done) < count):
            if not wait and not self._pending[0].conn.poll():
                return
            self._done.append(self._reply(self._pending[0]))
            self._pending.popleft()

    def close_idle(self, partitions: list[int]) -> list[Fed]:
        return [self._call(self._of(p), ("close_idle", p)) for p in partitions]

    def snapshots(self, partitions: list[int]) -> dict[int, bytes]:
        return {p: self._call(self._of(p), ("snapshot", p)) for p in partitions}

    def drop(self, partition: int) -> None:
        self._call(self._of(partition), ("drop", partition))

    def close(self) -> None:
        for worker in self.workers:
            worker.outbox.put(None)  # the writer sends what is queued, then stops
        for worker in self.workers:
            if worker.writer is not None:
                worker.writer.join(10)
            worker.conn.close()  # the worker reads end-of-file and exits
        for worker in self.workers:
            worker.process.join(10)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5)

    def _call(self, worker: _Worker, request: tuple[Any, ...]) -> Any:
        """A request whose answer the caller waits for; feed answers before it are kept for collect."""
        self._drain()
        self._send(worker, request)
        return self._reply(worker)

    def _send(self, worker: _Worker, request: tuple[Any, ...]) -> None:
        if worker.failed is not None:
            raise self._died(worker, worker.failed)
        worker.outbox.put(pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL))

    def _reply(self, worker: _Worker) -> Any:
        try:
            ok, value = worker.conn.recv()
        except (EOFError, OSError) as exc:
            raise self._died(worker, exc) from None
        if not ok and isinstance(value, StateError):
            raise value
        if not ok:
            raise WorkerError(f"{worker.process.name} failed: {value}")
        return value

    @staticmethod
    def _died(worker: _Worker, exc: BaseException) -> WorkerError:
        worker.process.join(1)
        return WorkerError(f"{worker.process.name} is gone (exit code {worker.process.exitcode}): {exc!r}")


def _serve(conn: Connection, build: Callable[[], Pipeline]) -> None:
    """A worker's loop: one answer ``(ok, value)`` per request, in order, until the member hangs up."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the member decides when to stop; then it hangs up
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    tasks = _Tasks(build)
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        op, *args = request
        try:
            if op == "feed":
                value: Any = tasks.feed(*args)
            elif op == "start":
                tasks.start(*args)
                value = None
                settle_heap()  # the model and the new task's profiles are long-lived
            elif op == "close_idle":
                value = tasks.close_idle(*args)
            elif op == "snapshot":
                value = tasks.snapshot(*args)
            elif op == "drop":
                tasks.drop(*args)
                value = None
            else:
                raise ValueError(f"unknown request {op!r}")
        except StateError as exc:  # an unusable checkpoint: the member starts the partition fresh
            conn.send((False, exc))
            continue
        except Exception as exc:  # any failure goes back to the member, which stops
            conn.send((False, f"{type(exc).__name__}: {exc}"))
            continue
        conn.send((True, value))


def partition_tasks(build: Callable[[], Pipeline], workers: int) -> PartitionTasks:
    """In-process tasks for ``workers`` 0, else that many worker processes."""
    return WorkerTasks(build, workers) if workers > 0 else LocalTasks(build)
