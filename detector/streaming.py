"""One detector per partition: raw messages in, alerts and rejected messages out (pure: no I/O).

Producers key messages by key id, so every event of a key lands on one partition and one
:class:`PartitionTask` holds all of that key's windows and profile. A task can be snapshotted
between batches (:mod:`detector.pipeline_state`) and handed to the next owner of the partition
together with the offset it covers. Cross-key, per-principal detectors (denied probing, travel)
see the keys of their partition; with producers keying by key id that is the price of scaling
out, and docs/explanation/limits.md says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from detector.domain.alerts import Alert
from detector.domain.errors import ParseError
from detector.domain.events import Event
from detector.pipeline import Pipeline
from detector.pipeline_state import restore, snapshot
from detector.sources import decode_and_parse
from detector.sources.canonical import FAST_PATH_ERRORS, event_from_json

# What the core needs of one Kafka record of its partition: (offset, value, timestamp in ms).
# Plain tuples: a batch of thousands crosses to a worker process and back cheaply.
RawRecord = tuple[int, bytes | None, int]


@dataclass(frozen=True, slots=True)
class Message:
    """A record with the place it came from (kept for records that are rejected)."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    timestamp_ms: int = 0


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message that could not be parsed, and why."""

    message: Message
    error: str


@dataclass(slots=True)
class BatchOutcome:
    """What one batch of one partition produced."""

    alerts: list[Alert] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    events: int = 0
    skipped: int = 0


class PartitionTask:
    """The detector state of one partition and the offset it has consumed up to."""

    def __init__(
        self,
        topic: str,
        partition: int,
        pipeline: Pipeline,
        *,
        fmt: str = "auto",
        max_bytes: int = 1_048_576,
        next_offset: int | None = None,
    ) -> None:
        """Wrap a pipeline built for this partition (fresh, or restored with :meth:`restored`)."""
        self.topic = topic
        self.partition = partition
        self.pipeline = pipeline
        self.fmt = fmt
        self.max_bytes = max_bytes
        self.next_offset = next_offset  # first offset not yet fed; None before the first message
        self.checkpointed_offset: int | None = None
        self.checkpointed_at = 0.0

    @classmethod
    def restored(
        cls,
        topic: str,
        partition: int,
        build: Callable[[], Pipeline],
        state: bytes,
        offset: int,
        **kwargs: object,
    ) -> PartitionTask:
        """A task carrying on from a checkpoint that covers messages before ``offset``."""
        task = cls(topic, partition, restore(build(), state), next_offset=offset, **kwargs)  # type: ignore[arg-type]
        task.checkpointed_offset = offset
        return task

    def feed(self, records: Iterable[RawRecord]) -> BatchOutcome:
        """Parse, detect and flush one batch of this partition's records, in offset order."""
        out = BatchOutcome()
        events: list[Event] = []
        fast = self.fmt in ("auto", "canonical")  # canonical records skip the general parser
        for offset, value, timestamp_ms in records:
            if self.next_offset is not None and offset < self.next_offset:
                continue  # already fed (a redelivery overlapping what this task has seen)
            self.next_offset = offset + 1
            if value is None:
                out.rejected.append(self._rejected(offset, value, timestamp_ms, "empty message (no value)"))
                continue
            if fast and len(value) <= self.max_bytes:
                try:
                    event = event_from_json(value)
                except FAST_PATH_ERRORS:  # the checked path decides
                    event = None
                if event is not None:
                    events.append(event)
                    continue
            try:
                parsed = decode_and_parse(value, self.fmt, self.max_bytes)
            except ParseError as exc:
                out.rejected.append(self._rejected(offset, value, timestamp_ms, str(exc)))
                continue
            events.extend(parsed.events)
            out.skipped += parsed.skipped
        out.events = len(events)
        if events:
            self.pipeline.process(events)
        out.alerts = self.pipeline.flush()
        return out

    def _rejected(self, offset: int, value: bytes | None, timestamp_ms: int, error: str) -> Rejected:
        return Rejected(Message(self.topic, self.partition, offset, value, timestamp_ms), error)

    def close_idle(self) -> list[Alert]:
        """No event for a while: close every open window now instead of waiting for the watermark.

        A window closed early is final; an event for it that arrives later is judged as a late
        window, like any late event.
        """
        return self.pipeline.finish() if self.pipeline.open else []

    def snapshot(self) -> bytes:
        """The task's state, to be stored with :attr:`next_offset`."""
        return snapshot(self.pipeline)
